//! One judged stream of a version: its counts for the current tick, counted against the
//! thresholds the baseline set at the previous tick, and its history in rolling 10 s slots
//! (the last ones single, older ones merged) that give baselines, thresholds and incidents.

use super::track::Obs;
use crate::analysis::histogram::LatencyHistogram;
use crate::analysis::slot_log::SlotLog;
use crate::model::{Name, Scope, UnixNanos};

/// Most latency quantiles a judge tests.
pub const MAXQ: usize = 4;
/// Width of a history slot.
pub const SLOT_NS: u64 = 10_000_000_000;
/// History slots kept per stream (5 minutes of 10 s slots that had data).
pub const SLOTS: usize = 30;
/// Slots kept one by one at the end of a stream's history: the thresholds read the last
/// minute and incidents the last 30 s; older slots are only ever summed whole.
pub(super) const FINE: u64 = 7;
/// Older slots that had data are merged this many at a time (one-minute slots at full
/// traffic), which about halves a busy stream's history.
pub(super) const MERGE: usize = 6;
/// Trace ids kept per stream as exemplars.
const EXEMPLARS: usize = 4;
/// One stream of a version: `peer` names the other end (edges, path), empty for self;
/// `op` is the stratum (operation), empty for edges and path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub scope: Scope,
    pub peer: Name,
    pub op: Name,
}

/// Counts of one stream over one tick (or slot, or window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub n: u64,
    pub err: u64,
    /// Requests with valid latency counted against thresholds.
    pub n_lat: u64,
    /// Above the baseline threshold `tau_q`.
    pub exc_base: [u64; MAXQ],
    /// Above the candidate threshold `(1 + margin) tau_q`.
    pub exc_cand: [u64; MAXQ],
    /// Above the promotion threshold `(1 + promote margin) tau_q`.
    pub exc_promote: [u64; MAXQ],
    pub hist: LatencyHistogram,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.n += o.n;
        self.err += o.err;
        self.n_lat += o.n_lat;
        for i in 0..MAXQ {
            self.exc_base[i] += o.exc_base[i];
            self.exc_cand[i] += o.exc_cand[i];
            self.exc_promote[i] += o.exc_promote[i];
        }
        self.hist.merge(&o.hist);
    }
}

/// Thresholds for one stream: `base[i]` is the baseline's q-quantile, `cand[i]` the same
/// raised by the latency margin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Thresholds {
    pub base: [u64; MAXQ],
    pub cand: [u64; MAXQ],
    /// The quantile raised by the promotion margin.
    pub promote: [u64; MAXQ],
    pub len: usize,
}

/// One stream of one version.
#[derive(Debug, Default)]
pub struct Stream {
    pub tick: Counts,
    /// The history slot being filled: dense until the next slot starts.
    open: OpenSlot,
    /// Closed slots that had data, oldest first, frozen (requests, errors and latency: all
    /// the history's readers use). The first `coarse` entries each merge [`MERGE`] slots
    /// older than [`FINE`] slots; with the open slot, at most [`SLOTS`] slots that had data.
    pub(super) closed: SlotLog,
    pub(super) coarse: u8,
    /// Set when the thresholds found too little data here, cleared by the next data: until
    /// then a check would fail again (the history only loses requests), so it is skipped.
    pub(super) too_thin: bool,
    /// Whether the service's thresholds hold one for this stream (kept by the refresh, for
    /// the stable version's streams), so the per-second pass finds the new ones without a
    /// lookup per stream.
    pub(super) thresholded: bool,
    /// Requests of the closed slots, so the thresholds' thin check costs no walk.
    closed_requests: u64,
    /// The version's tick that `tick` counts.
    tick_of: u32,
    /// Bumped (wrapping) whenever a closed slot is pushed, merged or dropped: readers that
    /// sum closed slots cache their sums until it moves.
    pub(super) closed_changes: u32,
    pub exemplars: Exemplars,
}

/// The last [`EXEMPLARS`] trace ids of a stream's errors and slow requests, boxed (8 bytes
/// in the stream, against a `VecDeque`'s 32): a stream fits jemalloc's 320-byte class
/// instead of its 384-byte one, and streams of versions not judged keep none.
#[derive(Debug, Default, Clone)]
pub struct Exemplars(Option<Box<ExemplarRing>>);

#[derive(Debug, Clone)]
struct ExemplarRing {
    ids: [[u8; 16]; EXEMPLARS],
    /// Ids held, and where the next one goes.
    len: u8,
    next: u8,
}

