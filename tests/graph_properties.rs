//! Properties of the dependency graph: the result does not depend on span arrival order,
//! batch boundaries or retried (duplicate) spans; and a flood of spans that never pair
//! keeps the pairing store within its configured bound for a long simulated time.

use proptest::prelude::*;
use std::time::Duration;
use verdict::analysis::graph::config::GraphConfig;
use verdict::analysis::graph::fixtures::{resource, span, with_peer};
use verdict::analysis::graph::{Graph, GraphSnapshot};
use verdict::model::{NodeKind, SpanBatch, SpanKind, SpanRecord};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

/// One simulated call: which versions, durations, errors, and whether it is a direct,
/// database or messaging call.
#[derive(Debug, Clone)]
struct Call {
    caller_v: u8,
    callee_v: u8,
    kind: u8,
    client_ns: u64,
    server_ns: u64,
    client_err: bool,
    server_err: bool,
}

fn call() -> impl Strategy<Value = Call> {
    (
        0u8..2,
        0u8..2,
        0u8..3,
        1u64..5_000_000_000,
        1u64..5_000_000_000,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(caller_v, callee_v, kind, client_ns, server_ns, client_err, server_err)| Call {
                caller_v,
                callee_v,
                kind,
                client_ns,
                server_ns,
                client_err,
                server_err,
            },
        )
}

/// The spans of every call (client, server, plus a root server span per trace).
fn spans_of(calls: &[Call]) -> Vec<SpanRecord> {
    let versions = ["v1", "v2"];
    let mut out = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let trace = i as u64 + 1;
        let caller = resource("prod", "checkout", versions[c.caller_v as usize]);
        let callee = resource("prod", "payment", versions[c.callee_v as usize]);
        out.push(span(
            &caller,
            SpanKind::Server,
            trace,
            1,
            0,
            T0,
            c.client_ns + 10,
            false,
        ));
        match c.kind {
            0 => {
                out.push(span(
                    &caller,
                    SpanKind::Client,
                    trace,
                    2,
                    1,
                    T0,
                    c.client_ns,
                    c.client_err,
                ));
                out.push(span(
                    &callee,
                    SpanKind::Server,
                    trace,
                    3,
                    2,
                    T0,
                    c.server_ns,
                    c.server_err,
                ));
            }
            1 => out.push(with_peer(
                span(
                    &caller,
                    SpanKind::Client,
                    trace,
                    2,
                    1,
                    T0,
                    c.client_ns,
                    c.client_err,
                ),
                NodeKind::Database,
                "postgresql/shop",
            )),
            _ => {
                out.push(with_peer(
                    span(
                        &caller,
                        SpanKind::Producer,
                        trace,
                        2,
                        1,
                        T0,
                        c.client_ns,
                        c.client_err,
                    ),
                    NodeKind::Messaging,
                    "kafka/orders",
                ));
                out.push(span(
                    &callee,
                    SpanKind::Consumer,
                    trace,
                    3,
                    2,
                    T0,
                    c.server_ns,
                    c.server_err,
                ));
            }
        }
    }
    out
}

/// Feeds `spans` cut into batches at `cuts`, then expires everything.
fn run(spans: Vec<SpanRecord>, cuts: &[usize]) -> GraphSnapshot {
    let g = Graph::new(&GraphConfig::default());
    let mut out = Vec::new();
    let mut rest = spans.as_slice();
    let mut now = T0;
    for cut in cuts {
        let (batch, tail) = rest.split_at((*cut).min(rest.len()));
        g.record_spans(
            &SpanBatch {
                spans: batch.to_vec(),
            },
            now,
            &mut out,
        );
        rest = tail;
        now += 1;
    }
    g.record_spans(
        &SpanBatch {
            spans: rest.to_vec(),
        },
        now,
        &mut out,
    );
    g.tick(T0 + 60 * SEC, &mut out);
    g.snapshot(None, T0, T0 + 61 * SEC)
}

/// The reference: counts, failures and both latency histograms per edge, computed
/// directly from the simulated calls.
fn reference(calls: &[Call]) -> GraphSnapshot {
    let g = Graph::new(&GraphConfig::default());
    let mut out = Vec::new();
    for s in spans_of(calls) {
        g.record_spans(&SpanBatch { spans: vec![s] }, T0, &mut out);
    }
    g.tick(T0 + 60 * SEC, &mut out);
    g.snapshot(None, T0, T0 + 61 * SEC)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn graph_ignores_arrival_order_batches_and_duplicates(
        calls in proptest::collection::vec(call(), 1..40),
        seed in any::<u64>(),
        cuts in proptest::collection::vec(0usize..20, 0..8),
        dup_every in 2usize..7,
    ) {
        let expected = reference(&calls);
        let mut spans = spans_of(&calls);
        // Retried exports: some spans arrive twice.
        let copies: Vec<_> = spans.iter().step_by(dup_every).cloned().collect();
        spans.extend(copies);
        shuffle(&mut spans, seed);
        let got = run(spans, &cuts);
        prop_assert_eq!(&got, &expected);
        // And the reference itself matches the calls.
        let direct = calls.iter().filter(|c| c.kind == 0).count() as u64;
        let total: u64 = expected.edges.iter().filter(|e| e.caller == "checkout" && e.connection_type.is_empty()).map(|e| e.requests).sum();
        prop_assert_eq!(total, direct);
        let failed: u64 = expected.edges.iter().filter(|e| e.caller == "checkout" && e.connection_type.is_empty()).map(|e| e.errors).sum();
        prop_assert_eq!(failed, calls.iter().filter(|c| c.kind == 0 && (c.client_err || c.server_err)).count() as u64);
    }
}

fn shuffle(v: &mut [SpanRecord], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

#[test]
fn unpaired_flood_stays_within_the_configured_bound() {
    let cfg = GraphConfig {
        max_pending: 512,
        pairing_ttl: Duration::from_secs(10),
        ..GraphConfig::default()
    };
    let g = Graph::new(&cfg);
    let a = resource("prod", "frontend", "v1");
    let b = resource("prod", "backend", "v1");
    let mut out = Vec::new();
    let mut trace = 0u64;
    let mut peak = 0;
    // One simulated hour of spans that never pair, 200 every 5 simulated seconds (the
    // store would need 400 entries per TTL on top of the tombstones), ticking each step.
    for step in 0..720u64 {
        let now = T0 + step * 5 * SEC;
        let mut spans = Vec::with_capacity(200);
        for _ in 0..100 {
            trace += 1;
            spans.push(with_peer(
                span(&a, SpanKind::Client, trace, 1, 7, now, 1_000, false),
                NodeKind::Service,
                "ghost",
            ));
            spans.push(span(&b, SpanKind::Server, trace, 2, 99, now, 1_000, false));
        }
        g.record_spans(&SpanBatch { spans }, now, &mut out);
        peak = peak.max(g.pending());
        g.tick(now, &mut out);
        out.clear();
    }
    assert!(
        peak <= cfg.max_pending,
        "peak {peak} over {}",
        cfg.max_pending
    );
    let stats = g.pairing_stats();
    let evicted = stats.evicted.load(std::sync::atomic::Ordering::Relaxed);
    assert!(evicted > 0, "the store had to evict under this load");
    assert_eq!(stats.paired.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert!(
        g.edge_count() <= 1,
        "only the virtual edge frontend -> ghost"
    );
    let mut out = Vec::new();
    g.tick(T0 + 4_000 * SEC, &mut out);
    assert_eq!(g.pending(), 0);
}
