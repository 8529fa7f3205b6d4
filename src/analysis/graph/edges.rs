//! Edge windows: per `(environment, caller, caller_version, callee, callee_version,
//! connection_type)` rolling time slots of calls, failures, client-side and server-side
//! latency, plus cumulative servicegraph counters for `/metrics`. Capped: calls on new
//! edges beyond the cap go to one overflow edge and are counted.

use super::histogram_slot::{Cumulative, EdgeSlot};
use crate::analysis::histogram::LatencyHistogram;
use crate::model::{ConnectionType, EdgeCall, Name, NodeKind, UnixNanos};
use dashmap::DashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Name used for both ends of the overflow edge.
pub const OVERFLOW_NODE: &str = "__overflow__";

/// Identity of an edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeKey {
    pub environment: Name,
    pub caller: Name,
    pub caller_version: Name,
    pub callee: Name,
    pub callee_version: Name,
    pub connection_type: ConnectionTypeOrd,
}

/// [`ConnectionType`] with an order, for sorted output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionTypeOrd(pub u8);

impl ConnectionTypeOrd {
    pub fn of(c: ConnectionType) -> Self {
        Self(c as u8)
    }

    pub fn get(self) -> ConnectionType {
        match self.0 {
            1 => ConnectionType::MessagingSystem,
            2 => ConnectionType::Database,
            3 => ConnectionType::VirtualNode,
            _ => ConnectionType::Direct,
        }
    }
}

impl EdgeKey {
    fn of(c: &EdgeCall) -> Self {
        Self {
            environment: c.environment.clone(),
            caller: c.caller.clone(),
            caller_version: c.caller_version.clone(),
            callee: c.callee.clone(),
            callee_version: c.callee_version.clone(),
            connection_type: ConnectionTypeOrd::of(c.connection_type),
        }
    }

    fn overflow() -> Self {
        Self {
            environment: Name::default(),
            caller: Name::new_static(OVERFLOW_NODE),
            caller_version: Name::default(),
            callee: Name::new_static(OVERFLOW_NODE),
            callee_version: Name::default(),
            connection_type: ConnectionTypeOrd::of(ConnectionType::Direct),
        }
    }
}

/// One edge's state.
#[derive(Debug)]
pub struct EdgeState {
    pub callee_kind: NodeKind,
    /// Oldest first; the last slot is open, the others frozen.
    slots: VecDeque<EdgeSlot>,
    pub cumulative: Cumulative,
    pub last_seen: UnixNanos,
}

/// An edge's totals over a time range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdgeTotals {
    pub requests: u64,
    pub errors: u64,
    pub client: LatencyHistogram,
    pub server: LatencyHistogram,
}

impl EdgeState {
    fn new(kind: NodeKind, now: UnixNanos) -> Self {
        Self {
            callee_kind: kind,
            slots: VecDeque::new(),
            cumulative: Cumulative::default(),
            last_seen: now,
        }
    }

    fn record(&mut self, c: &EdgeCall, slot_start: UnixNanos) {
        if self.slots.back().is_none_or(|s| s.start < slot_start) {
            if let Some(open) = self.slots.back_mut() {
                open.freeze();
            }
            self.slots.push_back(EdgeSlot::new(slot_start));
        }
        // Calls recorded with a slightly older `now` (another worker) join the open slot.
        if let Some(open) = self.slots.back_mut() {
            open.record(c);
        }
        self.cumulative.record(c);
    }

    /// Sums the slots overlapping `[from, to)`.
    pub fn totals(&self, from: UnixNanos, to: UnixNanos, slot_ns: u64) -> EdgeTotals {
        let mut t = EdgeTotals::default();
        for s in self
            .slots
            .iter()
            .filter(|s| s.start < to && s.start.saturating_add(slot_ns) > from)
        {
            s.add_to(&mut t);
        }
        t
    }

    /// Bytes held by the slots (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.slots.iter().map(EdgeSlot::heap_bytes).sum::<usize>()
            + self.slots.capacity() * std::mem::size_of::<EdgeSlot>()
    }

    /// Estimated bytes of the edge in its map: key, state and heap.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<(EdgeKey, EdgeState)>() + self.heap_bytes()
    }
}

/// All edges, capped.
pub struct EdgeStore {
    edges: DashMap<EdgeKey, EdgeState, ahash::RandomState>,
    max_edges: usize,
    count: AtomicUsize,
    slot_ns: u64,
    horizon_ns: u64,
    /// Calls recorded on the overflow edge because the cap was reached.
    pub overflow_calls: AtomicU64,
    /// Edges retired after a horizon without calls.
    pub retired: AtomicU64,
}

impl EdgeStore {
    pub fn new(max_edges: usize, slot: std::time::Duration, horizon: std::time::Duration) -> Self {
        Self {
            edges: DashMap::with_hasher(ahash::RandomState::new()),
            max_edges: max_edges.max(1),
            count: AtomicUsize::new(0),
            slot_ns: (slot.as_nanos() as u64).max(1),
            horizon_ns: horizon.as_nanos() as u64,
            overflow_calls: AtomicU64::new(0),
            retired: AtomicU64::new(0),
        }
    }

    pub fn slot_ns(&self) -> u64 {
        self.slot_ns
    }

    pub fn len(&self) -> usize {
        self.edges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// Records calls into the slot holding `now`.
    pub fn record(&self, calls: &[EdgeCall], now: UnixNanos) {
        let slot_start = now - now % self.slot_ns;
        for c in calls {
            self.record_one(c, now, slot_start);
        }
    }

    fn record_one(&self, c: &EdgeCall, now: UnixNanos, slot_start: UnixNanos) {
        let key = EdgeKey::of(c);
        if let Some(mut e) = self.edges.get_mut(&key) {
            e.last_seen = now;
            e.record(c, slot_start);
            return;
        }
        let key = if self.count.fetch_add(1, Ordering::AcqRel) < self.max_edges {
            key
        } else {
            self.count.fetch_sub(1, Ordering::AcqRel);
            self.overflow_calls.fetch_add(1, Ordering::Relaxed);
            EdgeKey::overflow()
        };
        let is_overflow = key.caller == OVERFLOW_NODE;
        let mut e = self
            .edges
            .entry(key)
            .or_insert_with(|| EdgeState::new(c.callee_kind, now));
        if !is_overflow && e.cumulative.requests > 0 {
            // Another worker created the same edge first: give back the reservation.
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        e.last_seen = now;
        e.record(c, slot_start);
    }

    /// Drops slots older than the horizon and edges idle for a whole horizon.
    pub fn retire(&self, now: UnixNanos) {
        let oldest = now.saturating_sub(self.horizon_ns);
        let slot_ns = self.slot_ns;
        self.edges.retain(|k, e| {
            while e
                .slots
                .front()
                .is_some_and(|s| s.start.saturating_add(slot_ns) <= oldest)
            {
                e.slots.pop_front();
            }
            let keep = e.last_seen > oldest;
            if !keep {
                self.retired.fetch_add(1, Ordering::Relaxed);
                if k.caller != OVERFLOW_NODE {
                    self.count.fetch_sub(1, Ordering::AcqRel);
                }
            }
            keep
        });
    }

    /// Calls `f` on every edge (holding one shard lock at a time).
    pub fn for_each(&self, mut f: impl FnMut(&EdgeKey, &EdgeState)) {
        for e in self.edges.iter() {
            f(e.key(), e.value());
        }
    }
}
