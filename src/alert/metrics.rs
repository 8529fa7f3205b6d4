//! The alerting's `/metrics`: per-sink delivery counters, queue depth and the age of the
//! oldest undelivered notification, plus alert and store gauges. Rendered at scrape time.

use super::Alerting;
use crate::telemetry::{ExportMetrics, PromType, PromWriter};

const PER_SINK: [(&str, PromType, &str); 8] = [
    (
        "verdict_alert_notifications_sent_total",
        PromType::Counter,
        "Notifications accepted by the sink.",
    ),
    (
        "verdict_alert_notifications_failed_total",
        PromType::Counter,
        "Delivery attempts that failed.",
    ),
    (
        "verdict_alert_notifications_retried_total",
        PromType::Counter,
        "Failed attempts that are retried (transport errors, 408, 429, 5xx).",
    ),
    (
        "verdict_alert_notifications_rejected_total",
        PromType::Counter,
        "Notifications given up because the sink answered 4xx (not 408/429).",
    ),
    (
        "verdict_alert_notifications_overflowed_total",
        PromType::Counter,
        "Notifications dropped because the sink's queue was full.",
    ),
    (
        "verdict_alert_notifications_expired_total",
        PromType::Counter,
        "Notifications given up after max_notification_age undelivered.",
    ),
    (
        "verdict_alert_queue_depth",
        PromType::Gauge,
        "Notifications waiting for the sink.",
    ),
    (
        "verdict_alert_oldest_undelivered_seconds",
        PromType::Gauge,
        "Age of the oldest notification waiting for the sink.",
    ),
];

impl ExportMetrics for Alerting {
    fn export_metrics(&self, w: &mut PromWriter) {
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        let g = self.inner.lock();
        for (k, (name, kind, help)) in PER_SINK.iter().enumerate() {
            w.family(name, *kind, help);
            for (s, q) in self.sinks.iter().zip(&g.queues) {
                let c = q.counters;
                let v = match k {
                    0 => c.sent as f64,
                    1 => c.failed as f64,
                    2 => c.retried as f64,
                    3 => c.rejected as f64,
                    4 => c.overflowed as f64,
                    5 => c.expired as f64,
                    6 => q.items.len() as f64,
                    _ => q.oldest_age(now) as f64 / 1e9,
                };
                w.sample(name, &[("sink", &s.name), ("type", s.kind.as_str())], v);
            }
        }
        w.family(
            "verdict_alerts_firing",
            PromType::Gauge,
            "Alerts firing now.",
        );
        w.sample("verdict_alerts_firing", &[], g.book.firing().count() as f64);
        w.family(
            "verdict_alerts_refused_total",
            PromType::Counter,
            "New alerts refused because alerting.max_alerts was reached.",
        );
        w.sample("verdict_alerts_refused_total", &[], g.refused as f64);
        w.family(
            "verdict_alert_store_bytes",
            PromType::Gauge,
            "Size of the alert store log.",
        );
        w.sample("verdict_alert_store_bytes", &[], g.store.bytes() as f64);
        w.family(
            "verdict_alert_store_errors_total",
            PromType::Counter,
            "Alert store writes that failed.",
        );
        w.sample(
            "verdict_alert_store_errors_total",
            &[],
            g.store_errors as f64,
        );
        w.family(
            "verdict_alert_store_truncated_bytes",
            PromType::Gauge,
            "Bytes of torn or corrupt tail cut off the store at start.",
        );
        w.sample(
            "verdict_alert_store_truncated_bytes",
            &[],
            g.truncated_bytes as f64,
        );
    }
}
