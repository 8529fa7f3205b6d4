//! Analysis: turns normalized spans and metric samples into per-version windows
//! ([`series`]), the versioned dependency graph ([`graph`]) and feeds for the judge
//! ([`Observer`]). Everything here is bounded and takes `now` as an input.

pub mod config;
pub mod graph;
pub mod histogram;
pub mod ring;
pub mod series;
pub mod slot_log;

use crate::model::{IngestItem, MetricBatch, SpanBatch, UnixNanos};
use graph::EdgeRuns;
use std::sync::Arc;

/// A consumer of the analysed stream (the judge). Called on the analysis workers, so it
/// must be quick and must not block.
pub trait Observer: Send + Sync {
    /// Spans as they arrive.
    fn on_spans(&self, _batch: &SpanBatch, _now: UnixNanos) {}
    /// Calls completed by the graph (paired, or expired into virtual-node edges), grouped
    /// by edge, as each flush of the graph applies them (every tick at least).
    fn on_edges(&self, _runs: &EdgeRuns, _now: UnixNanos) {}
    /// Request-duration metric deltas.
    fn on_metrics(&self, _batch: &MetricBatch, _now: UnixNanos) {}
}

/// The analysis state shared by the workers, the judge and the API.
pub struct Analyzer {
    pub series: series::SeriesStore,
    pub graph: graph::Graph,
    graph_enabled: bool,
    observers: Vec<Arc<dyn Observer>>,
}

impl Analyzer {
    pub fn new(state: &config::StateConfig, graph: &graph::config::GraphConfig) -> Self {
        Self {
            series: series::SeriesStore::new(state),
            graph: graph::Graph::new(graph),
            graph_enabled: graph.enabled,
            observers: Vec::new(),
        }
    }

    /// Adds a consumer of the stream (before the workers start).
    pub fn add_observer(&mut self, o: Arc<dyn Observer>) {
        self.observers.push(o);
    }

    /// Records one ingested item into every structure.
    pub fn record(&self, item: &IngestItem, now: UnixNanos) {
        match item {
            IngestItem::Spans(batch) => {
                self.series.record_spans(batch, now);
                let mut runs = None;
                if self.graph_enabled {
                    runs = self.graph.record_spans(batch, now, &mut Vec::new());
                }
                for o in &self.observers {
                    o.on_spans(batch, now);
                }
                if let Some(runs) = runs {
                    self.deliver(&runs, now);
                }
            }
            IngestItem::Metrics(batch) => {
                self.series.record_metrics(batch, now);
                for o in &self.observers {
                    o.on_metrics(batch, now);
                }
            }
        }
    }

    /// Periodic housekeeping (every second): rolls windows, expires the pairing store into
    /// virtual-node edges, retires idle versions.
    pub fn tick(&self, now: UnixNanos) {
        self.series.tick(now);
        let runs = self.graph.tick(now, &mut Vec::new());
        self.deliver(&runs, now);
    }

    /// Adapts the share of traces the graph keeps to the pressure on the analysis (once a
    /// second); returns the new rate when it changed. A disabled graph never thins.
    pub fn adapt_graph(&self, pressure: graph::thinning::Pressure) -> Option<f64> {
        if !self.graph_enabled {
            return None;
        }
        self.graph.adapt(pressure)
    }

    fn deliver(&self, runs: &EdgeRuns, now: UnixNanos) {
        if !runs.is_empty() {
            for o in &self.observers {
                o.on_edges(runs, now);
            }
        }
    }
}

impl crate::telemetry::ExportMetrics for Analyzer {
    fn export_metrics(&self, w: &mut crate::telemetry::PromWriter) {
        self.series.export_metrics(w);
        self.graph.export_metrics(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SpanBatch, SpanKind};
    use graph::fixtures::{resource, span};

    fn pair() -> IngestItem {
        let (a, b) = (resource("e", "a", "1"), resource("e", "b", "1"));
        IngestItem::Spans(SpanBatch {
            spans: vec![
                span(&a, SpanKind::Client, 1, 1, 0, 1_000, 500, false),
                span(&b, SpanKind::Server, 1, 2, 1, 1_100, 300, false),
            ],
        })
    }

    #[test]
    fn the_graph_can_be_switched_off() {
        let state = config::StateConfig::default();
        let on = Analyzer::new(&state, &graph::config::GraphConfig::default());
        on.record(&pair(), 2_000);
        on.graph.flush();
        assert_eq!(on.graph.snapshot(Some("e"), 0, u64::MAX).edges.len(), 1);
        let off_cfg = graph::config::GraphConfig {
            enabled: false,
            ..Default::default()
        };
        let off = Analyzer::new(&state, &off_cfg);
        off.record(&pair(), 2_000);
        assert!(off.graph.snapshot(Some("e"), 0, u64::MAX).edges.is_empty());
        let pressure = graph::thinning::Pressure {
            queued: 10,
            capacity: 10,
            refused: 5,
            cpu: Some(1.0),
        };
        assert_eq!(
            off.adapt_graph(pressure),
            None,
            "a disabled graph never thins"
        );
        assert_eq!(off.graph.sample_rate(), 1.0);
        assert_eq!(on.adapt_graph(pressure), Some(0.5));
        assert!(off.series.series_count() > 0, "series are still kept");
    }
}
