//! Tests of the per-version state: slots, retirement, caps, metrics versus spans, and the
//! precision and order-independence of windowed quantiles.

use super::*;
use crate::analysis::histogram::{MAX_TRACKABLE_NS, RELATIVE_PRECISION};
use crate::model::{DurationMetric, MetricBatch, Resource, SpanBatch, SpanRecord};
use crate::telemetry::{ExportMetrics, PromWriter};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;

fn cfg() -> StateConfig {
    StateConfig {
        slot: Duration::from_secs(10),
        horizon: Duration::from_secs(60),
        version_idle: Duration::from_secs(120),
        ..Default::default()
    }
}

fn res(service: &str, version: &str) -> Arc<Resource> {
    Arc::new(Resource {
        environment: "prod".into(),
        service: service.into(),
        version: version.into(),
        ..Default::default()
    })
}

fn span(r: &Arc<Resource>, op: &str, kind: SpanKind, ns: u64, error: bool) -> SpanRecord {
    SpanRecord {
        resource: r.clone(),
        trace_id: [7; 16],
        span_id: [1; 8],
        parent_span_id: [0; 8],
        operation: op.into(),
        kind,
        start_unix_nano: T0,
        end_unix_nano: T0 + ns,
        error,
        timing_valid: true,
        peer: None,
    }
}

fn batch(spans: Vec<SpanRecord>) -> SpanBatch {
    SpanBatch { spans }
}

fn metric(r: &Arc<Resource>, op: &str, count: u64, ns: u64, error: bool) -> DurationMetric {
    DurationMetric {
        resource: r.clone(),
        operation: op.into(),
        kind: SpanKind::Server,
        error,
        time_unix_nano: T0,
        count,
        buckets: vec![(ns, count)],
    }
}

fn version(
    store: &SeriesStore,
    service: &str,
    v: &str,
    from: u64,
    to: u64,
) -> Option<VersionStats> {
    store
        .service_versions("prod", service, from, to)
        .into_iter()
        .find(|s| s.version == v)
}

fn counts(v: &Option<VersionStats>) -> (u64, u64) {
    v.as_ref().map_or((0, 0), |v| (v.requests, v.errors))
}

#[test]
fn served_requests_exclude_client_and_internal_spans_but_list_them_as_operations() {
    let s = SeriesStore::new(&cfg());
    let r = res("cart", "1");
    s.record_spans(
        &batch(vec![
            span(&r, "GET /", SpanKind::Server, 1_000, false),
            span(&r, "consume", SpanKind::Consumer, 2_000, true),
            span(&r, "SELECT", SpanKind::Client, 3_000, true),
            span(&r, "work", SpanKind::Internal, 4_000, false),
        ]),
        T0,
    );
    let v = version(&s, "cart", "1", T0, T0 + 1).unwrap();
    assert_eq!((v.requests, v.errors, v.latency.count()), (2, 1, 2));
    let ops: Vec<_> = v
        .operations
        .iter()
        .map(|o| (o.operation.as_str(), o.kind))
        .collect();
    assert_eq!(
        ops,
        [
            ("GET /", SpanKind::Server),
            ("SELECT", SpanKind::Client),
            ("consume", SpanKind::Consumer),
            ("work", SpanKind::Internal)
        ]
    );
    assert_eq!((v.first_seen, v.last_seen), (T0, T0));
}

