//! The pairing store: client/producer spans keyed by (trace id, span id) meet the
//! server/consumer spans keyed by (trace id, parent span id), in either arrival order and
//! across batches. Sharded by trace id for concurrent workers; bounded by a TTL and by an
//! item cap (when full, the oldest entry is expired early, exactly as at its TTL, and
//! counted). Keys are held as one keyed 64-bit fingerprint, computed once per span and
//! used by the map, its expiry queue and the tombstones. A completed key leaves the store
//! at once and is remembered as its fingerprint for one to one and a half TTLs (see
//! [`Tombstones`]), so a retried copy of either span is recognised as a duplicate instead
//! of counted twice; waiting spans alone fill the store.

use super::calls::{self, Half, HalfRef};
use super::thinning::Thinning;
use super::tombstones::Tombstones;
use crate::model::{EdgeCall, Resource, SpanRecord, UnixNanos};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Which side of a call never found its partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Server,
}

/// A span that expired without a partner and without a node to attribute it to.
#[derive(Debug, Clone)]
pub struct Unpaired {
    pub resource: Arc<Resource>,
    pub side: Side,
}

/// Where completed calls and unpaired spans go.
pub struct Emit<'a> {
    pub calls: &'a mut Vec<EdgeCall>,
    pub unpaired: &'a mut Vec<Unpaired>,
}

/// Cumulative counters of the store (self-metrics).
#[derive(Debug, Default)]
pub struct PairingStats {
    /// Client and server span met.
    pub paired: AtomicU64,
    /// Database/messaging client spans that completed an edge alone.
    pub alone: AtomicU64,
    /// Root server spans hung under `user`.
    pub roots: AtomicU64,
    /// Client spans expired into a virtual-node edge.
    pub expired_to_virtual: AtomicU64,
    /// Spans expired with no partner and nothing to attribute them to.
    pub expired_unpaired: AtomicU64,
    /// Entries removed early because the store was full.
    pub evicted: AtomicU64,
    /// Spans recognised as copies of spans already seen.
    pub duplicates: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    trace: [u8; 16],
    span: [u8; 8],
    /// Root server spans are keyed by their own span id, in a separate namespace.
    root: bool,
}

#[derive(Debug)]
enum State {
    /// A client span waiting; `alone` when its database/messaging edge was already emitted.
    Client {
        half: Half,
        alone: bool,
    },
    Server(Half),
}

#[derive(Debug)]
struct Slot {
    /// The key's trace (for the exemplar of an expired span's edge).
    trace: [u8; 16],
    state: State,
    expires: UnixNanos,
}

/// The map of waiting spans, keyed by their key's fingerprint. Two keys sharing one would
/// be taken for one: with a per-process random key and at most a few hundred thousand
/// waiting spans, the chance per lookup is below 1e-13.
type Waiting = HashMap<u64, Slot, std::hash::BuildHasherDefault<Prehashed>>;

#[derive(Default)]
struct Shard {
    map: Waiting,
    /// (fingerprint, expiry) in insertion order; entries whose expiry no longer matches
    /// the slot are stale and skipped.
    fifo: VecDeque<(u64, UnixNanos)>,
    done: Tombstones,
}

/// Hasher for values that already are uniform 64-bit hashes (the fingerprints).
#[derive(Default)]
pub struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Stale queue entries (of pairs that completed) a shard lets accumulate before it drops
/// them, at least: pairs mostly complete within a batch, so the queue would otherwise hold
/// every key of the last TTL.
pub(super) const FIFO_SLACK: usize = 1024;

/// The sharded, bounded pairing store.
pub struct PairingStore {
    shards: Box<[Mutex<Shard>]>,
    mask: usize,
    ttl: u64,
    cap_per_shard: usize,
    /// Keyed hash for tombstone fingerprints (random per process: crafted ids cannot aim
    /// at each other's fingerprints).
    fingerprint: ahash::RandomState,
    pub stats: PairingStats,
}

