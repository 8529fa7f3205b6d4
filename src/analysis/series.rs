//! Per-version RED state: for each (environment, service, version, operation, span kind)
//! rolling time slots of request count, error count and a latency histogram.

use super::config::StateConfig;
use crate::model::{MetricBatch, SpanBatch, UnixNanos};

/// All per-version series. (Placeholder until the state is built.)
pub struct SeriesStore {}

impl SeriesStore {
    pub fn new(_cfg: &StateConfig) -> Self {
        Self {}
    }

    pub fn record_spans(&self, _batch: &SpanBatch, _now: UnixNanos) {}

    pub fn record_metrics(&self, _batch: &MetricBatch, _now: UnixNanos) {}

    pub fn tick(&self, _now: UnixNanos) {}
}
