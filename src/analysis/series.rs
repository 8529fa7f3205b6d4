//! Per-version RED state: for each (environment, service, version, operation, span kind)
//! rolling time slots of request count, error count and a latency histogram.
//! (Interface fixed for the judge and API; the store itself is being built.)

use super::config::StateConfig;
use super::histogram::LatencyHistogram;
use crate::model::{MetricBatch, Name, SpanBatch, SpanKind, UnixNanos};

/// Requests of one operation of one version within a time range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpStats {
    pub operation: Name,
    pub kind: SpanKind,
    pub requests: u64,
    pub errors: u64,
    pub latency: LatencyHistogram,
}

/// Served requests (SERVER/CONSUMER spans, or request-duration metrics where a version
/// sends no traces) of one version within a time range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionStats {
    pub version: Name,
    pub requests: u64,
    pub errors: u64,
    pub latency: LatencyHistogram,
    pub operations: Vec<OpStats>,
    /// First and last time the version was seen (any span kind), for lifecycle decisions.
    pub first_seen: UnixNanos,
    pub last_seen: UnixNanos,
}

/// One service of one environment with its versions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceStats {
    pub environment: Name,
    pub service: Name,
    pub versions: Vec<VersionStats>,
}

/// All per-version series.
pub struct SeriesStore {}

impl SeriesStore {
    pub fn new(_cfg: &StateConfig) -> Self {
        Self {}
    }

    pub fn record_spans(&self, _batch: &SpanBatch, _now: UnixNanos) {}

    pub fn record_metrics(&self, _batch: &MetricBatch, _now: UnixNanos) {}

    /// Rolls slots and retires idle versions.
    pub fn tick(&self, _now: UnixNanos) {}

    /// Served-request stats of every version of one service within `[from, to)`.
    pub fn service_versions(
        &self,
        _env: &str,
        _service: &str,
        _from: UnixNanos,
        _to: UnixNanos,
    ) -> Vec<VersionStats> {
        Vec::new()
    }

    /// Every service (optionally of one environment) with its versions within `[from, to)`.
    pub fn services(
        &self,
        _env: Option<&str>,
        _from: UnixNanos,
        _to: UnixNanos,
    ) -> Vec<ServiceStats> {
        Vec::new()
    }
}
