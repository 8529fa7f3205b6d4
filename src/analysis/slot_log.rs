//! Closed time slots (index, requests, errors, latency histogram) frozen into one
//! contiguous varint buffer, oldest first: the history of a series ring or of a judge
//! stream, at half a byte to a byte per populated latency bucket plus a few header bytes per slot.

use super::histogram::{frozen_buckets, get_varint, put_varint, LatencyHistogram};

/// A log of frozen slots. Each entry is five LEB128 varints, `slot - base, requests,
/// errors, histogram length, ...` followed by the histogram in the frozen encoding of
/// [`super::histogram::FrozenHistogram`]. `base` is the slot of the first entry pushed
/// since the log was last empty, so entries stay small. Slots are pushed in increasing
/// order and dropped from the front.
#[derive(Debug, Clone, Default)]
pub struct SlotLog {
    bytes: Vec<u8>,
    base: u64,
    /// Slot of the first entry (meaningless when empty), so the hot path's age check
    /// decodes nothing.
    front: u64,
    len: usize,
}

/// One frozen slot, borrowed from its log.
#[derive(Debug, Clone, Copy)]
pub struct FrozenSlotRef<'a> {
    pub slot: u64,
    pub requests: u64,
    pub errors: u64,
    hist: &'a [u8],
}

impl FrozenSlotRef<'_> {
    /// Adds the slot's latency counts to `h`.
    pub fn merge_latency_into(&self, h: &mut LatencyHistogram) {
        h.merge_buckets(frozen_buckets(self.hist));
    }
}

impl SlotLog {
    /// Appends a closed slot (its index at least the last one's), freezing `latency`.
    pub fn push(&mut self, slot: u64, requests: u64, errors: u64, latency: &LatencyHistogram) {
        if self.len == 0 {
            self.bytes.clear();
            self.base = slot;
            self.front = slot;
        }
        let mut entry = Vec::with_capacity(64);
        encode_entry(
            &mut entry,
            slot.saturating_sub(self.base),
            requests,
            errors,
            latency,
        );
        if self.bytes.capacity() - self.bytes.len() < entry.len() {
            // Grow by an eighth rather than doubling: a log lives long and is read rarely.
            self.bytes.reserve_exact(entry.len() + self.bytes.len() / 8);
        }
        self.bytes.extend_from_slice(&entry);
        self.len += 1;
    }

    /// Drops the oldest slot.
    pub fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        let end = self.entry_end(0);
        self.len -= 1;
        if self.len == 0 {
            self.bytes = Vec::new();
            return;
        }
        // The rest moves to a new buffer (with room for an entry like the one dropped)
        // rather than down in place: a history lives for hours and pops every slot, so its
        // buffer keeps moving to the allocator's oldest part-used pages, which packs long-lived
        // histories together and lets the pages they left empty go back to the system.
        let mut moved = Vec::with_capacity(self.bytes.len());
        moved.extend_from_slice(&self.bytes[end..]);
        self.bytes = moved;
        let mut pos = 0;
        self.front = self.base + get_varint(&self.bytes, &mut pos);
    }

    /// Merges the `k` entries from the `start`-th on into one entry that carries the last
    /// one's slot and their summed requests, errors and latency (a coarser history).
    pub fn merge_range(&mut self, start: usize, k: usize) {
        if k < 2 || start + k > self.len {
            return;
        }
        let mut from = 0;
        for _ in 0..start {
            from = self.entry_end(from);
        }
        let (mut to, mut slot, mut requests, mut errors) = (from, 0, 0, 0);
        let mut hist = LatencyHistogram::default();
        for s in (SlotIter {
            bytes: &self.bytes[..],
            pos: from,
            base: self.base,
        })
        .take(k)
        {
            (slot, requests, errors) = (s.slot, requests + s.requests, errors + s.errors);
            s.merge_latency_into(&mut hist);
            to = self.entry_end(to);
        }
        let mut merged = Vec::new();
        encode_entry(&mut merged, slot - self.base, requests, errors, &hist);
        self.bytes.splice(from..to, merged);
        self.len -= k - 1;
        if start == 0 {
            self.front = slot;
        }
    }

    /// Drops slots older than `oldest_kept`.
    pub fn drop_before(&mut self, oldest_kept: u64) {
        while self.front_slot().is_some_and(|s| s < oldest_kept) {
            self.pop_front();
        }
    }

    /// Slots held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of the oldest slot.
    pub fn front_slot(&self) -> Option<u64> {
        (self.len > 0).then_some(self.front)
    }

    /// Slots oldest first.
    pub fn iter(&self) -> SlotIter<'_> {
        SlotIter {
            bytes: &self.bytes,
            pos: 0,
            base: self.base,
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// End of the entry starting at `pos`.
    fn entry_end(&self, mut pos: usize) -> usize {
        for _ in 0..3 {
            get_varint(&self.bytes, &mut pos);
        }
        let hist_len = get_varint(&self.bytes, &mut pos) as usize;
        pos + hist_len
    }
}

/// Appends one entry (header varints, then the frozen histogram) to `out`.
fn encode_entry(
    out: &mut Vec<u8>,
    rel_slot: u64,
    requests: u64,
    errors: u64,
    h: &LatencyHistogram,
) {
    let mut hist = Vec::new();
    h.freeze_into(&mut hist);
    for v in [rel_slot, requests, errors, hist.len() as u64] {
        put_varint(out, v);
    }
    out.extend_from_slice(&hist);
}

