//! The versioned dependency-error graph: pairs client and server spans into calls between
//! service versions, and keeps rolling windows per edge.

pub mod config;

use crate::model::{EdgeCall, SpanBatch, UnixNanos};

/// The graph. (Placeholder until the graph is built.)
pub struct Graph {}

impl Graph {
    pub fn new(_cfg: &config::GraphConfig) -> Self {
        Self {}
    }

    /// Records spans; calls completed by them are appended to `out`.
    pub fn record_spans(&self, _batch: &SpanBatch, _now: UnixNanos, _out: &mut Vec<EdgeCall>) {}

    /// Expires unpaired spans into virtual-node edges appended to `out`.
    pub fn tick(&self, _now: UnixNanos, _out: &mut Vec<EdgeCall>) {}
}