impl PairingStore {
    /// `shards` must be a power of two (validated in the configuration).
    pub fn new(ttl: std::time::Duration, max_items: usize, shards: usize) -> Self {
        let shards = shards.max(1).next_power_of_two();
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            mask: shards - 1,
            ttl: ttl.as_nanos().min(u64::MAX as u128) as u64,
            cap_per_shard: (max_items / shards).max(1),
            fingerprint: ahash::RandomState::new(),
            stats: PairingStats::default(),
        }
    }

    /// Completed keys remembered for duplicate detection.
    pub fn tombstones(&self) -> usize {
        self.shards.iter().map(|s| s.lock().done.len()).sum()
    }

    /// Estimated heap bytes: each shard's map (buckets and control bytes, boxed peers of
    /// waiting client spans), its expiry queue and its two tombstone generations. The
    /// waiting spans' resources are shared with their batches and not counted.
    pub fn memory_bytes(&self) -> usize {
        use crate::telemetry::memory::hash_table_bytes as table;
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock();
                let peers: usize = s
                    .map
                    .values()
                    .filter(|slot| match &slot.state {
                        State::Client { half, .. } | State::Server(half) => half.peer.is_some(),
                    })
                    .count()
                    * std::mem::size_of::<crate::model::Peer>();
                table(s.map.capacity(), std::mem::size_of::<(u64, Slot)>())
                    + peers
                    + s.fifo.capacity() * std::mem::size_of::<(u64, UnixNanos)>()
                    + s.done.heap_bytes()
            })
            .sum()
    }

    /// Spans waiting for their partner.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most entries the store holds.
    pub fn capacity(&self) -> usize {
        self.cap_per_shard * self.shards.len()
    }

    /// Records a batch of spans; completed calls and early evictions go to `emit`. Each
    /// shard is locked once for the batch's spans that fall in it (in their arrival
    /// order), and the counters are added once per batch: a lock, an unlock and a counter
    /// are atomic read-modify-writes, each of which waits for the stores before it.
    ///
    /// Only spans of traces kept at thinning `level` take part (see [`super::thinning`]);
    /// returns how many were left out.
    pub fn record_batch(
        &self,
        spans: &[SpanRecord],
        level: u32,
        now: UnixNanos,
        emit: &mut Emit<'_>,
    ) -> u64 {
        let mut keyed = Vec::with_capacity(spans.len());
        let mut starts = vec![0u32; self.shards.len() + 1];
        let mut thinned = 0;
        for (i, span) in spans.iter().enumerate() {
            let Some(key) = key_of(span) else { continue };
            if !Thinning::keeps(&span.trace_id, level) {
                thinned += 1;
                continue;
            }
            let shard = self.shard_index(&span.trace_id);
            starts[shard + 1] += 1;
            keyed.push((shard as u32, i as u32, self.fp(&key)));
        }
        if keyed.is_empty() {
            return thinned;
        }
        for s in 1..starts.len() {
            starts[s] += starts[s - 1];
        }
        // Counting sort by shard, stable: each shard sees its spans in arrival order.
        let mut next = starts.clone();
        let mut by_shard = vec![(0u32, 0u64); keyed.len()];
        for &(shard, i, fp) in &keyed {
            let at = &mut next[shard as usize];
            by_shard[*at as usize] = (i, fp);
            *at += 1;
        }
        let mut tally = Tally::default();
        for (shard, bounds) in self.shards.iter().zip(starts.windows(2)) {
            let run = &by_shard[bounds[0] as usize..bounds[1] as usize];
            if run.is_empty() {
                continue;
            }
            let mut guard = shard.lock();
            for &(i, fp) in run {
                let span = &spans[i as usize];
                let mut at = At {
                    shard: &mut guard,
                    fp,
                    now,
                    tally: &mut tally,
                };
                if span.kind.is_outgoing() {
                    self.record_client(&mut at, span, emit);
                } else {
                    self.record_server(&mut at, span, emit);
                }
            }
        }
        tally.add_to(&self.stats);
        thinned
    }

    /// Expiry queue entries over all shards (waiting keys and stale ones not yet dropped).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.shards.iter().map(|s| s.lock().fifo.len()).sum()
    }

    fn shard_index(&self, trace: &[u8; 16]) -> usize {
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace[8..]);
        let mixed = u64::from_le_bytes(low).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 40) as usize & self.mask
    }

    fn record_client(&self, at: &mut At<'_>, span: &SpanRecord, emit: &mut Emit<'_>) {
        let half = HalfRef::of(span);
        let fp = at.fp;
        match take_partner(&mut at.shard.map, fp, |s| matches!(s, State::Server(_))) {
            Partner::Found(State::Server(server)) => {
                emit.calls
                    .push(calls::paired(half, server.view(), span.trace_id));
                at.tally.paired += 1;
                emit_alone(half, span.trace_id, emit, at.tally);
                self.complete(&mut at.shard.done, fp, at.now);
            }
            Partner::Found(_) | Partner::Same => at.tally.duplicates += 1,
            Partner::None if at.shard.done.contains(fp) => at.tally.duplicates += 1,
            Partner::None => {
                let alone = emit_alone(half, span.trace_id, emit, at.tally);
                let slot = Slot {
                    trace: span.trace_id,
                    state: State::Client {
                        half: half.to_owned(),
                        alone,
                    },
                    expires: at.now.saturating_add(self.ttl),
                };
                self.insert(at.shard, fp, slot, emit);
            }
        }
    }

    fn fp(&self, key: &Key) -> u64 {
        self.fingerprint.hash_one(key)
    }

    /// Remembers a completed key (its fingerprint) for duplicate detection.
    fn complete(&self, done: &mut Tombstones, fp: u64, now: UnixNanos) {
        done.insert(fp, now, self.ttl, self.cap_per_shard);
    }

    fn record_server(&self, at: &mut At<'_>, span: &SpanRecord, emit: &mut Emit<'_>) {
        let half = HalfRef::of(span);
        let fp = at.fp;
        match take_partner(&mut at.shard.map, fp, |s| matches!(s, State::Client { .. })) {
            Partner::Found(State::Client { half: client, .. }) => {
                emit.calls
                    .push(calls::paired(client.view(), half, span.trace_id));
                at.tally.paired += 1;
                self.complete(&mut at.shard.done, fp, at.now);
            }
            Partner::Found(_) | Partner::Same => at.tally.duplicates += 1,
            Partner::None if at.shard.done.contains(fp) => at.tally.duplicates += 1,
            Partner::None if span.is_root() => {
                emit.calls.push(calls::from_user(half, span.trace_id));
                at.tally.roots += 1;
                self.complete(&mut at.shard.done, fp, at.now);
            }
            Partner::None => {
                let slot = Slot {
                    trace: span.trace_id,
                    state: State::Server(half.to_owned()),
                    expires: at.now.saturating_add(self.ttl),
                };
                self.insert(at.shard, fp, slot, emit);
            }
        }
    }

    /// Inserts a new key, first making room when the shard is full (oldest out).
    fn insert(&self, shard: &mut Shard, fp: u64, slot: Slot, emit: &mut Emit<'_>) {
        if shard.fifo.len() >= 2 * shard.map.len().max(FIFO_SLACK) {
            // At least half are entries of pairs that completed: drop those, keep the
            // waiting ones' (amortised: at most two lookups per insertion), and give back
            // room a burst left.
            let Shard { map, fifo, .. } = shard;
            fifo.retain(|(k, at)| map.get(k).is_some_and(|s| s.expires == *at));
            if let Some(c) = shrink_target(fifo.len(), fifo.capacity(), FIFO_SLACK) {
                fifo.shrink_to(c);
            }
            // The map holds only waiting spans (a few per shard once pairs complete within
            // their batches): it keeps no room for the queue's slack.
            if let Some(c) = shrink_target(map.len(), map.capacity(), MAP_FLOOR) {
                map.shrink_to(c);
            }
        }
        while shard.map.len() >= self.cap_per_shard {
            let Some((old, at)) = shard.fifo.pop_front() else {
                break;
            };
            if let Some(slot) = take_if_current(&mut shard.map, old, at) {
                self.stats.evicted.fetch_add(1, Ordering::Relaxed);
                self.expire(slot, emit);
            }
        }
        shard.fifo.push_back((fp, slot.expires));
        shard.map.insert(fp, slot);
    }

    /// Expires every entry whose TTL has passed.
    pub fn expire_until(&self, now: UnixNanos, emit: &mut Emit<'_>) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            while shard.fifo.front().is_some_and(|(_, at)| *at <= now) {
                let Some((key, at)) = shard.fifo.pop_front() else {
                    break;
                };
                if let Some(slot) = take_if_current(&mut shard.map, key, at) {
                    self.expire(slot, emit);
                }
            }
        }
    }

    /// What an entry leaving without a partner becomes.
    fn expire(&self, slot: Slot, emit: &mut Emit<'_>) {
        let trace = slot.trace;
        match slot.state {
            State::Client { alone: true, .. } => {}
            State::Client { half, alone: false } => match calls::virtual_node(half.view(), trace) {
                Some(call) => {
                    emit.calls.push(call);
                    self.stats
                        .expired_to_virtual
                        .fetch_add(1, Ordering::Relaxed);
                }
                None => self.unpaired(half, Side::Client, emit),
            },
            State::Server(half) => self.unpaired(half, Side::Server, emit),
        }
    }

    fn unpaired(&self, half: Half, side: Side, emit: &mut Emit<'_>) {
        self.stats.expired_unpaired.fetch_add(1, Ordering::Relaxed);
        emit.unpaired.push(Unpaired {
            resource: half.resource,
            side,
        });
    }
}

