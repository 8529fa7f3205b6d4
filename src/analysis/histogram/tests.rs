//! Unit and property tests of the latency histogram and its frozen form.

use super::frozen::{BYTES, DELTA, DIVIDED, NIBBLES, RICE};
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

/// Every layout the frozen form has, as its layout byte: varints, nibbles, and Rice codes
/// of the counts and of their differences for each parameter.
fn all_layouts() -> Vec<u8> {
    let rice = (0..8u8).flat_map(|k| [RICE | k << 4, RICE | DELTA | k << 4]);
    [BYTES, NIBBLES].into_iter().chain(rice).collect()
}

/// Freezes `h` in the smallest layout, checks that each layout reads back exactly and that
/// none is smaller than the one chosen, and returns the chosen encoding.
fn freeze_checked(h: &LatencyHistogram) -> FrozenHistogram {
    let f = h.freeze();
    let mut back = LatencyHistogram::new();
    back.merge_frozen(&f);
    assert_eq!(&back, h);
    assert_eq!(f.buckets().map(|(_, c)| c).sum::<u64>(), h.count());
    for layout in all_layouts() {
        let bytes = h.freeze_in_layout(layout);
        let back: Vec<_> = frozen_buckets(&bytes).collect();
        assert_eq!(back, h.buckets().collect::<Vec<_>>(), "layout {layout:#x}");
        assert!(
            f.heap_bytes() <= bytes.len(),
            "layout {layout:#x} is smaller"
        );
    }
    f
}

#[test]
fn frozen_counts_take_the_smallest_layout_and_read_back() {
    // Small counts (and an escape at exactly 15, 16 and beyond a byte) in odd and even
    // runs, with holes inside and between runs.
    let mut small = LatencyHistogram::new();
    for (i, c) in [1u64, 2, 3, 0, 1, 15, 1, 16, 2, 1, 0, 0, 0, 0, 1, 3, 1000]
        .iter()
        .enumerate()
    {
        small.record_n(bucket_value(bucket_index(1_000_000) + i as u16), *c);
    }
    assert_eq!(freeze_checked(&small).bytes[0] & RICE, RICE);
    // A short slot's typical shape: 60 buckets of 1 to 3 in one run, in 24 bytes (the
    // layout, the first bucket's index in two, the run's length, and 20 of codes of the
    // counts: 1, 2 and 3 at k = 1 take 2, 3 and 3 bits; nibbles took 34 bytes).
    let mut short = LatencyHistogram::new();
    for i in 0..60u16 {
        short.record_n(bucket_value(bucket_index(3_000_000) + i), 1 + i as u64 % 3);
    }
    let f = freeze_checked(&short);
    assert_eq!(f.bytes[0], RICE | 1 << 4);
    assert_eq!(
        f.heap_bytes(),
        1 + 2 + 1 + (20 * (2 + 3 + 3) as usize).div_ceil(8)
    );
    // Large, smoothly rising counts: their differences are ones, a bit or two each.
    let mut large = LatencyHistogram::new();
    for i in 0..40u64 {
        large.record_n(bucket_value(bucket_index(2_000_000) + i as u16), 20 + i);
    }
    assert_eq!(
        freeze_checked(&large).bytes[0] & (RICE | DELTA),
        RICE | DELTA
    );
    // Counts of 64 and 127 in turn: no Rice code takes fewer than the varint's 8 bits (the
    // differences are as large), and on a tie bytes are kept (read fastest).
    let mut scattered = LatencyHistogram::new();
    for i in 0..40u64 {
        let c = [127, 64][i as usize % 2];
        scattered.record_n(bucket_value(bucket_index(2_000_000) + i as u16), c);
    }
    assert_eq!(freeze_checked(&scattered).bytes[0], BYTES);
    assert!(LatencyHistogram::new().freeze().heap_bytes() == 0);
    // Calls weighted 16 by thinning are stored as ones and twos.
    let mut weighted = LatencyHistogram::new();
    for i in 0..60u16 {
        weighted.record_n(
            bucket_value(bucket_index(3_000_000) + i),
            16 * (1 + i as u64 % 2),
        );
    }
    let f = freeze_checked(&weighted);
    assert_eq!(f.bytes[0] & (DIVIDED | RICE), DIVIDED | RICE);
    assert_eq!(f.bytes[1], 16, "the unit follows the layout");
}

