//! Webhook sink: the Prometheus Alertmanager webhook JSON (version "4"), one request per
//! culprit deployment, so any Alertmanager-compatible receiver works unchanged.

use super::{common, RenderContext};
use crate::alert::lifecycle::AlertRecord;
use crate::alert::outbox::Notification;
use crate::clock::rfc3339;
use serde_json::{json, Value};

/// Alertmanager's zero time, which it sends as `endsAt` of a firing alert.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One alert of the payload.
pub fn alert_json(a: &AlertRecord, cx: RenderContext<'_>) -> Value {
    json!({
        "status": a.status.as_str(),
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(a.starts_at),
        "endsAt": a.ends_at.map_or_else(|| ZERO_TIME.to_string(), rfc3339),
        "generatorURL": a.annotations.get("link").cloned().unwrap_or_else(|| cx.external_url.to_string()),
        "fingerprint": a.fingerprint,
    })
}

/// The webhook body for a notification.
pub fn payload(receiver: &str, n: &Notification, cx: RenderContext<'_>) -> Value {
    let firing = n.alerts.iter().any(AlertRecord::firing);
    let common_labels = common(&n.alerts, |a| &a.labels);
    let group_labels: crate::alert::rules::Labels = common_labels
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "alertname" | "environment" | "service" | "version" | "node"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common(&n.alerts, |a| &a.annotations),
        "externalURL": cx.external_url,
        "alerts": n.alerts.iter().map(|a| alert_json(a, cx)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::lifecycle::AlertStatus;

    #[test]
    fn payload_has_the_version_4_fields() {
        let mut labels = crate::alert::rules::Labels::new();
        labels.insert("alertname".into(), "DeploymentRegression".into());
        labels.insert("service".into(), "a".into());
        let mut a = AlertRecord {
            fingerprint: crate::alert::rules::fingerprint(&labels),
            labels,
            annotations: Default::default(),
            group: "g".into(),
            status: AlertStatus::Firing,
            starts_at: 1_700_000_000_000_000_000,
            ends_at: None,
        };
        let mut b = a.clone();
        b.labels.insert("signal".into(), "latency".into());
        b.status = AlertStatus::Resolved;
        b.ends_at = Some(1_700_000_060_000_000_000);
        a.labels.insert("signal".into(), "error_rate".into());
        let n = Notification {
            id: 1,
            sink: "w".into(),
            group: "g".into(),
            alerts: vec![a, b],
            created_at: 0,
            durable: true,
        };
        let cx = RenderContext {
            external_url: "http://v:4319",
            now: 0,
        };
        let p = payload("w", &n, cx);
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        assert_eq!(
            p["commonLabels"],
            json!({"alertname": "DeploymentRegression", "service": "a"})
        );
        assert_eq!(
            p["groupKey"],
            "{}:{alertname=\"DeploymentRegression\", service=\"a\"}"
        );
        assert_eq!(p["alerts"][0]["endsAt"], ZERO_TIME);
        assert_eq!(p["alerts"][1]["endsAt"], "2023-11-14T22:14:20Z");
        assert_eq!(p["alerts"][1]["status"], "resolved");
    }
}
