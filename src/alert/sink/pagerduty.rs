//! PagerDuty sink: Events API v2. A firing alert is a `trigger`, a resolved one a
//! `resolve`, both with the alert's stable `dedup_key`; payloads stay within the
//! documented limits (summary 1024 chars, dedup_key 255, 512 KB per event).

use super::{truncate, OutRequest, RenderContext};
use crate::alert::config::SinkConfig;
use crate::alert::lifecycle::AlertRecord;
use crate::alert::outbox::Notification;
use crate::alert::rules::dedup_key;
use crate::clock::rfc3339;
use serde_json::{json, Value};

/// Default endpoint base.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com";
/// Largest event body PagerDuty accepts.
pub const MAX_EVENT_BYTES: usize = 512 * 1024;
const MAX_SUMMARY: usize = 1024;

/// The enqueue request for a notification. PagerDuty notifications carry exactly one
/// alert ([`crate::alert::outbox::batch`] plans them so).
pub fn request(cfg: &SinkConfig, n: &Notification, cx: RenderContext<'_>) -> OutRequest {
    let base = cfg
        .url
        .as_deref()
        .unwrap_or(DEFAULT_URL)
        .trim_end_matches('/');
    let key = cfg.routing_key.clone().unwrap_or_default();
    let body = n.alerts.first().map_or(Value::Null, |a| event(&key, a, cx));
    OutRequest {
        url: format!("{base}/v2/enqueue"),
        body,
    }
}

fn pd_severity(s: Option<&String>) -> &'static str {
    match s.map(String::as_str) {
        Some("critical") => "critical",
        Some("warning") => "warning",
        Some("error") => "error",
        _ => "info",
    }
}

/// One event for one alert.
pub fn event(routing_key: &str, a: &AlertRecord, cx: RenderContext<'_>) -> Value {
    let dedup = truncate(&dedup_key(&a.fingerprint), 255);
    if !a.firing() {
        return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup});
    }
    let l = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
    let summary = a
        .annotations
        .get("summary")
        .cloned()
        .unwrap_or_else(|| l("alertname"));
    let link = a
        .annotations
        .get("link")
        .cloned()
        .unwrap_or_else(|| cx.external_url.to_string());
    let mut ev = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup,
        "client": "verdict",
        "client_url": link,
        "links": [{"href": link, "text": "verdict deployment view"}],
        "payload": {
            "summary": truncate(&summary, MAX_SUMMARY),
            "source": format!("{}/{}", l("environment"), l("service")),
            "severity": pd_severity(a.labels.get("severity")),
            "timestamp": rfc3339(a.starts_at),
            "component": l("service"),
            "group": l("environment"),
            "class": l("signal"),
            "custom_details": {"labels": a.labels, "annotations": a.annotations},
        },
    });
    fit(&mut ev);
    ev
}

/// Keeps the event under 512 KB: first shortens annotations, then drops them.
fn fit(ev: &mut Value) {
    let size = |v: &Value| serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
    if size(ev) <= MAX_EVENT_BYTES {
        return;
    }
    if let Some(Value::Object(ann)) = ev.pointer_mut("/payload/custom_details/annotations") {
        for v in ann.values_mut() {
            if let Value::String(s) = v {
                *s = truncate(s, 4096);
            }
        }
    }
    if size(ev) > MAX_EVENT_BYTES {
        if let Some(Value::Object(d)) = ev.pointer_mut("/payload/custom_details") {
            d.remove("annotations");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::lifecycle::AlertStatus;

    #[test]
    fn trigger_and_resolve_share_the_dedup_key_and_fit_limits() {
        let mut a = AlertRecord {
            fingerprint: "0123456789abcdef".into(),
            labels: [("severity".to_string(), "critical".to_string())]
                .into_iter()
                .collect(),
            annotations: [
                ("summary".to_string(), "x".repeat(5000)),
                ("evidence".to_string(), "y".repeat(600 * 1024)),
            ]
            .into_iter()
            .collect(),
            group: "g".into(),
            status: AlertStatus::Firing,
            starts_at: 0,
            ends_at: None,
        };
        let cx = RenderContext {
            external_url: "http://v",
            now: 0,
        };
        let t = event("k", &a, cx);
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["payload"]["summary"].as_str().unwrap().len(), 1024);
        assert!(serde_json::to_vec(&t).unwrap().len() <= MAX_EVENT_BYTES);
        a.status = AlertStatus::Resolved;
        let r = event("k", &a, cx);
        assert_eq!(
            (r["event_action"].as_str(), &r["dedup_key"]),
            (Some("resolve"), &t["dedup_key"])
        );
    }
}
