//! Compact log-linear latency histograms (HDR layout, 64 sub-buckets per power of two):
//! a dense-range form for recording on the hot path, and a frozen varint form for closed
//! time slots, so thousands of series fit in a small memory budget.
//!
//! Precision: a value is reported as the midpoint of its bucket, so any quantile is within
//! [`RELATIVE_PRECISION`] (0.79 %) of a sample value at that rank; values below 64 ns are exact.
//! Values above [`MAX_TRACKABLE_NS`] are clamped to it (and counted by the caller).

/// log2 of the number of linear sub-buckets per power of two.
const SUB_BITS: u32 = 6;
const SUB_COUNT: u64 = 1 << SUB_BITS;

/// Largest duration tracked exactly: about 18 minutes. Larger values are clamped.
pub const MAX_TRACKABLE_NS: u64 = (1 << 40) - 1;

/// Worst-case relative error of a reported quantile versus the sample at that rank.
pub const RELATIVE_PRECISION: f64 = 1.0 / (2.0 * SUB_COUNT as f64);

/// Bucket index of a value (monotone in the value).
#[inline]
pub fn bucket_index(v: u64) -> u16 {
    let v = v.min(MAX_TRACKABLE_NS);
    if v < SUB_COUNT {
        return v as u16;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let mantissa = (v >> shift) & (SUB_COUNT - 1);
    ((shift as u64 + 1) * SUB_COUNT + mantissa) as u16
}

/// Inclusive lower and exclusive upper bound of a bucket.
#[inline]
pub fn bucket_bounds(idx: u16) -> (u64, u64) {
    let idx = idx as u64;
    if idx < SUB_COUNT {
        return (idx, idx + 1);
    }
    let shift = idx / SUB_COUNT - 1;
    let mantissa = idx % SUB_COUNT;
    let lower = (SUB_COUNT + mantissa) << shift;
    (lower, lower + (1 << shift))
}

/// Representative value of a bucket: its midpoint (exact below 64 ns).
#[inline]
pub fn bucket_value(idx: u16) -> u64 {
    let (lo, hi) = bucket_bounds(idx);
    lo + (hi - lo) / 2
}

/// A mutable histogram whose counts cover the dense index range it has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    offset: u16,
    counts: Vec<u32>,
    total: u64,
}

impl LatencyHistogram {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one duration in nanoseconds.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.add_index(bucket_index(ns), 1);
    }

    /// Records `n` durations of `ns` nanoseconds.
    pub fn record_n(&mut self, ns: u64, n: u64) {
        if n > 0 {
            self.add_index(bucket_index(ns), n);
        }
    }

    fn add_index(&mut self, idx: u16, n: u64) {
        self.total += n;
        if self.counts.is_empty() {
            self.offset = idx;
            self.counts.push(0);
        } else if idx < self.offset {
            let grow = (self.offset - idx) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = idx;
        } else if (idx - self.offset) as usize >= self.counts.len() {
            self.counts.resize((idx - self.offset) as usize + 1, 0);
        }
        let slot = &mut self.counts[(idx - self.offset) as usize];
        *slot = slot.saturating_add(n.min(u32::MAX as u64) as u32);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Populated buckets as (bucket index, count), in increasing value order.
    pub fn buckets(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (self.offset + i as u16, *c as u64))
    }

    /// Adds another histogram's counts (order-independent).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (idx, c) in other.buckets() {
            self.add_index(idx, c);
        }
    }

    /// Adds a frozen histogram's counts.
    pub fn merge_frozen(&mut self, other: &FrozenHistogram) {
        for (idx, c) in other.buckets() {
            self.add_index(idx, c);
        }
    }

    /// The value at quantile `q` in [0, 1] (nearest-rank), or None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (idx, c) in self.buckets() {
            seen += c;
            if seen >= rank {
                return Some(bucket_value(idx));
            }
        }
        self.buckets().last().map(|(i, _)| bucket_value(i))
    }

    /// How many recorded values fall in buckets entirely above `ns`'s bucket.
    pub fn count_above(&self, ns: u64) -> u64 {
        let limit = bucket_index(ns);
        self.buckets()
            .filter(|(i, _)| *i > limit)
            .map(|(_, c)| c)
            .sum()
    }

    /// Mean of the bucket representatives, in ns.
    pub fn mean(&self) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let sum: f64 = self
            .buckets()
            .map(|(i, c)| bucket_value(i) as f64 * c as f64)
            .sum();
        Some(sum / self.total as f64)
    }

    /// Encodes the populated buckets compactly for a closed time slot.
    pub fn freeze(&self) -> FrozenHistogram {
        let mut bytes = Vec::with_capacity(self.counts.len());
        let mut prev: u32 = 0;
        for (idx, c) in self.buckets() {
            put_varint(&mut bytes, (idx as u32 - prev) as u64);
            put_varint(&mut bytes, c);
            prev = idx as u32;
        }
        FrozenHistogram {
            bytes: bytes.into_boxed_slice(),
            total: self.total,
        }
    }

    /// Heap bytes held (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u32>()
    }
}

