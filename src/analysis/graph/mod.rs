//! The versioned dependency-error graph: pairs client and server spans into calls between
//! service versions ([`pairing`], [`calls`]), keeps rolling windows per edge ([`edges`]),
//! and serves them as a snapshot ([`snapshot`], [`dot`]) and as servicegraph metrics
//! ([`metrics`]). Fed by the analysis workers; completed calls are buffered and applied
//! to the edges at each flush, which hands them on, grouped by edge, to the judge
//! ([`runs`]).

pub mod calls;
pub mod config;
pub mod cumulative;
pub mod dot;
pub mod edges;
pub mod fixtures;
pub mod metrics;
pub mod pairing;
pub mod runs;
pub mod snapshot;
pub mod thinning;
mod tombstones;

pub use runs::{EdgeRun, EdgeRuns, EdgeSample};
pub use snapshot::{EdgeView, GraphSnapshot, NodeView, Quantiles};

use crate::model::{EdgeCall, Name, SpanBatch, UnixNanos};
use edges::EdgeStore;
use pairing::{Emit, PairingStore, Side, Unpaired};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use thinning::{Pressure, Thinning};

/// `(environment, service, side)` of unpaired-span counters.
type UnpairedKey = (Name, Name, Side);

/// The graph: pairing store, edge windows and unpaired-span counters. Shared by the
/// analysis workers (which call [`Graph::record_spans`] concurrently), the ticker and the API.
pub struct Graph {
    pairing: PairingStore,
    edges: EdgeStore,
    unpaired: Mutex<HashMap<UnpairedKey, u64>>,
    /// Unpaired spans not given their own series because the cap was reached.
    unpaired_overflow: AtomicU64,
    max_unpaired_series: usize,
    thinning: Thinning,
    default_window_ns: u64,
    horizon_ns: u64,
}

impl Graph {
    pub fn new(cfg: &config::GraphConfig) -> Self {
        Self {
            pairing: PairingStore::new(cfg.pairing_ttl, cfg.max_pending, cfg.shards),
            edges: EdgeStore::new(cfg.max_edges, cfg.slot, cfg.horizon),
            unpaired: Mutex::new(HashMap::new()),
            unpaired_overflow: AtomicU64::new(0),
            max_unpaired_series: cfg.max_edges,
            thinning: Thinning::new(cfg.min_sample_rate),
            default_window_ns: cfg.default_window.as_nanos() as u64,
            horizon_ns: cfg.horizon.as_nanos() as u64,
        }
    }

    /// Records spans; calls completed by them (pairs, database/messaging calls, roots, and
    /// entries evicted early from a full store) are appended to `out` and buffered for the
    /// edges. When the buffer is full it is flushed here and its runs returned (for the
    /// judge); otherwise the next [`tick`](Self::tick) flushes it.
    pub fn record_spans(
        &self,
        batch: &SpanBatch,
        now: UnixNanos,
        out: &mut Vec<EdgeCall>,
    ) -> Option<EdgeRuns> {
        let start = out.len();
        let mut unpaired = Vec::new();
        let mut emit = Emit {
            calls: out,
            unpaired: &mut unpaired,
        };
        let level = self.thinning.level();
        let thinned = self
            .pairing
            .record_batch(&batch.spans, level, now, &mut emit);
        if thinned > 0 {
            self.thinning.thinned.fetch_add(thinned, Ordering::Relaxed);
        }
        let weight = 1 << level;
        let full = self.edges.record(&out[start..], now, weight);
        self.count_unpaired(unpaired, u64::from(weight));
        full.then(|| self.edges.flush())
    }

