//! Edge windows: per `(environment, caller, caller_version, callee, callee_version,
//! connection_type)` rolling time slots of calls, failures, client-side and server-side
//! latency, plus cumulative servicegraph counters for `/metrics`. Capped: calls on new
//! edges beyond the cap go to one overflow edge and are counted.
//!
//! Calls are not applied one by one: a worker looks up each call's edge id by a keyed
//! 64-bit fingerprint of its names in a compact index (small enough to stay in cache) and
//! appends a 48-byte sample to a buffer; a flush (every tick, or when the buffer holds
//! [`FLUSH_AT`] calls) groups the buffer by edge and applies each edge's calls together,
//! so an edge's state is fetched from memory once per flush rather than once per call.
//! The flush hands the grouped calls on ([`EdgeRuns`]) for the judge.

use super::cumulative::Cumulative;
use super::pairing::Prehashed;
use super::runs::{EdgeRuns, EdgeSample};
use crate::analysis::histogram::LatencyHistogram;
use crate::analysis::ring::{slot_index, Ring, Totals};
use crate::model::{ConnectionType, EdgeCall, Name, NodeKind, UnixNanos};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Buffered calls at which the recording worker flushes them itself (under 1 MB), so the
/// buffer stays bounded whatever the tick does. 65,536 held about 10 MiB more at the peak
/// for no measurable gain (docs/benchmarks.md).
pub const FLUSH_AT: usize = 1 << 14;

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
    pub fn of(c: &EdgeCall) -> Self {
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
    /// Calls and failures per time slot, with the client-side latency.
    client: Ring,
    /// Server-side latency per time slot (calls with a server span only).
    server: Ring,
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
    /// An edge without calls yet (`last_seen` comes from its first call).
    fn new(kind: NodeKind) -> Self {
        Self {
            callee_kind: kind,
            client: Ring::default(),
            server: Ring::default(),
            cumulative: Cumulative::default(),
            last_seen: 0,
        }
    }

    /// Records calls in the order given, each in the slot of its arrival time.
    fn record_all(&mut self, calls: &[EdgeSample], slot_ns: u64) {
        for c in calls {
            self.record(c, slot_ns);
        }
    }

    /// Calls recorded with a slightly older `now` (another worker) join the open slot: a
    /// ring never goes back in time. Slots past the horizon go at [`EdgeStore::retire`].
    fn record(&mut self, c: &EdgeSample, slot_ns: u64) {
        let slot = slot_index(c.at, slot_ns);
        self.last_seen = self.last_seen.max(c.at);
        let w = u64::from(c.weight);
        self.client.roll(slot, 0);
        self.client.record_n(c.client_ns(), c.failed, w);
        if let Some(ns) = c.server_ns() {
            self.server.roll(slot, 0);
            self.server.record_n(Some(ns), false, w);
        }
        self.cumulative.record(c);
    }

    /// Sums the slots overlapping `[from, to)`.
    pub fn totals(&self, from: UnixNanos, to: UnixNanos, slot_ns: u64) -> EdgeTotals {
        if to <= from {
            return EdgeTotals::default();
        }
        let (first, last) = (slot_index(from, slot_ns), slot_index(to - 1, slot_ns));
        let (mut c, mut s) = (Totals::default(), Totals::default());
        self.client.add_range(first, last, &mut c);
        self.server.add_range(first, last, &mut s);
        EdgeTotals {
            requests: c.requests,
            errors: c.errors,
            client: c.latency,
            server: s.latency,
        }
    }

    /// Rolls to the slot of `now` and drops the slots that end at or before `oldest`.
    fn roll(&mut self, now: UnixNanos, oldest: UnixNanos, slot_ns: u64) {
        let (slot, keep) = (slot_index(now, slot_ns), slot_index(oldest, slot_ns));
        self.client.roll(slot, keep);
        self.server.roll(slot, keep);
    }

    /// Bytes held by the slots (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.client.heap_bytes() + self.server.heap_bytes()
    }

    /// Estimated bytes of the edge in its map: key, state and heap.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<(EdgeKey, EdgeState)>() + self.heap_bytes()
    }
}