impl Exemplars {
    /// Keeps `id`, dropping the oldest when full.
    pub fn push(&mut self, id: [u8; 16]) {
        let r = self.0.get_or_insert_with(|| {
            Box::new(ExemplarRing {
                ids: [[0; 16]; EXEMPLARS],
                len: 0,
                next: 0,
            })
        });
        r.ids[r.next as usize] = id;
        r.next = (r.next + 1) % EXEMPLARS as u8;
        r.len = (r.len + 1).min(EXEMPLARS as u8);
    }

    /// The ids held, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = [u8; 16]> + '_ {
        self.0.iter().flat_map(|r| {
            (1..=r.len as usize).map(|back| r.ids[(r.next as usize + EXEMPLARS - back) % EXEMPLARS])
        })
    }

    pub fn heap_bytes(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<ExemplarRing>())
    }
}

/// The current history slot of a stream.
#[derive(Debug, Default)]
struct OpenSlot {
    slot: u64,
    n: u64,
    err: u64,
    hist: LatencyHistogram,
}

impl Stream {
    /// Counts one observation at `now`: into the history and into the tick against `th`;
    /// a judged version also keeps its latency and, for errors and slow requests, its
    /// trace id.
    /// `tick` numbers the version's current tick: counts left from an earlier one (a
    /// version that is not judged does not close its streams' ticks) start over.
    pub(super) fn count(
        &mut self,
        o: &Obs,
        th: Option<&Thresholds>,
        judged: bool,
        (tick, now): (u32, UnixNanos),
    ) {
        self.record_history(now / SLOT_NS, o);
        if self.tick_of != tick {
            self.tick = Counts::default();
            self.tick_of = tick;
        }
        let t = &mut self.tick;
        t.n += o.n;
        if o.error {
            t.err += o.n;
        }
        let mut slow = false;
        if let Some(lat) = o.latency_ns {
            if judged {
                t.hist.record_n(lat, o.n);
            }
            if let Some(th) = th {
                t.n_lat += o.n;
                for i in 0..th.len {
                    if lat > th.base[i] {
                        t.exc_base[i] += o.n;
                    }
                    if lat > th.cand[i] {
                        t.exc_cand[i] += o.n;
                        slow = i + 1 == th.len;
                    }
                    if lat > th.promote[i] {
                        t.exc_promote[i] += o.n;
                    }
                }
            }
        }
        if let (Some(id), true, true) = (o.trace_id, o.error || slow, judged) {
            self.exemplars.push(id);
        }
    }

    /// Counts of slots at or after `from_slot` (requests, errors and latency; the threshold
    /// counts are left at zero: readers recount them from the histogram).
    pub fn slots_since(&self, from_slot: u64) -> Counts {
        let mut c = Counts::default();
        self.add_slots(|i| i >= from_slot, &mut c);
        c
    }

    /// Requests of the slots at or after `from_slot`, without touching their latency: an
    /// upper bound on their histogram's count, so readers skip merges that cannot pass.
    pub fn requests_since(&self, from_slot: u64) -> u64 {
        let closed: u64 = self
            .closed
            .iter()
            .filter(|s| s.slot >= from_slot)
            .map(|s| s.requests)
            .sum();
        let open = if self.open.slot >= from_slot {
            self.open.n
        } else {
            0
        };
        closed + open
    }

    /// Requests of the whole history (the open slot included), without a walk: equal to
    /// `requests_since(0)`.
    pub fn history_requests(&self) -> u64 {
        self.closed_requests + self.open.n
    }

    /// Adds the requests, errors and latency of the history slots (those that had data)
    /// whose index `pick` accepts to `acc`.
    pub fn add_slots(&self, pick: impl Fn(u64) -> bool, acc: &mut Counts) {
        for s in self.closed.iter().filter(|s| pick(s.slot)) {
            acc.n += s.requests;
            acc.err += s.errors;
            s.merge_latency_into(&mut acc.hist);
        }
        let o = &self.open;
        if o.n > 0 && pick(o.slot) {
            acc.n += o.n;
            acc.err += o.err;
            acc.hist.merge(&o.hist);
        }
    }

    /// Heap bytes of the open slot's histogram.
    #[cfg(test)]
    pub(super) fn open_heap_bytes(&self) -> usize {
        self.open.hist.heap_bytes()
    }

    /// History slots held (those that had data, the open one included; a merged entry
    /// counts its slots).
    #[cfg(test)]
    pub(super) fn slot_count(&self) -> usize {
        self.held_slots() + (self.open.n > 0) as usize
    }