#[test]
fn slots_of_the_loads_latency_take_fewer_bytes_as_rice_codes() {
    // The load generator's latency (log-normal, median 3.3 ms): bytes per populated bucket
    // as a slot fills, against the varint-or-nibble layouts alone.
    use rand::prelude::*;
    let d = rand_distr::LogNormal::new(15.0, 0.6).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let cases = [
        (50, 1.3, 0.85),
        (200, 0.7, 0.8),
        (1_000, 0.7, 0.9),
        (3_000, 0.75, 0.7),
        (10_000, 0.8, 0.65),
    ];
    for (n, most, share) in cases {
        let mut h = LatencyHistogram::new();
        for _ in 0..n {
            h.record(d.sample(&mut rng) as u64);
        }
        let f = freeze_checked(&h);
        let populated = h.buckets().count() as f64;
        let per_bucket = f.heap_bytes() as f64 / populated;
        let before = h
            .freeze_in_layout(BYTES)
            .len()
            .min(h.freeze_in_layout(NIBBLES).len());
        eprintln!(
            "n={n}: {per_bucket:.2} bytes a bucket, {} against {before}",
            f.heap_bytes()
        );
        assert!(per_bucket <= most, "n={n}: {per_bucket:.2} bytes a bucket");
        let ratio = f.heap_bytes() as f64 / before as f64;
        assert!(ratio <= share, "n={n}: {} against {before}", f.heap_bytes());
    }
}

#[test]
fn narrow_counts_widen_instead_of_saturating() {
    let mut h = LatencyHistogram::new();
    h.record(3);
    h.record_n(1_000, 255);
    assert!(matches!(h.counts, Counts::Tiny(_)));
    h.record(1_000);
    assert!(matches!(h.counts, Counts::Narrow(_)));
    assert_eq!(
        h.buckets().collect::<Vec<_>>(),
        [(3, 1), (bucket_index(1_000), 256)]
    );
    h.record_n(1_000, 64_744);
    assert!(matches!(h.counts, Counts::Narrow(_)));
    h.record_n(1_000, 1_000);
    h.record(5);
    assert!(matches!(h.counts, Counts::Wide(_)));
    assert_eq!(
        h.buckets().collect::<Vec<_>>(),
        [(3, 1), (5, 1), (bucket_index(1_000), 66_000)]
    );
    // One large count skips the middle width.
    let mut big = LatencyHistogram::new();
    big.record_n(7, 70_000);
    assert!(matches!(big.counts, Counts::Wide(_)));
    assert_eq!(big.buckets().collect::<Vec<_>>(), [(7, 70_000)]);
    let mut back = LatencyHistogram::new();
    back.merge_frozen(&h.freeze());
    assert_eq!(back, h);
}

#[test]
fn clear_keeps_the_buffer_and_forgets_the_range() {
    let mut h = LatencyHistogram::new();
    for ns in [1_000, 9_000_000, 70_000] {
        for _ in 0..300 {
            h.record(ns); // widened past u8
        }
    }
    let bytes = h.heap_bytes();
    h.clear();
    assert!(h.is_empty() && h.buckets().next().is_none());
    assert_eq!(h.heap_bytes(), bytes);
    h.record(5_000_000);
    h.record(5_000_000);
    assert_eq!(
        h.buckets().collect::<Vec<_>>(),
        [(bucket_index(5_000_000), 2)]
    );
    assert_eq!(h.quantile(0.0), Some(bucket_value(bucket_index(5_000_000))));
}

