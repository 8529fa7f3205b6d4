//! Cumulative-to-delta conversion: restarts, duplicates, out-of-order points, caps, TTL,
//! exponential re-scaling.

use super::*;

const T0: u64 = 1_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn conv(cap: usize) -> DeltaConverter {
    DeltaConverter::with_start(cap, Duration::from_secs(60), T0)
}

fn explicit(start: u64, time: u64, counts: &[u64]) -> Sample {
    Sample {
        start,
        time,
        count: counts.iter().sum(),
        max: None,
        buckets: Buckets::Explicit {
            bounds: vec![1.0, 2.0],
            counts: counts.to_vec(),
        },
    }
}

fn counts(s: &Option<Sample>) -> Option<Vec<u64>> {
    match &s.as_ref()?.buckets {
        Buckets::Explicit { counts, .. } => Some(counts.clone()),
        Buckets::Exponential { .. } => None,
    }
}

#[test]
fn cumulative_points_become_deltas() {
    let c = conv(10);
    let mut st = MetricStats::default();
    // Started before the converter: the first point is only a baseline.
    assert_eq!(
        c.cumulative(1, explicit(T0 - SEC, T0 + SEC, &[1, 2, 3]), T0, &mut st),
        None
    );
    assert_eq!(st.first_points, 1);
    let d = c.cumulative(1, explicit(T0 - SEC, T0 + 2 * SEC, &[2, 2, 5]), T0, &mut st);
    assert_eq!(counts(&d), Some(vec![1, 0, 2]));
    let d = d.unwrap();
    assert_eq!((d.start, d.time, d.count), (T0 + SEC, T0 + 2 * SEC, 3));
    // No new requests: nothing to emit.
    assert_eq!(
        c.cumulative(1, explicit(T0 - SEC, T0 + 3 * SEC, &[2, 2, 5]), T0, &mut st),
        None
    );
}

#[test]
fn streams_started_after_the_converter_are_taken_whole() {
    let c = conv(10);
    let mut st = MetricStats::default();
    let d = c.cumulative(1, explicit(T0 + SEC, T0 + 2 * SEC, &[1, 1, 0]), T0, &mut st);
    assert_eq!(counts(&d), Some(vec![1, 1, 0]));
    assert_eq!(st.first_points, 0);
}

#[test]
fn duplicates_and_out_of_order_points_are_dropped() {
    let c = conv(10);
    let mut st = MetricStats::default();
    c.cumulative(1, explicit(T0 + 1, T0 + 2 * SEC, &[1, 0, 0]), T0, &mut st);
    let later = explicit(T0 + 1, T0 + 3 * SEC, &[3, 0, 0]);
    assert!(c.cumulative(1, later.clone(), T0, &mut st).is_some());
    assert_eq!(c.cumulative(1, later, T0, &mut st), None);
    assert_eq!(st.duplicates, 1);
    assert_eq!(
        c.cumulative(1, explicit(T0 + 1, T0 + 2 * SEC, &[1, 0, 0]), T0, &mut st),
        None
    );
    assert_eq!(st.out_of_order, 1);
    // Delta streams: an exact repeat (a retried request) is dropped, new intervals pass.
    let p = explicit(T0, T0 + SEC, &[1, 0, 0]);
    assert!(c.delta(2, p.clone(), T0, &mut st).is_some());
    assert_eq!(c.delta(2, p, T0, &mut st), None);
    assert_eq!(st.duplicates, 2);
    assert!(c
        .delta(2, explicit(T0 + SEC, T0 + 2 * SEC, &[1, 0, 0]), T0, &mut st)
        .is_some());
}

#[test]
fn restarts_by_start_time_or_count_decrease_emit_the_new_totals() {
    let c = conv(10);
    let mut st = MetricStats::default();
    c.cumulative(1, explicit(T0 + 1, T0 + 2 * SEC, &[5, 5, 5]), T0, &mut st);
    // New start time: the process restarted; its counts are all new.
    let d = c.cumulative(
        1,
        explicit(T0 + 3 * SEC, T0 + 4 * SEC, &[1, 0, 0]),
        T0,
        &mut st,
    );
    assert_eq!(counts(&d), Some(vec![1, 0, 0]));
    // Same start time (or none) but counts went down: also a reset.
    let d = c.cumulative(
        1,
        explicit(T0 + 3 * SEC, T0 + 5 * SEC, &[0, 1, 0]),
        T0,
        &mut st,
    );
    assert_eq!(counts(&d), Some(vec![0, 1, 0]));
    assert_eq!(st.resets, 2);
    // Then deltas resume from the new baseline.
    let d = c.cumulative(
        1,
        explicit(T0 + 3 * SEC, T0 + 6 * SEC, &[0, 3, 0]),
        T0,
        &mut st,
    );
    assert_eq!(counts(&d), Some(vec![0, 2, 0]));
    // A point from the previous incarnation arriving late is out of order.
    assert_eq!(
        c.cumulative(1, explicit(T0 + 1, T0 + 7 * SEC, &[9, 9, 9]), T0, &mut st),
        None
    );
    assert_eq!(st.out_of_order, 1);
}

#[test]
fn stream_cap_overflows_and_ttl_frees_room() {
    let c = conv(2);
    let mut st = MetricStats::default();
    for key in 1..=3 {
        c.cumulative(key, explicit(T0 + 1, T0 + SEC, &[1, 0, 0]), T0, &mut st);
    }
    assert_eq!(
        (c.streams(), st.stream_overflow, c.overflow_total()),
        (2, 1, 1)
    );
    // Known streams keep converting while the cap is reached.
    let d = c.cumulative(1, explicit(T0 + 1, T0 + 2 * SEC, &[2, 0, 0]), T0, &mut st);
    assert_eq!(counts(&d), Some(vec![1, 0, 0]));
    // After the TTL the idle streams are forgotten and a new one fits.
    let later = T0 + 61 * SEC;
    let d = c.cumulative(3, explicit(T0 + 1, later, &[1, 0, 0]), later, &mut st);
    assert!(d.is_some());
    assert_eq!((c.streams(), c.evicted_total()), (1, 2));
}

fn exp(scale: i32, offset: i32, counts: &[u64], time: u64) -> Sample {
    Sample {
        start: T0 + 1,
        time,
        count: counts.iter().sum(),
        max: None,
        buckets: Buckets::Exponential {
            scale,
            zero: 0,
            offset,
            counts: counts.to_vec(),
        },
    }
}

#[test]
fn exponential_deltas_survive_downscaling() {
    let c = conv(10);
    let mut st = MetricStats::default();
    // Scale 1: indexes 4..8. Then the SDK downscales to 0 (index i -> i >> 1).
    c.cumulative(1, exp(1, 4, &[1, 1, 1, 1], T0 + SEC), T0, &mut st);
    let d = c
        .cumulative(1, exp(0, 2, &[3, 4], T0 + 2 * SEC), T0, &mut st)
        .unwrap();
    assert_eq!(
        d.buckets,
        Buckets::Exponential {
            scale: 0,
            zero: 0,
            offset: 2,
            counts: vec![1, 2],
        }
    );
    assert_eq!(d.count, 3);
    assert_eq!(
        exp_at_scale(&exp(2, -3, &[1, 1, 1, 1], 0).buckets, 0),
        (0, -1, vec![3, 1])
    );
}