/// The key a span is stored or looked up under: client/producer spans under their own
/// span id, server/consumer spans under their parent's (roots under their own, in a
/// separate key space); None for spans that take no part in a call.
fn key_of(span: &SpanRecord) -> Option<Key> {
    let (span_id, root) = if span.kind.is_outgoing() {
        (span.span_id, false)
    } else if span.kind.is_served() {
        match span.is_root() {
            true => (span.span_id, true),
            false => (span.parent_span_id, false),
        }
    } else {
        return None;
    };
    Some(Key {
        trace: span.trace_id,
        span: span_id,
        root,
    })
}

/// One span's place in a locked shard.
struct At<'a> {
    shard: &'a mut Shard,
    fp: u64,
    now: UnixNanos,
    tally: &'a mut Tally,
}

/// Counters of one batch, added to the shared ones once.
#[derive(Default)]
struct Tally {
    paired: u64,
    alone: u64,
    roots: u64,
    duplicates: u64,
}

impl Tally {
    fn add_to(&self, stats: &PairingStats) {
        crate::telemetry::add_counts([
            (&stats.paired, self.paired),
            (&stats.alone, self.alone),
            (&stats.roots, self.roots),
            (&stats.duplicates, self.duplicates),
        ]);
    }
}

/// Emits the database/messaging edge of a client span; true when it had one.
fn emit_alone(half: HalfRef<'_>, trace: [u8; 16], emit: &mut Emit<'_>, tally: &mut Tally) -> bool {
    if !half.completes_alone() {
        return false;
    }
    match calls::alone(half, trace) {
        Some(call) => {
            emit.calls.push(call);
            tally.alone += 1;
            true
        }
        None => false,
    }
}