/// Extends `edges` to `len` slots, growing its room by half and never past `most` (ids
/// stay below the cap plus the overflow edge): edge states are stored inline (about 770
/// bytes), so a doubling vector would keep up to a cap's worth of empty room.
fn grow_capped(edges: &mut Vec<Option<Edge>>, len: usize, most: usize) {
    if len > edges.capacity() {
        let room = (edges.len() / 2)
            .max(64)
            .min(most.saturating_sub(edges.len()));
        edges.reserve_exact(room.max(len - edges.len()));
    }
    edges.resize_with(len, || None);
}

/// An edge held by the store.
#[derive(Debug)]
struct Edge {
    key: EdgeKey,
    /// The fingerprint it is indexed under (none for the overflow edge).
    fingerprint: Option<u64>,
    state: EdgeState,
}

/// The worker-facing side: edge ids by fingerprint and the buffered calls.
#[derive(Debug, Default)]
struct Index {
    ids: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    /// Ids of retired edges, for reuse.
    free: Vec<u32>,
    next: u32,
    overflow_id: Option<u32>,
    /// Edges created since the last flush: (id, fingerprint, key, callee kind).
    created: Vec<(u32, Option<u64>, EdgeKey, NodeKind)>,
    /// Calls waiting for the next flush, by edge id.
    pending: Vec<(u32, EdgeSample)>,
    /// Calls on the overflow edge since the last flush, by the index of their own edge in
    /// `spill_keys`: the judge still sees which versions they joined.
    spilled: Vec<(u32, EdgeSample)>,
    spill_ids: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    spill_keys: Vec<(EdgeKey, NodeKind)>,
}

