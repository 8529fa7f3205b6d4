//! What `/api/v1/alerts` and the dashboard show: every alert (firing, and resolved within
//! the retention) with its delivery state at each sink it is routed to.

use super::lifecycle::AlertStatus;
use super::Alerting;
use crate::clock::rfc3339;
use serde::Serialize;

/// One alert as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertView {
    pub fingerprint: String,
    /// PagerDuty `dedup_key`.
    pub dedup_key: String,
    pub status: AlertStatus,
    pub labels: super::rules::Labels,
    pub annotations: super::rules::Labels,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339, once resolved.
    pub ends_at: Option<String>,
    pub delivery: Vec<DeliveryView>,
}

/// An alert's state at one sink.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeliveryView {
    pub sink: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `delivered` (the sink has the current status), `pending` (queued or retrying) or
    /// `failed` (given up: rejected or expired) or `unknown` (delivered before the last
    /// restart, or routed after the alert's last transition).
    pub state: &'static str,
    /// Status the sink last accepted.
    pub delivered_status: Option<AlertStatus>,
    /// RFC 3339.
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
}

impl Alerting {
    /// Every known alert with its delivery state, firing first, then by start time.
    pub fn alerts(&self) -> Vec<AlertView> {
        let g = self.inner.lock();
        let mut out: Vec<AlertView> = g
            .book
            .all()
            .map(|a| AlertView {
                fingerprint: a.fingerprint.clone(),
                dedup_key: super::rules::dedup_key(&a.fingerprint),
                status: a.status,
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: rfc3339(a.starts_at),
                ends_at: a.ends_at.map(rfc3339),
                delivery: self
                    .sinks
                    .iter()
                    .zip(&g.queues)
                    .filter(|(s, _)| s.config.route.matches(&a.labels))
                    .map(|(s, q)| {
                        let d = q.delivery.get(&a.fingerprint).cloned().unwrap_or_default();
                        let state = if d.pending > 0 {
                            "pending"
                        } else if d.delivered == Some(a.status) {
                            "delivered"
                        } else if d.last_error.is_some() {
                            "failed"
                        } else {
                            "unknown"
                        };
                        DeliveryView {
                            sink: s.name.clone(),
                            kind: s.kind.as_str(),
                            state,
                            delivered_status: d.delivered,
                            delivered_at: d.delivered_at.map(rfc3339),
                            last_error: d.last_error,
                        }
                    })
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| {
            (b.status == AlertStatus::Firing, &b.starts_at)
                .cmp(&(a.status == AlertStatus::Firing, &a.starts_at))
        });
        out
    }
}
