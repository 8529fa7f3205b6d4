//! Rolling time slots of request count, error count and latency (a series' spans or
//! metrics, an edge's client or server side): a dense open slot that the hot path records
//! into, and closed slots frozen into one contiguous [`SlotLog`] until they fall out of
//! the horizon.

use crate::analysis::histogram::LatencyHistogram;
use crate::analysis::slot_log::SlotLog;

/// Index of a time slot: `unix nanos / slot length`. `u32` holds any slot of one second or
/// longer until 2106.
pub type SlotIdx = u32;

/// Index of the slot of length `slot_ns` holding time `t` (the last index for times past
/// 2106 at one-second slots).
pub fn slot_index(t: u64, slot_ns: u64) -> SlotIdx {
    (t / slot_ns).min(SlotIdx::MAX as u64) as SlotIdx
}

/// Sums of a range of slots.
#[derive(Debug, Default)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub latency: LatencyHistogram,
}

/// Rolling slots of request count, error count and latency.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    open_slot: SlotIdx,
    open_requests: u64,
    open_errors: u64,
    open: LatencyHistogram,
    /// Closed non-empty slots, oldest first.
    frozen: SlotLog,
}

impl Ring {
    /// Makes `slot` the open slot: freezes the current one when it holds data and drops
    /// closed slots older than `oldest_kept`. Recording never goes back in time: data for an
    /// older slot lands in the open one.
    pub fn roll(&mut self, slot: SlotIdx, oldest_kept: SlotIdx) {
        // Drop before pushing, so the log's buffer never needs room for one slot more than
        // the horizon keeps.
        self.frozen.drop_before(oldest_kept as u64);
        if slot > self.open_slot {
            if self.open_requests > 0 {
                // A slot already past the horizon is not kept (as if pushed and dropped).
                if self.open_slot >= oldest_kept {
                    self.frozen.push(
                        self.open_slot as u64,
                        self.open_requests,
                        self.open_errors,
                        &self.open,
                    );
                }
                // The open histogram's buffer goes with the frozen slot: kept, it would hold
                // the widest range any slot ever had for good; the next slot grows its own.
                self.open = LatencyHistogram::default();
                self.open_requests = 0;
                self.open_errors = 0;
            }
            self.open_slot = slot;
        }
    }

    /// Counts one request (rolled to `slot` first by the caller).
    #[inline]
    pub fn record(&mut self, duration_ns: Option<u64>, error: bool) {
        self.record_n(duration_ns, error, 1);
    }

    /// Counts `n` requests of one latency (a call kept for `n` under thinning).
    #[inline]
    pub fn record_n(&mut self, duration_ns: Option<u64>, error: bool, n: u64) {
        self.open_requests += n;
        self.open_errors += error as u64 * n;
        if let Some(ns) = duration_ns {
            self.open.record_n(ns, n);
        }
    }

    /// Counts `requests` requests with their latency buckets (representative ns, count).
    pub fn record_many(&mut self, requests: u64, errors: u64, buckets: &[(u64, u64)]) {
        self.open_requests += requests;
        self.open_errors += errors;
        for (ns, n) in buckets {
            self.open.record_n(*ns, *n);
        }
    }

    #[cfg(test)]
    pub fn open_slot(&self) -> SlotIdx {
        self.open_slot
    }

    /// Whether any slot still holds data.
    pub fn has_data(&self) -> bool {
        self.open_requests > 0 || !self.frozen.is_empty()
    }

    /// Adds the slots in `[from, to]` (inclusive slot indexes) to `acc`.
    pub fn add_range(&self, from: SlotIdx, to: SlotIdx, acc: &mut Totals) {
        let (from64, to64) = (from as u64, to as u64);
        for f in self
            .frozen
            .iter()
            .filter(|f| f.slot >= from64 && f.slot <= to64)
        {
            acc.requests += f.requests;
            acc.errors += f.errors;
            f.merge_latency_into(&mut acc.latency);
        }
        if self.open_slot >= from && self.open_slot <= to && self.open_requests > 0 {
            acc.requests += self.open_requests;
            acc.errors += self.open_errors;
            acc.latency.merge(&self.open);
        }
    }

    /// Closed slots held.
    #[cfg(test)]
    pub fn frozen_slots(&self) -> usize {
        self.frozen.len()
    }

    /// Heap bytes held (the open histogram and the frozen log), for the memory estimate.
    pub fn heap_bytes(&self) -> usize {
        self.open.heap_bytes() + self.frozen.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(r: &Ring, from: SlotIdx, to: SlotIdx) -> (u64, u64, u64) {
        let mut t = Totals::default();
        r.add_range(from, to, &mut t);
        (t.requests, t.errors, t.latency.count())
    }

    #[test]
    fn rolling_freezes_closed_slots_and_drops_old_ones() {
        let mut r = Ring::default();
        r.roll(10, 0);
        r.record(Some(1_000), false);
        r.record(Some(2_000), true);
        r.roll(11, 0);
        r.record(None, false);
        assert_eq!(r.frozen_slots(), 1);
        assert_eq!(totals(&r, 10, 10), (2, 1, 2));
        assert_eq!(totals(&r, 11, 11), (1, 0, 0));
        assert_eq!(totals(&r, 0, 20), (3, 1, 2));
        // Slot 12 keeps slots >= 11: slot 10 is dropped, 11 is frozen.
        r.roll(12, 11);
        assert_eq!(totals(&r, 0, 20), (1, 0, 0));
        r.roll(20, 19);
        assert!(!r.has_data());
    }

    #[test]
    fn a_frozen_slot_takes_the_open_histograms_buffer_with_it() {
        let mut r = Ring::default();
        r.roll(10, 0);
        for ns in [1_000, 5_000_000, 2_000_000_000] {
            r.record(Some(ns), false);
        }
        assert!(r.open.heap_bytes() > 0);
        r.roll(11, 0);
        assert_eq!(r.open.heap_bytes(), 0);
        assert_eq!(r.heap_bytes(), r.frozen.heap_bytes());
        // The next slot grows a buffer for its own range only.
        r.record(Some(1_000), false);
        assert!(r.open.heap_bytes() > 0 && r.open.heap_bytes() < 64);
        assert_eq!(totals(&r, 10, 11), (4, 0, 4));
    }

    #[test]
    fn an_open_slot_already_past_the_horizon_is_not_kept() {
        let mut r = Ring::default();
        r.roll(10, 0);
        r.record(Some(1_000), false);
        // The series was idle for long: its open slot 10 is older than the horizon.
        r.roll(100, 95);
        assert_eq!(r.frozen_slots(), 0);
        assert!(!r.has_data());
        assert_eq!(totals(&r, 0, 200), (0, 0, 0));
    }

    #[test]
    fn never_goes_back_in_time_and_skips_empty_slots() {
        let mut r = Ring::default();
        r.roll(5, 0);
        r.roll(7, 0);
        r.roll(6, 0);
        assert_eq!(r.open_slot(), 7);
        assert_eq!(r.frozen_slots(), 0, "empty slots are not kept");
    }
}