impl Index {
    fn allocate(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn buffered(&self) -> usize {
        self.pending.len() + self.spilled.len()
    }
}

/// All edges, capped.
pub struct EdgeStore {
    /// Locked per recorded batch (briefly) and by a flush only to take the buffer. Lock
    /// order: `index`, then `edges`.
    index: Mutex<Index>,
    /// Edge states by id; written by flushes and retirement, read by snapshots.
    edges: RwLock<Vec<Option<Edge>>>,
    fingerprint: ahash::RandomState,
    max_edges: usize,
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
            index: Mutex::new(Index::default()),
            edges: RwLock::new(Vec::new()),
            fingerprint: ahash::RandomState::new(),
            max_edges: max_edges.max(1),
            slot_ns: (slot.as_nanos() as u64).max(1),
            horizon_ns: horizon.as_nanos() as u64,
            overflow_calls: AtomicU64::new(0),
            retired: AtomicU64::new(0),
        }
    }

    pub fn slot_ns(&self) -> u64 {
        self.slot_ns
    }

    /// Edges held as of the last flush (including the overflow edge when present).
    pub fn len(&self) -> usize {
        self.edges.read().iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots for edge states the store has room for, used or not.
    pub fn state_room(&self) -> usize {
        self.edges.read().capacity()
    }

    /// Bytes of the room for edge states not taken by an edge (an edge's
    /// [`EdgeState::memory_bytes`] counts its own slot).
    pub fn empty_room_bytes(&self) -> usize {
        let edges = self.edges.read();
        let used = edges.iter().flatten().count();
        (edges.capacity() - used) * std::mem::size_of::<Option<Edge>>()
    }

    /// Calls waiting for the next flush.
    pub fn buffered(&self) -> usize {
        self.index.lock().buffered()
    }

    /// Keyed hash of an edge's identity. Two edges sharing one would be merged; with a
    /// per-process random key and at most a few hundred thousand edges the chance is
    /// below 1e-8, and crafted names cannot aim at it.
    fn fingerprint_of(&self, c: &EdgeCall) -> u64 {
        let mut h = self.fingerprint.build_hasher();
        for name in [
            &c.environment,
            &c.caller,
            &c.caller_version,
            &c.callee,
            &c.callee_version,
        ] {
            name.as_str().hash(&mut h);
        }
        (c.connection_type as u8).hash(&mut h);
        h.finish()
    }

    /// Buffers calls recorded at `now`, each standing for `weight` calls; true when the
    /// buffer is full enough that the caller should [`flush`](Self::flush) it.
    pub fn record(&self, calls: &[EdgeCall], now: UnixNanos, weight: u32) -> bool {
        if calls.is_empty() {
            return false;
        }
        let fingerprints: Vec<u64> = calls.iter().map(|c| self.fingerprint_of(c)).collect();
        let mut ix = self.index.lock();
        for (c, fp) in calls.iter().zip(fingerprints) {
            let sample = EdgeSample::of(c, now, weight);
            match ix.ids.get(&fp) {
                Some(&id) => ix.pending.push((id, sample)),
                None => self.first_call(&mut ix, fp, c, sample),
            }
        }
        ix.buffered() >= FLUSH_AT
    }

    /// A call on an edge not indexed: a new edge below the cap, else the overflow edge.
    fn first_call(&self, ix: &mut Index, fp: u64, c: &EdgeCall, sample: EdgeSample) {
        if ix.ids.len() < self.max_edges {
            let id = ix.allocate();
            ix.ids.insert(fp, id);
            ix.created
                .push((id, Some(fp), EdgeKey::of(c), c.callee_kind));
            ix.pending.push((id, sample));
            return;
        }
        self.overflow_calls.fetch_add(1, Ordering::Relaxed);
        if ix.overflow_id.is_none() {
            let id = ix.allocate();
            ix.overflow_id = Some(id);
            ix.created
                .push((id, None, EdgeKey::overflow(), NodeKind::Service));
        }
        let next = ix.spill_keys.len() as u32;
        let spill = *ix.spill_ids.entry(fp).or_insert(next);
        if spill == next {
            ix.spill_keys.push((EdgeKey::of(c), c.callee_kind));
        }
        ix.spilled.push((spill, sample));
    }

    /// Applies the buffered calls to their edges and returns them grouped by edge.
    pub fn flush(&self) -> EdgeRuns {
        let mut ix = self.index.lock();
        if ix.buffered() == 0 && ix.created.is_empty() {
            return EdgeRuns::default();
        }
        let pending = std::mem::take(&mut ix.pending);
        let spilled = std::mem::take(&mut ix.spilled);
        let spill_keys = std::mem::take(&mut ix.spill_keys);
        ix.spill_ids.clear();
        let created = std::mem::take(&mut ix.created);
        let overflow_id = ix.overflow_id;
        let mut edges = self.edges.write();
        drop(ix);
        for (id, fingerprint, key, kind) in created {
            let id = id as usize;
            if edges.len() <= id {
                grow_capped(&mut edges, id + 1, self.max_edges + 1);
            }
            edges[id] = Some(Edge {
                key,
                fingerprint,
                state: EdgeState::new(kind),
            });
        }
        let mut runs = EdgeRuns::default();
        let by_edge = Grouped::of(&pending, edges.len());
        drop(pending);
        for (id, range) in by_edge.runs() {
            if let Some(e) = edges[id].as_mut() {
                e.state
                    .record_all(&by_edge.samples[range.clone()], self.slot_ns);
                runs.push_range(e.key.clone(), e.state.callee_kind, range);
            }
        }
        runs.extend_samples(by_edge.samples);
        let by_spill = Grouped::of(&spilled, spill_keys.len());
        if let Some(o) = overflow_id.and_then(|id| edges[id as usize].as_mut()) {
            let base = runs.calls();
            for ((key, kind), (_, range)) in spill_keys.into_iter().zip(by_spill.runs()) {
                o.state
                    .record_all(&by_spill.samples[range.clone()], self.slot_ns);
                runs.push_range(key, kind, range.start + base..range.end + base);
            }
            runs.extend_samples(by_spill.samples);
        }
        runs
    }

    /// Drops slots older than the horizon and edges idle for a whole horizon (edges with
    /// buffered calls are kept).
    pub fn retire(&self, now: UnixNanos) {
        let oldest = now.saturating_sub(self.horizon_ns);
        let slot_ns = self.slot_ns;
        let mut ix = self.index.lock();
        let mut edges = self.edges.write();
        let mut busy = vec![false; edges.len()];
        let spilling = ix.overflow_id.filter(|_| !ix.spilled.is_empty());
        for id in ix.pending.iter().map(|p| p.0).chain(spilling) {
            if let Some(b) = busy.get_mut(id as usize) {
                *b = true;
            }
        }
        for (id, slot) in edges.iter_mut().enumerate() {
            let Some(e) = slot else { continue };
            e.state.roll(now, oldest, slot_ns);
            if e.state.last_seen > oldest || busy[id] {
                continue;
            }
            self.retired.fetch_add(1, Ordering::Relaxed);
            match e.fingerprint {
                Some(fp) => {
                    ix.ids.remove(&fp);
                }
                None => ix.overflow_id = None,
            }
            ix.free.push(id as u32);
            *slot = None;
        }
    }

    /// Calls `f` on every edge as of the last flush (holding the read lock).
    pub fn for_each(&self, mut f: impl FnMut(&EdgeKey, &EdgeState)) {
        self.for_each_with_id(|_, k, e| f(k, e));
    }

    /// The same with each edge's id (an id stays with its edge until the edge retires).
    pub fn for_each_with_id(&self, mut f: impl FnMut(u32, &EdgeKey, &EdgeState)) {
        for (id, e) in self.edges.read().iter().enumerate() {
            if let Some(e) = e {
                f(id as u32, &e.key, &e.state);
            }
        }
    }

    /// Calls `f(i, state)` for each `wanted[i]` whose id still holds the edge of its key
    /// (an edge retired since, or its id taken by another, is skipped), under one read lock.
    pub fn visit(&self, wanted: &[(EdgeKey, u32)], mut f: impl FnMut(usize, &EdgeState)) {
        let edges = self.edges.read();
        for (i, (key, id)) in wanted.iter().enumerate() {
            if let Some(Some(e)) = edges.get(*id as usize) {
                if e.key == *key {
                    f(i, &e.state);
                }
            }
        }
    }
}

/// Buffered calls grouped by id with a stable counting sort: the calls of id `i` are
/// `samples[starts[i]..starts[i + 1]]`, in the order they were recorded.
struct Grouped {
    starts: Vec<u32>,
    samples: Vec<EdgeSample>,
}

impl Grouped {
    /// Groups `(id, call)` pairs whose ids are below `ids` (others are dropped).
    fn of(pending: &[(u32, EdgeSample)], ids: usize) -> Self {
        let mut starts = vec![0u32; ids + 1];
        for (id, _) in pending.iter().filter(|(id, _)| (*id as usize) < ids) {
            starts[*id as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut at = starts.clone();
        let mut samples = vec![EdgeSample::EMPTY; starts[ids] as usize];
        for (id, s) in pending.iter().filter(|(id, _)| (*id as usize) < ids) {
            samples[at[*id as usize] as usize] = *s;
            at[*id as usize] += 1;
        }
        Self { starts, samples }
    }

    /// Each id with calls and the range of its calls.
    fn runs(&self) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> + '_ {
        self.starts
            .windows(2)
            .enumerate()
            .filter_map(|(id, w)| (w[1] > w[0]).then_some((id, w[0] as usize..w[1] as usize)))
    }
}