    /// Expires unpaired spans past the TTL: client spans become virtual-node edges
    /// (appended to `out`), server spans without a client are counted unpaired. Then
    /// flushes the buffered calls into the edges (returning them grouped by edge) and
    /// retires edge slots and edges older than the horizon.
    pub fn tick(&self, now: UnixNanos, out: &mut Vec<EdgeCall>) -> EdgeRuns {
        let start = out.len();
        let mut unpaired = Vec::new();
        self.pairing.expire_until(
            now,
            &mut Emit {
                calls: out,
                unpaired: &mut unpaired,
            },
        );
        let weight = 1 << self.thinning.level();
        self.edges.record(&out[start..], now, weight);
        let runs = self.edges.flush();
        self.edges.retire(now);
        self.count_unpaired(unpaired, u64::from(weight));
        runs
    }

    /// Adapts the share of traces the graph keeps to how far the analysis is behind its
    /// input (called once a second); returns the new rate when it changed.
    pub fn adapt(&self, pressure: Pressure) -> Option<f64> {
        self.thinning.adapt(pressure)?;
        Some(self.thinning.rate())
    }

    /// Fraction of traces the graph keeps now.
    pub fn sample_rate(&self) -> f64 {
        self.thinning.rate()
    }

    /// Spans left out of the graph by thinning, since start.
    pub fn thinned_spans(&self) -> u64 {
        self.thinning.thinned.load(Ordering::Relaxed)
    }

    /// Applies the buffered calls to the edges now; returns them grouped by edge. The
    /// snapshot and `/metrics` show the edges as of the last flush.
    pub fn flush(&self) -> EdgeRuns {
        self.edges.flush()
    }

    /// Nodes and edges with calls in `[from, to)`, optionally of one environment.
    pub fn snapshot(&self, env: Option<&str>, from: UnixNanos, to: UnixNanos) -> GraphSnapshot {
        GraphSnapshot {
            sample_rate: self.sample_rate(),
            ..snapshot::build(&self.edges, env, from, to)
        }
    }

    /// Window used when a request names none.
    pub fn default_window_ns(&self) -> u64 {
        self.default_window_ns
    }

    /// How far back the edge windows reach.
    pub fn horizon_ns(&self) -> u64 {
        self.horizon_ns
    }

    /// Entries in the pairing store (waiting spans and remembered pairs).
    pub fn pending(&self) -> usize {
        self.pairing.len()
    }

    /// Estimated heap bytes of the pairing store (see [`PairingStore::memory_bytes`]).
    pub fn pairing_memory_bytes(&self) -> usize {
        self.pairing.memory_bytes()
    }

    /// Completed pairs remembered for duplicate detection.
    pub fn pairing_tombstones(&self) -> usize {
        self.pairing.tombstones()
    }

    /// Entries of the pairing store's expiry queues.
    #[cfg(test)]
    pub fn pairing_queued(&self) -> usize {
        self.pairing.queued()
    }

    /// Most entries the pairing store holds.
    pub fn pending_capacity(&self) -> usize {
        self.pairing.capacity()
    }

    /// Edges held (including the overflow edge when present).
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// Counters of the pairing store.
    pub fn pairing_stats(&self) -> &pairing::PairingStats {
        &self.pairing.stats
    }

    /// Unpaired spans counted for one service and side.
    pub fn unpaired(&self, env: &str, service: &str, side: Side) -> u64 {
        let key = (Name::new(env), Name::new(service), side);
        self.unpaired.lock().get(&key).copied().unwrap_or(0)
    }

    fn count_unpaired(&self, spans: Vec<Unpaired>, weight: u64) {
        if spans.is_empty() {
            return;
        }
        let mut map = self.unpaired.lock();
        for u in spans {
            let key = (
                u.resource.environment.clone(),
                u.resource.service.clone(),
                u.side,
            );
            let full = map.len() >= self.max_unpaired_series;
            match map.get_mut(&key) {
                Some(n) => *n += weight,
                None if full => {
                    self.unpaired_overflow.fetch_add(weight, Ordering::Relaxed);
                }
                None => {
                    map.insert(key, weight);
                }
            }
        }
    }
}

#[cfg(test)]
mod flush_tests;
#[cfg(test)]
mod tests;