    /// Starts history slot `slot` when it is later than the open one: the open slot is
    /// frozen if it had data, and its histogram's buffer is given back.
    fn roll(&mut self, slot: u64) {
        let o = &mut self.open;
        if slot <= o.slot {
            return; // same slot, or a clock that steps back: keep the open slot
        }
        if o.n > 0 {
            self.closed.push(o.slot, o.n, o.err, &o.hist);
            self.closed_changes = self.closed_changes.wrapping_add(1);
            self.closed_requests += o.n;
            // The buffer goes too (the next slot grows its own), as for the series' rings.
            o.hist = LatencyHistogram::default();
            (o.n, o.err) = (0, 0);
            self.coarsen(slot);
        }
        self.open.slot = slot;
    }

    /// Merges the oldest [`MERGE`] single slots once that many are older than [`FINE`]
    /// slots before `now_slot`.
    fn coarsen(&mut self, now_slot: u64) {
        let start = self.coarse as usize;
        let old = self
            .closed
            .iter()
            .skip(start)
            .take_while(|s| s.slot + FINE <= now_slot)
            .count();
        if old >= MERGE && self.coarse < u8::MAX {
            self.closed.merge_range(start, MERGE);
            self.closed_changes = self.closed_changes.wrapping_add(1);
            self.coarse += 1;
        }
    }

    /// Slots that had data among the closed ones (a merged entry counts [`MERGE`]).
    fn held_slots(&self) -> usize {
        self.closed.len() + (MERGE - 1) * self.coarse as usize
    }

    /// The open slot, about to receive `n` requests with `err` errors (a slot's first data
    /// makes room for it among the kept slots); the caller adds their latency.
    fn add_to_open(&mut self, n: u64, err: u64) -> &mut LatencyHistogram {
        if self.open.n == 0 {
            while self.held_slots() >= SLOTS {
                let front = self.closed.iter().next().map_or(0, |s| s.requests);
                self.closed_requests -= front;
                self.closed.pop_front();
                self.closed_changes = self.closed_changes.wrapping_add(1);
                self.coarse = self.coarse.saturating_sub(1);
            }
        }
        let o = &mut self.open;
        o.n += n;
        o.err += err;
        &mut o.hist
    }

    /// Estimated bytes of the stream in its map: key, state and heap.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<(StreamKey, Box<Stream>)>()
            + std::mem::size_of::<Stream>()
            + self.open.hist.heap_bytes()
            + self.closed.heap_bytes()
            + self.tick.hist.heap_bytes()
            + self.exemplars.heap_bytes()
    }

    /// Records an observation into the history (the open slot of `slot`).
    fn record_history(&mut self, slot: u64, o: &Obs) {
        self.roll(slot);
        if o.n == 0 {
            return;
        }
        self.too_thin = false;
        let hist = self.add_to_open(o.n, if o.error { o.n } else { 0 });
        if let Some(lat) = o.latency_ns {
            hist.record_n(lat, o.n);
        }
    }

    /// Ends tick `tick`: returns its counts and rolls the history to `slot`.
    pub(super) fn close_tick(&mut self, slot: u64, tick: u32) -> Counts {
        self.roll_history(slot);
        if self.tick_of == tick {
            std::mem::take(&mut self.tick)
        } else {
            Counts::default()
        }
    }

    /// Rolls the history to `slot` (a slot is frozen when the next starts; a clock that
    /// steps back keeps the open slot).
    pub(super) fn roll_history(&mut self, slot: u64) {
        self.roll(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exemplars_keep_the_last_four_newest_first() {
        let mut e = Exemplars::default();
        assert_eq!(e.newest_first().count(), 0);
        assert_eq!(e.heap_bytes(), 0, "a stream that keeps none holds nothing");
        for i in 1..=6u8 {
            e.push([i; 16]);
        }
        let ids: Vec<u8> = e.newest_first().map(|id| id[0]).collect();
        assert_eq!(ids, vec![6, 5, 4, 3]);
        let mut two = Exemplars::default();
        two.push([1; 16]);
        two.push([2; 16]);
        assert_eq!(
            two.newest_first().map(|id| id[0]).collect::<Vec<_>>(),
            [2, 1]
        );
    }

    #[test]
    fn a_stream_fits_the_allocators_320_byte_class() {
        // Streams are boxed one by one (tens of thousands of them): jemalloc's size
        // classes here are 256, 320 and 384 bytes.
        assert!(
            std::mem::size_of::<Stream>() <= 320,
            "{}",
            std::mem::size_of::<Stream>()
        );
    }
}