#[test]
fn slots_roll_and_queries_round_to_whole_slots() {
    let s = SeriesStore::new(&cfg());
    let r = res("cart", "1");
    for i in 0..5u64 {
        let now = T0 + i * 10 * SEC;
        s.tick(now);
        let n = i as usize + 1;
        s.record_spans(
            &batch(vec![span(&r, "GET /", SpanKind::Server, 1_000, false); n]),
            now,
        );
    }
    // Slot k (k = 0..4) holds k + 1 requests; T0 starts a slot.
    assert_eq!(
        counts(&version(&s, "cart", "1", T0, T0 + 50 * SEC)),
        (15, 0)
    );
    // [T0+15s, T0+25s) touches slots 1 and 2: rounded out to both.
    assert_eq!(
        counts(&version(&s, "cart", "1", T0 + 15 * SEC, T0 + 25 * SEC)),
        (5, 0)
    );
    // Past the horizon (6 slots behind the open one) slots are dropped.
    s.tick(T0 + 100 * SEC);
    assert_eq!(
        counts(&version(&s, "cart", "1", T0, T0 + 200 * SEC)),
        (5, 0)
    );
    s.tick(T0 + 120 * SEC);
    assert_eq!(
        counts(&version(&s, "cart", "1", T0, T0 + 200 * SEC)),
        (0, 0)
    );
    assert!(
        s.service_versions("prod", "cart", T0 + 5 * SEC, T0 + 5 * SEC)
            .is_empty(),
        "empty range"
    );
}

#[test]
fn idle_versions_retire_and_are_counted() {
    let s = SeriesStore::new(&cfg());
    let (old, new) = (res("cart", "1"), res("cart", "2"));
    s.record_spans(
        &batch(vec![span(&old, "GET /", SpanKind::Server, 1_000, false)]),
        T0,
    );
    s.record_spans(
        &batch(vec![span(&new, "GET /", SpanKind::Server, 1_000, false)]),
        T0 + 100 * SEC,
    );
    s.tick(T0 + 119 * SEC);
    assert_eq!(s.counters.retired_versions.load(Ordering::Relaxed), 0);
    s.tick(T0 + 121 * SEC);
    assert_eq!(s.counters.retired_versions.load(Ordering::Relaxed), 1);
    let versions: Vec<_> = s
        .service_versions("prod", "cart", T0, T0 + 200 * SEC)
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, ["2"]);
    assert_eq!(s.series_count(), 1);
    s.tick(T0 + 400 * SEC);
    assert_eq!(
        (
            s.series_count(),
            s.counters.services.load(Ordering::Relaxed)
        ),
        (0, 0)
    );
}

#[test]
fn per_service_cap_sends_new_operations_to_the_version_overflow_series() {
    let s = SeriesStore::new(&StateConfig {
        max_series_per_service: 2,
        ..cfg()
    });
    let r = res("cart", "1");
    let spans = (0..5)
        .map(|i| span(&r, &format!("op{i}"), SpanKind::Server, 1_000, i == 4))
        .collect();
    s.record_spans(&batch(spans), T0);
    let v = version(&s, "cart", "1", T0, T0 + 1).unwrap();
    assert_eq!(
        (v.requests, v.errors),
        (5, 1),
        "overflowed requests still count as served"
    );
    let ops: Vec<_> = v
        .operations
        .iter()
        .map(|o| (o.operation.as_str(), o.requests))
        .collect();
    assert_eq!(ops, [("op0", 1), ("op1", 1), (OVERFLOW, 3)]);
    assert_eq!(s.counters.capped_per_service.load(Ordering::Relaxed), 3);
    assert_eq!(s.counters.overflow_items.load(Ordering::Relaxed), 3);
    assert_eq!(s.series_count(), 3);
}

#[test]
fn overflow_series_per_service_are_bounded_too() {
    let s = SeriesStore::new(&StateConfig {
        max_series_per_service: 20,
        ..cfg()
    });
    let rs: Vec<_> = (0..21).map(|i| res("cart", &format!("v{i:02}"))).collect();
    for r in &rs[..20] {
        s.record_spans(
            &batch(vec![span(r, "a", SpanKind::Server, 1_000, false)]),
            T0,
        );
    }
    // Each of the 20 versions adds an operation past the cap: 16 get their own overflow
    // series, the rest and the 21st version share the service-wide one.
    for r in &rs {
        s.record_spans(
            &batch(vec![span(r, "b", SpanKind::Server, 1_000, false)]),
            T0,
        );
    }
    assert_eq!(
        s.series_count(),
        20 + shard::OVERFLOW_SERIES_PER_SERVICE + 1
    );
    let versions = s.service_versions("prod", "cart", T0, T0 + 1);
    let total: u64 = versions.iter().map(|v| v.requests).sum();
    assert_eq!(total, 41);
    let wide = versions.iter().find(|v| v.version == OVERFLOW).unwrap();
    assert_eq!(
        wide.requests,
        20 - shard::OVERFLOW_SERIES_PER_SERVICE as u64 + 1
    );
}

