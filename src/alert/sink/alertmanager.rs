//! Alertmanager sink: POST `/api/v2/alerts`. Firing alerts carry `endsAt` = now + 4 x
//! the re-send interval (as Prometheus does), so Alertmanager keeps them only while
//! verdict keeps re-sending; a resolve is the same label set with `endsAt` = resolve time.

use super::RenderContext;
use crate::alert::outbox::Notification;
use crate::clock::rfc3339;
use serde_json::{json, Value};
use std::time::Duration;

/// The JSON array of postable alerts.
pub fn payload(n: &Notification, repeat: Duration, cx: RenderContext<'_>) -> Value {
    let ahead = cx.now + 4 * repeat.as_nanos() as u64;
    let alerts: Vec<Value> = n
        .alerts
        .iter()
        .map(|a| {
            json!({
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.starts_at),
                "endsAt": rfc3339(a.ends_at.unwrap_or(ahead)),
                "generatorURL": a.annotations.get("link").cloned().unwrap_or_else(|| cx.external_url.to_string()),
            })
        })
        .collect();
    Value::Array(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::lifecycle::{AlertRecord, AlertStatus};

    #[test]
    fn firing_ends_ahead_and_resolved_ends_at_resolve_time() {
        let s = 1_000_000_000u64;
        let a = AlertRecord {
            fingerprint: "f".into(),
            labels: Default::default(),
            annotations: Default::default(),
            group: "g".into(),
            status: AlertStatus::Firing,
            starts_at: 1_700_000_000 * s,
            ends_at: None,
        };
        let mut r = a.clone();
        r.status = AlertStatus::Resolved;
        r.ends_at = Some(1_700_000_010 * s);
        let n = Notification {
            id: 1,
            sink: "am".into(),
            group: "*".into(),
            alerts: vec![a, r],
            created_at: 0,
            durable: true,
        };
        let cx = RenderContext {
            external_url: "http://v",
            now: 1_700_000_020 * s,
        };
        let p = payload(&n, Duration::from_secs(60), cx);
        assert_eq!(p[0]["endsAt"], rfc3339(1_700_000_260 * s));
        assert_eq!(p[1]["endsAt"], rfc3339(1_700_000_010 * s));
    }
}
