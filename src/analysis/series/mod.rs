//! Per-version RED state, fed by the analysis workers: for each (environment, service,
//! version, operation, span kind) rolling time slots of request count, error count and a
//! latency histogram, sharded by (environment, service) and bounded by caps with overflow
//! series. The judge and the API read it by time range. Design: docs/design/state.md.

mod metrics;
mod query;
mod record;
mod shard;
#[cfg(test)]
mod tests;

use super::config::StateConfig;
use super::histogram::LatencyHistogram;
use super::ring::SlotIdx;
use crate::model::{Name, SpanKind, UnixNanos};
use parking_lot::Mutex;
use shard::ServiceEntry;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

/// Name of overflow series, after the OpenTelemetry SDKs' cardinality-limit attribute
/// `otel.metric.overflow`: the operation of a version's overflow series (per-service cap),
/// the version of a service's catch-all overflow series, and the service of the global
/// overflow (environment "") that takes new services beyond `max_services` and new series
/// beyond `max_series`.
pub const OVERFLOW: &str = "otel.metric.overflow";

/// The store's own counters, rendered into `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Live series, overflow series included.
    pub series: AtomicUsize,
    pub services: AtomicUsize,
    pub overflow_series: AtomicUsize,
    /// Spans and metric points recorded into an overflow series.
    pub overflow_items: AtomicU64,
    /// New series refused by the per-service cap (their data went to an overflow series).
    pub capped_per_service: AtomicU64,
    pub retired_versions: AtomicU64,
    /// Durations above the histogram's range, recorded at its maximum.
    pub clamped_values: AtomicU64,
    /// Metric points ignored because spans already speak for their series.
    pub metric_points_superseded: AtomicU64,
    pub spans: AtomicU64,
    pub metric_points: AtomicU64,
    /// Heap bytes estimated at the last tick.
    pub memory_bytes: AtomicU64,
}

impl Counters {
    /// Takes one place under the store-wide cap; false when it is full.
    fn reserve_series(&self, max: usize) -> bool {
        self.series
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }
}

/// The services of one lock shard, keyed by their (environment, service) hash.
type ShardMap = hashbrown::HashTable<ServiceEntry>;

/// All per-version series. Safe to share: writers lock one shard per run of spans of one
/// resource; readers lock the shard of the service they ask about.
pub struct SeriesStore {
    cfg: StateConfig,
    slot_ns: u64,
    horizon_slots: u64,
    shards: Box<[Mutex<ShardMap>]>,
    /// The global overflow service (locked after a shard, never before).
    global_overflow: Mutex<ServiceEntry>,
    hasher: ahash::RandomState,
    counters: Counters,
}

impl SeriesStore {
    pub fn new(cfg: &StateConfig) -> Self {
        let n = cfg.shards.clamp(1, 4096).next_power_of_two();
        let overflow = Name::new_static(OVERFLOW);
        Self {
            cfg: cfg.clone(),
            slot_ns: cfg.slot_ns(),
            horizon_slots: cfg.horizon_slots(),
            shards: (0..n).map(|_| Mutex::new(ShardMap::new())).collect(),
            global_overflow: Mutex::new(ServiceEntry::new(0, &Name::default(), &overflow)),
            hasher: ahash::RandomState::new(),
            counters: Counters::default(),
        }
    }

    /// The configuration the store runs with.
    pub fn config(&self) -> &StateConfig {
        &self.cfg
    }

    /// The slot holding time `t`.
    fn slot_of(&self, t: UnixNanos) -> SlotIdx {
        super::ring::slot_index(t, self.slot_ns)
    }

    /// Oldest slot kept when `slot` is open.
    fn oldest_kept(&self, slot: SlotIdx) -> SlotIdx {
        slot.saturating_sub(self.horizon_slots as u32)
    }

    fn shard(&self, hash: u64) -> &Mutex<ShardMap> {
        &self.shards[(hash >> 7) as usize & (self.shards.len() - 1)]
    }

    /// Rolls slots and retires idle versions.
    pub fn tick(&self, now: UnixNanos) {
        let slot = self.slot_of(now);
        let oldest = self.oldest_kept(slot);
        let idle_before = now.saturating_sub(self.cfg.version_idle.as_nanos() as u64);
        let mut acc = TickTotals::default();
        for shard in self.shards.iter() {
            let mut map = shard.lock();
            for entry in map.iter_mut() {
                acc.add(entry, |e| e.tick(slot, oldest, idle_before));
            }
            let before = map.len();
            map.retain(|e| !e.versions.is_empty() || e.series_count() > 0);
            acc.removed_services += before - map.len();
            acc.bytes += map.capacity() * (std::mem::size_of::<ServiceEntry>() + 1);
        }
        acc.add(&mut self.global_overflow.lock(), |e| {
            e.tick(slot, oldest, idle_before)
        });
        self.publish(acc);
    }

    fn publish(&self, acc: TickTotals) {
        let c = &self.counters;
        c.series.fetch_sub(acc.removed, Ordering::AcqRel);
        c.services.fetch_sub(acc.removed_services, Ordering::AcqRel);
        c.overflow_series.store(acc.overflow, Ordering::Relaxed);
        c.retired_versions
            .fetch_add(acc.retired as u64, Ordering::Relaxed);
        c.memory_bytes.store(acc.bytes as u64, Ordering::Relaxed);
    }

    /// Live series (overflow series included).
    pub fn series_count(&self) -> usize {
        self.counters.series.load(Ordering::Acquire)
    }

    /// Heap bytes the store held at the last tick (an estimate: allocator overhead aside).
    pub fn memory_estimate(&self) -> u64 {
        self.counters.memory_bytes.load(Ordering::Relaxed)
    }
}

/// What one tick saw, summed over shards.
#[derive(Default)]
struct TickTotals {
    removed: usize,
    retired: usize,
    removed_services: usize,
    overflow: usize,
    bytes: usize,
}

impl TickTotals {
    fn add(&mut self, e: &mut ServiceEntry, tick: impl FnOnce(&mut ServiceEntry) -> Vec<Name>) {
        let before = e.series_count();
        let retired = tick(e);
        if !retired.is_empty() {
            tracing::debug!(environment = %e.environment, service = %e.service, versions = ?retired, "retired idle versions");
        }
        self.retired += retired.len();
        self.removed += before - e.series_count();
        self.overflow += e.overflow;
        self.bytes += e.heap_bytes();
    }
}