/// What a span found under its key.
enum Partner {
    /// The other half, taken out of the store.
    Found(State),
    /// A waiting span of the same side: this one is a copy.
    Same,
    None,
}

/// Waiting spans a shard's map keeps room for, at least.
const MAP_FLOOR: usize = 64;

/// The capacity a queue or map holding `len` entries (needing room for `floor` at least)
/// shrinks to when its `capacity` is more than four times what it needs (room a burst
/// left), none otherwise.
fn shrink_target(len: usize, capacity: usize, floor: usize) -> Option<usize> {
    let need = len.max(floor);
    (capacity > 4 * need).then_some(2 * need)
}

/// Takes the waiting partner under `key` when `is_partner` accepts it (one hash lookup).
fn take_partner(map: &mut Waiting, key: u64, is_partner: impl Fn(&State) -> bool) -> Partner {
    use std::collections::hash_map::Entry;
    match map.entry(key) {
        Entry::Occupied(o) if is_partner(&o.get().state) => Partner::Found(o.remove().state),
        Entry::Occupied(_) => Partner::Same,
        Entry::Vacant(_) => Partner::None,
    }
}

/// Removes the slot under `key` when `at` is still its expiry (the fifo entry is current;
/// one hash lookup).
fn take_if_current(map: &mut Waiting, key: u64, at: UnixNanos) -> Option<Slot> {
    use std::collections::hash_map::Entry;
    match map.entry(key) {
        Entry::Occupied(o) if o.get().expires == at => Some(o.remove()),
        _ => None,
    }
}

/// Approximate bytes held per store entry (key, slot and one fifo entry; excludes the
/// shared resource and hash-table slack), for the memory figures.
pub fn entry_bytes() -> usize {
    std::mem::size_of::<(u64, Slot)>() + 1 + std::mem::size_of::<(u64, UnixNanos)>()
}

#[cfg(test)]
mod shrink_tests {
    use super::{shrink_target, FIFO_SLACK, MAP_FLOOR};

    #[test]
    fn shrinks_only_past_four_times_the_need_and_keeps_twice_it() {
        // A small queue needs room for FIFO_SLACK entries whatever it holds, a map for
        // MAP_FLOOR.
        assert_eq!(shrink_target(0, 4 * FIFO_SLACK, FIFO_SLACK), None);
        assert_eq!(
            shrink_target(0, 4 * FIFO_SLACK + 1, FIFO_SLACK),
            Some(2 * FIFO_SLACK)
        );
        assert_eq!(shrink_target(5_000, 20_000, FIFO_SLACK), None);
        assert_eq!(shrink_target(5_000, 20_001, FIFO_SLACK), Some(10_000));
        assert_eq!(shrink_target(70, 4 * FIFO_SLACK, MAP_FLOOR), Some(140));
        assert_eq!(shrink_target(10, 4 * MAP_FLOOR, MAP_FLOOR), None);
    }
}