#[test]
fn store_and_service_caps_spill_into_the_global_overflow() {
    let s = SeriesStore::new(&StateConfig {
        max_series: 2,
        max_services: 2,
        ..cfg()
    });
    for svc in ["a", "b", "c"] {
        let r = res(svc, "1");
        s.record_spans(
            &batch(vec![
                span(&r, "x", SpanKind::Server, 1_000, false),
                span(&r, "y", SpanKind::Server, 1_000, false),
            ]),
            T0,
        );
    }
    let all = s.services(None, T0, T0 + 1);
    let names: Vec<_> = all
        .iter()
        .map(|x| (x.environment.as_str(), x.service.as_str()))
        .collect();
    // b was seen (it is listed) but its series did not fit; c's service did not fit.
    assert_eq!(names, [("", OVERFLOW), ("prod", "a"), ("prod", "b")]);
    assert_eq!(all[2].versions[0].requests, 0);
    let global = &all[0].versions[0];
    assert_eq!((global.version.as_str(), global.requests), (OVERFLOW, 4));
    assert_eq!(s.counters.overflow_items.load(Ordering::Relaxed), 4);
    assert!(s
        .services(Some("prod"), T0, T0 + 1)
        .iter()
        .all(|x| x.service != OVERFLOW));
}

#[test]
fn metrics_count_only_where_no_spans_speak_for_the_series() {
    let s = SeriesStore::new(&cfg());
    let (traced, untraced) = (res("cart", "1"), res("cart", "2"));
    s.record_spans(
        &batch(vec![
            span(&traced, "GET /", SpanKind::Server, 1_000, false);
            10
        ]),
        T0,
    );
    let points = vec![
        metric(&traced, "GET /", 10, 1_000, false),
        metric(&untraced, "GET /", 7, 2_000_000, false),
        metric(&untraced, "GET /", 2, 9_000_000, true),
    ];
    s.record_metrics(&MetricBatch { points }, T0 + SEC);
    assert_eq!(
        counts(&version(&s, "cart", "1", T0, T0 + 2 * SEC)),
        (10, 0),
        "spans win"
    );
    let v2 = version(&s, "cart", "2", T0, T0 + 2 * SEC).unwrap();
    assert_eq!(
        (v2.requests, v2.errors, v2.latency.count()),
        (9, 2, 9),
        "deltas add up"
    );
    assert_eq!(
        s.counters.metric_points_superseded.load(Ordering::Relaxed),
        1
    );
    // Once spans arrive for version 2 too, they take over the series entirely.
    s.record_spans(
        &batch(vec![span(
            &untraced,
            "GET /",
            SpanKind::Server,
            1_000,
            false,
        )]),
        T0 + 2 * SEC,
    );
    assert_eq!(counts(&version(&s, "cart", "2", T0, T0 + 3 * SEC)), (1, 0));
}

#[test]
fn values_above_the_histogram_range_are_clamped_and_counted() {
    let s = SeriesStore::new(&cfg());
    let r = res("cart", "1");
    s.record_spans(
        &batch(vec![span(
            &r,
            "GET /",
            SpanKind::Server,
            MAX_TRACKABLE_NS * 4,
            false,
        )]),
        T0,
    );
    let v = version(&s, "cart", "1", T0, T0 + 1).unwrap();
    assert!(v.latency.quantile(1.0).unwrap() <= MAX_TRACKABLE_NS);
    assert_eq!(s.counters.clamped_values.load(Ordering::Relaxed), 1);
}