/// Iterator over a log's slots.
pub struct SlotIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Iterator for SlotIter<'a> {
    type Item = FrozenSlotRef<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let slot = self.base + get_varint(self.bytes, &mut self.pos);
        let requests = get_varint(self.bytes, &mut self.pos);
        let errors = get_varint(self.bytes, &mut self.pos);
        let hist_len = get_varint(self.bytes, &mut self.pos) as usize;
        let end = (self.pos + hist_len).min(self.bytes.len());
        let hist = &self.bytes[self.pos..end];
        self.pos = end;
        Some(FrozenSlotRef {
            slot,
            requests,
            errors,
            hist,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn hist(values: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for v in values {
            h.record(*v);
        }
        h
    }

    #[test]
    fn pushes_iterates_and_drops_in_order() {
        let mut log = SlotLog::default();
        assert!(log.is_empty() && log.front_slot().is_none());
        log.push(1_000_000, 3, 1, &hist(&[1_000, 2_000, 3_000_000]));
        log.push(1_000_002, 200, 0, &hist(&[]));
        log.push(1_000_400, 1, 1, &hist(&[u64::MAX]));
        assert_eq!(log.len(), 3);
        let got: Vec<_> = log.iter().map(|s| (s.slot, s.requests, s.errors)).collect();
        assert_eq!(
            got,
            [(1_000_000, 3, 1), (1_000_002, 200, 0), (1_000_400, 1, 1)]
        );
        let mut h = LatencyHistogram::new();
        log.iter().next().unwrap().merge_latency_into(&mut h);
        assert_eq!(h, hist(&[1_000, 2_000, 3_000_000]));
        log.drop_before(1_000_002);
        assert_eq!(log.front_slot(), Some(1_000_002));
        log.drop_before(2_000_000);
        assert!(log.is_empty() && log.heap_bytes() == 0);
        // A new base after emptying.
        log.push(5, 1, 0, &hist(&[7]));
        assert_eq!(log.iter().map(|s| s.slot).collect::<Vec<_>>(), [5]);
    }

    #[test]
    fn merging_a_range_keeps_its_sums_under_the_last_slot() {
        let mut log = SlotLog::default();
        for (i, v) in [
            (10u64, 1_000u64),
            (11, 2_000),
            (13, 3_000),
            (14, 4_000),
            (20, 5_000),
        ] {
            log.push(i, v / 1_000, 1, &hist(&[v, v * 7]));
        }
        log.merge_range(1, 3);
        let got: Vec<_> = log.iter().map(|s| (s.slot, s.requests, s.errors)).collect();
        assert_eq!(got, [(10, 1, 1), (14, 9, 3), (20, 5, 1)]);
        let mut h = LatencyHistogram::new();
        log.iter().nth(1).unwrap().merge_latency_into(&mut h);
        assert_eq!(h, hist(&[2_000, 14_000, 3_000, 21_000, 4_000, 28_000]));
        log.merge_range(0, 2);
        assert_eq!(log.front_slot(), Some(14));
        assert_eq!(log.len(), 2);
        log.push(21, 1, 0, &hist(&[9]));
        log.pop_front();
        let got: Vec<_> = log.iter().map(|s| (s.slot, s.requests)).collect();
        assert_eq!(got, [(20, 5), (21, 1)]);
        assert_eq!(log.front_slot(), Some(20));
    }

    #[test]
    fn dropping_the_oldest_slot_moves_the_rest_to_a_new_buffer_with_room_for_one_more() {
        let mut log = SlotLog::default();
        for i in 0..4u64 {
            log.push(100 + i, 10, 0, &hist(&[1_000 * (i + 1), 50_000, 9_000_000]));
        }
        let (before_ptr, before_len) = (log.bytes.as_ptr(), log.bytes.len());
        let first_entry = log.entry_end(0);
        log.pop_front();
        assert_ne!(
            log.bytes.as_ptr(),
            before_ptr,
            "the history stayed in its old buffer"
        );
        assert_eq!(log.bytes.len(), before_len - first_entry);
        assert_eq!(log.heap_bytes(), before_len);
        // The next slot fits in the room the dropped one left, without growing.
        let moved_ptr = log.bytes.as_ptr();
        log.push(104, 10, 0, &hist(&[4_000, 50_000, 9_000_000]));
        assert_eq!(log.bytes.as_ptr(), moved_ptr);
        assert_eq!(
            log.iter().map(|s| s.slot).collect::<Vec<_>>(),
            [101, 102, 103, 104]
        );
    }

    proptest! {
        /// The log returns exactly what a queue of dense slots would hold.
        #[test]
        fn matches_a_queue_of_dense_slots(
            ops in proptest::collection::vec(
                (0u64..5, 0u64..100_000, proptest::collection::vec(1u64..60_000_000_000, 0..60), any::<bool>()),
                1..80,
            )
        ) {
            let mut log = SlotLog::default();
            let mut model: VecDeque<(u64, u64, u64, LatencyHistogram)> = VecDeque::new();
            let mut slot = 1_000u64;
            for (step, requests, values, pop) in ops {
                slot += step;
                let h = hist(&values);
                log.push(slot, requests, requests / 3, &h);
                model.push_back((slot, requests, requests / 3, h));
                if pop {
                    log.pop_front();
                    model.pop_front();
                }
                prop_assert_eq!(log.len(), model.len());
                prop_assert_eq!(log.front_slot(), model.front().map(|m| m.0));
                for (s, m) in log.iter().zip(&model) {
                    let mut h = LatencyHistogram::new();
                    s.merge_latency_into(&mut h);
                    prop_assert_eq!((s.slot, s.requests, s.errors), (m.0, m.1, m.2));
                    prop_assert_eq!(&h, &m.3);
                }
            }
        }
    }
}