/// An immutable histogram: (index gap, count) pairs as LEB128 varints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrozenHistogram {
    bytes: Box<[u8]>,
    total: u64,
}

impl FrozenHistogram {
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Populated buckets as (bucket index, count), in increasing value order.
    pub fn buckets(&self) -> FrozenBuckets<'_> {
        FrozenBuckets {
            bytes: &self.bytes,
            pos: 0,
            idx: 0,
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// Iterator over a frozen histogram's buckets.
pub struct FrozenBuckets<'a> {
    bytes: &'a [u8],
    pos: usize,
    idx: u32,
}

impl Iterator for FrozenBuckets<'_> {
    type Item = (u16, u64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let gap = get_varint(self.bytes, &mut self.pos);
        let count = get_varint(self.bytes, &mut self.pos);
        self.idx += gap as u32;
        Some((self.idx as u16, count))
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    // Invariant: only `freeze` writes these bytes, so every varint is complete.
    while let Some(&b) = bytes.get(*pos) {
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn index_is_monotone_and_bounds_contain_value() {
        let mut prev = 0u16;
        for v in (0..5000u64).chain((1..40).map(|s| (1u64 << s) + 12345)) {
            let i = bucket_index(v);
            assert!(i >= prev || v < 5000, "monotone");
            let (lo, hi) = bucket_bounds(i);
            assert!(
                lo <= v.min(MAX_TRACKABLE_NS) && v.min(MAX_TRACKABLE_NS) < hi,
                "{v} in [{lo},{hi})"
            );
            prev = i;
        }
    }

    #[test]
    fn frozen_roundtrip_keeps_buckets() {
        let mut h = LatencyHistogram::new();
        for v in [5u64, 70, 1_000, 1_000_000, 3_000_000_000, 1_000] {
            h.record(v);
        }
        let f = h.freeze();
        let mut back = LatencyHistogram::new();
        back.merge_frozen(&f);
        assert_eq!(back, h);
        assert_eq!(f.count(), 6);
    }

    proptest! {
        #[test]
        fn quantiles_within_stated_precision(mut xs in proptest::collection::vec(1u64..60_000_000_000, 1..400), q in 0.0f64..1.0) {
            let mut h = LatencyHistogram::new();
            for x in &xs { h.record(*x); }
            xs.sort_unstable();
            let rank = ((q * xs.len() as f64).ceil() as usize).max(1);
            let exact = xs[rank - 1] as f64;
            let got = h.quantile(q).unwrap() as f64;
            prop_assert!((got - exact).abs() <= exact * RELATIVE_PRECISION + 1.0, "q={q} exact={exact} got={got}");
        }

        #[test]
        fn merge_is_order_independent(a in proptest::collection::vec(1u64..10_000_000_000, 0..200), b in proptest::collection::vec(1u64..10_000_000_000, 0..200)) {
            let mk = |xs: &[u64]| { let mut h = LatencyHistogram::new(); for x in xs { h.record(*x); } h };
            let (ha, hb) = (mk(&a), mk(&b));
            let mut ab = ha.clone(); ab.merge(&hb);
            let mut ba = hb.clone(); ba.merge(&ha);
            prop_assert_eq!(ab.buckets().collect::<Vec<_>>(), ba.buckets().collect::<Vec<_>>());
            prop_assert_eq!(ab.count(), (a.len() + b.len()) as u64);
        }
    }
}
