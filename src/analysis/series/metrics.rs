//! The store's own telemetry for `/metrics`: series, services, overflow, retirements,
//! clamped values and the memory estimate, read from live counters at scrape time.

use super::SeriesStore;
use crate::telemetry::{ExportMetrics, PromType, PromWriter};
use std::sync::atomic::Ordering;

impl ExportMetrics for SeriesStore {
    fn export_metrics(&self, w: &mut PromWriter) {
        let c = &self.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        let gauges = [
            ("verdict_state_series", "Live per-version series, overflow series included.", c.series.load(Ordering::Relaxed) as f64),
            ("verdict_state_services", "Live (environment, service) pairs.", c.services.load(Ordering::Relaxed) as f64),
            ("verdict_state_overflow_series", "Live overflow series (operation or version otel.metric.overflow), at the last tick.", c.overflow_series.load(Ordering::Relaxed) as f64),
            ("verdict_state_memory_bytes", "Estimated heap bytes of the per-version state, at the last tick.", load(&c.memory_bytes)),
        ];
        for (name, help, v) in gauges {
            w.family(name, PromType::Gauge, help);
            w.sample(name, &[], v);
        }
        let counters = [
            (
                "verdict_state_spans_total",
                "Spans recorded into the per-version state.",
                &c.spans,
            ),
            (
                "verdict_state_metric_points_total",
                "Request-duration metric points received by the per-version state.",
                &c.metric_points,
            ),
            (
                "verdict_state_metric_points_superseded_total",
                "Metric points ignored because spans already speak for their series.",
                &c.metric_points_superseded,
            ),
            (
                "verdict_state_overflow_items_total",
                "Spans and metric points recorded into an overflow series.",
                &c.overflow_items,
            ),
            (
                "verdict_state_series_capped_total",
                "Items whose new series was refused by the per-service cap.",
                &c.capped_per_service,
            ),
            (
                "verdict_state_retired_versions_total",
                "Versions retired after staying idle.",
                &c.retired_versions,
            ),
            (
                "verdict_state_clamped_values_total",
                "Durations above the histogram's range, recorded at its maximum.",
                &c.clamped_values,
            ),
        ];
        for (name, help, v) in counters {
            w.family(name, PromType::Counter, help);
            w.sample(name, &[], load(v));
        }
    }
}