#[test]
fn exports_its_counters() {
    let s = SeriesStore::new(&cfg());
    s.record_spans(
        &batch(vec![span(&res("a", "1"), "x", SpanKind::Server, 5, false)]),
        T0,
    );
    s.tick(T0 + SEC);
    let mut w = PromWriter::new();
    s.export_metrics(&mut w);
    let text = w.finish();
    for line in [
        "verdict_state_series 1",
        "verdict_state_spans_total 1",
        "verdict_state_services 1",
        "verdict_state_overflow_items_total 0",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(s.memory_estimate() > 0);
}

/// Spans at (slot offset, duration ns, error) recorded into a fresh store, one batch per
/// slot, in the given order within each slot.
fn store_with(spans: &[(u64, u64, bool)]) -> SeriesStore {
    let s = SeriesStore::new(&cfg());
    let r = res("cart", "1");
    for slot in 0..6u64 {
        let now = T0 + slot * 10 * SEC;
        s.tick(now);
        let b: Vec<_> = spans
            .iter()
            .filter(|(o, _, _)| *o == slot)
            .map(|(_, ns, e)| span(&r, "GET /", SpanKind::Server, *ns, *e))
            .collect();
        s.record_spans(&batch(b), now);
    }
    s
}

fn spans_strategy() -> impl Strategy<Value = Vec<(u64, u64, bool)>> {
    proptest::collection::vec(
        (
            0u64..6,
            1_000u64..30_000_000_000,
            proptest::bool::weighted(0.1),
        ),
        1..300,
    )
}

proptest! {
    #[test]
    fn window_quantiles_match_the_raw_durations(spans in spans_strategy(), a in 0u64..6, len in 1u64..6, q in 0.0f64..1.0) {
        let b = (a + len).min(6);
        let s = store_with(&spans);
        let mut raw: Vec<u64> = spans.iter().filter(|(o, _, _)| *o >= a && *o < b).map(|(_, ns, _)| *ns).collect();
        let v = version(&s, "cart", "1", T0 + a * 10 * SEC, T0 + b * 10 * SEC);
        prop_assert_eq!(counts(&v).0, raw.len() as u64);
        let errors = spans.iter().filter(|(o, _, e)| *o >= a && *o < b && *e).count() as u64;
        prop_assert_eq!(counts(&v).1, errors);
        if raw.is_empty() { return Ok(()); }
        raw.sort_unstable();
        let rank = ((q * raw.len() as f64).ceil() as usize).max(1);
        let exact = raw[rank - 1] as f64;
        let got = v.unwrap().latency.quantile(q).unwrap() as f64;
        prop_assert!((got - exact).abs() <= exact * RELATIVE_PRECISION + 1.0, "q={} exact={} got={}", q, exact, got);
    }

    #[test]
    fn windows_and_slots_merge_independently_of_order(spans in spans_strategy(), cut in 1u64..6) {
        let s = store_with(&spans);
        let mut reversed = spans.clone();
        reversed.reverse();
        let r = store_with(&reversed);
        let whole = version(&s, "cart", "1", T0, T0 + 60 * SEC).unwrap();
        prop_assert_eq!(&whole, &version(&r, "cart", "1", T0, T0 + 60 * SEC).unwrap());
        // Two adjacent windows merged, in either order, equal the whole window.
        let left = version(&s, "cart", "1", T0, T0 + cut * 10 * SEC);
        let right = version(&s, "cart", "1", T0 + cut * 10 * SEC, T0 + 60 * SEC);
        let parts: Vec<_> = [left, right].into_iter().flatten().collect();
        for order in [parts.clone(), parts.into_iter().rev().collect()] {
            let mut h = LatencyHistogram::new();
            let (mut n, mut e) = (0, 0);
            for p in &order { h.merge(&p.latency); n += p.requests; e += p.errors; }
            prop_assert_eq!((n, e), (whole.requests, whole.errors));
            prop_assert_eq!(&h, &whole.latency);
        }
    }
}