#[test]
fn reset_keeps_the_allocation_and_forgets_the_counts() {
    let mut h = LatencyHistogram::new();
    h.record(1_000);
    h.record(9_000_000);
    let bytes = h.heap_bytes();
    h.reset();
    assert!(h.is_empty() && h.buckets().next().is_none());
    assert_eq!(h.heap_bytes(), bytes);
    h.record(2_000);
    assert_eq!(h.quantile(0.5), Some(bucket_value(bucket_index(2_000))));
}

#[test]
fn a_growing_range_keeps_little_spare_room() {
    // Latencies arriving from the middle outwards, one bucket wider each time on
    // alternate ends, as an open slot's range grows early on.
    let mid = bucket_index(5_000_000);
    for wide in [false, true] {
        let mut h = LatencyHistogram::new();
        if wide {
            h.record_n(bucket_value(mid), 70_000); // counts past u16: four bytes each
        }
        for i in 0..150u16 {
            let idx = if i % 2 == 0 {
                mid + i / 2
            } else {
                mid - i / 2 - 1
            };
            h.record(bucket_value(idx));
            let (len, bytes) = (h.counts.len(), h.heap_bytes());
            let per = if wide { 4 } else { 2 };
            assert!(
                bytes <= (len + len / 8 + 2) * per,
                "{len} buckets in {bytes} bytes"
            );
        }
    }
}

#[test]
fn frozen_runs_cost_about_a_byte_per_bucket() {
    let mut h = LatencyHistogram::new();
    // 200 consecutive buckets with small counts, a short hole, and a far outlier.
    let base = bucket_index(1_000_000);
    for i in 0..200u16 {
        let v = bucket_value(base + i);
        h.record_n(v, (i % 7 + 1) as u64);
    }
    h.record(bucket_value(base + 202));
    h.record(50_000_000_000);
    let f = h.freeze();
    assert!(
        f.heap_bytes() <= 200 + 3 + 1 + 8,
        "{} bytes",
        f.heap_bytes()
    );
    let mut back = LatencyHistogram::new();
    back.merge_frozen(&f);
    assert_eq!(back, h);
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
    fn frozen_roundtrip_is_exact(xs in proptest::collection::vec((1u64..10_000_000_000, 1u64..100_000), 0..300)) {
        let mut h = LatencyHistogram::new();
        for (v, n) in &xs { h.record_n(*v, *n); }
        let mut back = LatencyHistogram::new();
        back.merge_frozen(&h.freeze());
        prop_assert_eq!(back, h);
    }

    #[test]
    fn every_frozen_layout_reads_back_exactly(xs in proptest::collection::vec((1u64..10_000_000_000, 1u64..1 << 40), 0..100)) {
        let mut h = LatencyHistogram::new();
        for (v, n) in &xs { h.record_n(*v, *n); }
        for layout in all_layouts() {
            let bytes = h.freeze_in_layout(layout);
            prop_assert_eq!(frozen_buckets(&bytes).collect::<Vec<_>>(), h.buckets().collect::<Vec<_>>(), "layout {:#x}", layout);
        }
    }

    #[test]
    fn frozen_roundtrip_is_exact_for_small_and_weighted_counts(xs in proptest::collection::vec((1u64..10_000_000, 1u64..40), 0..300), unit in 1u64..64) {
        let mut h = LatencyHistogram::new();
        for (v, n) in &xs { h.record_n(*v, *n * unit); }
        let mut back = LatencyHistogram::new();
        back.merge_frozen(&h.freeze());
        prop_assert_eq!(back, h);
    }

    #[test]
    fn quantiles_in_one_walk_match_one_by_one(xs in proptest::collection::vec(0u64..60_000_000_000, 0..300), qs in proptest::collection::vec(0.0f64..1.0, 1..5)) {
        let mut h = LatencyHistogram::new();
        for x in &xs { h.record(*x); }
        let mut out = [7u64; 4];
        h.quantiles_into(&qs, &mut out);
        for (i, q) in qs.iter().take(4).enumerate() {
            prop_assert_eq!(out[i], h.quantile(*q).unwrap_or(0), "q={}", q);
        }
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
