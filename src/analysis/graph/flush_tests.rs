//! Unit tests of the edge store's buffer: what a flush applies and hands on, the worker's
//! own flush when the buffer is full, the overflow edge's calls keeping their names, and
//! retirement sparing edges with buffered calls.

use super::config::GraphConfig;
use super::edges::{EdgeStore, FLUSH_AT};
use super::fixtures::{resource, span};
use super::{EdgeRuns, Graph};
use crate::model::{ConnectionType, EdgeCall, Name, NodeKind, SpanBatch, SpanKind};
use std::time::Duration;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn call(caller: &str, version: &str, callee: &str, client_ns: u64, failed: bool) -> EdgeCall {
    EdgeCall {
        environment: Name::new("prod"),
        caller: Name::new(caller),
        caller_version: Name::new(version),
        callee: Name::new(callee),
        callee_version: Name::new("v1"),
        callee_kind: NodeKind::Service,
        connection_type: ConnectionType::Direct,
        client_ns: Some(client_ns),
        server_ns: None,
        failed,
        trace_id: [client_ns as u8; 16],
        time_unix_nano: T0,
    }
}

fn store(max_edges: usize) -> EdgeStore {
    EdgeStore::new(max_edges, Duration::from_secs(30), Duration::from_secs(60))
}

/// (caller, caller version, callee, client latencies, failures) of each run.
fn summary(runs: &EdgeRuns) -> Vec<(String, String, String, Vec<u64>, usize)> {
    let mut v: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r.key.caller.to_string(),
                r.key.caller_version.to_string(),
                r.key.callee.to_string(),
                r.calls.iter().filter_map(|c| c.client_ns()).collect(),
                r.calls.iter().filter(|c| c.failed).count(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_flush_applies_the_buffer_and_hands_it_on_grouped_by_edge() {
    let s = store(100);
    let calls = [
        call("a", "v1", "b", 10, false),
        call("a", "v2", "b", 20, true),
        call("a", "v1", "b", 30, true),
        call("c", "v1", "b", 40, false),
    ];
    assert!(!s.record(&calls[..2], T0, 1));
    assert!(!s.record(&calls[2..], T0 + 1, 1));
    assert_eq!(
        (s.len(), s.buffered()),
        (0, 4),
        "nothing applied before the flush"
    );
    let runs = s.flush();
    assert_eq!(
        summary(&runs),
        vec![
            ("a".into(), "v1".into(), "b".into(), vec![10, 30], 1),
            ("a".into(), "v2".into(), "b".into(), vec![20], 1),
            ("c".into(), "v1".into(), "b".into(), vec![40], 0),
        ]
    );
    assert_eq!((s.len(), s.buffered()), (3, 0));
    let mut requests = 0;
    s.for_each(|_, e| requests += e.totals(0, u64::MAX, s.slot_ns()).requests);
    assert_eq!(requests, 4);
    assert!(s.flush().is_empty(), "a second flush has nothing left");
}

#[test]
fn the_recording_worker_flushes_a_full_buffer_itself() {
    let g = Graph::new(&GraphConfig::default());
    let (a, b) = (resource("prod", "a", "v1"), resource("prod", "b", "v1"));
    let mut flushed = 0;
    let mut recorded = 0;
    for t in 0..(FLUSH_AT as u64 / 256 + 1) {
        let spans = (0..256)
            .flat_map(|i| {
                let trace = t * 1000 + i + 1;
                [
                    span(&a, SpanKind::Client, trace, 1, 0, T0, 10, false),
                    span(&b, SpanKind::Server, trace, 2, 1, T0, 5, false),
                ]
            })
            .collect();
        recorded += 256;
        if let Some(runs) = g.record_spans(&SpanBatch { spans }, T0, &mut Vec::new()) {
            flushed += runs.calls();
        }
    }
    assert_eq!(
        flushed, FLUSH_AT,
        "flushed once, when the buffer reached its size"
    );
    assert_eq!(g.flush().calls(), recorded - FLUSH_AT);
    let snap = g.snapshot(None, 0, u64::MAX);
    assert_eq!(snap.edges[0].requests, recorded as u64);
}

#[test]
fn calls_on_the_overflow_edge_keep_their_own_names_for_the_judge() {
    let s = store(1);
    s.record(&[call("a", "v1", "b", 1, false)], T0, 1);
    s.record(
        &[
            call("c", "v2", "b", 2, true),
            call("d", "v1", "b", 3, false),
            call("c", "v2", "b", 4, false),
        ],
        T0,
        1,
    );
    let runs = s.flush();
    assert_eq!(
        summary(&runs),
        vec![
            ("a".into(), "v1".into(), "b".into(), vec![1], 0),
            ("c".into(), "v2".into(), "b".into(), vec![2, 4], 1),
            ("d".into(), "v1".into(), "b".into(), vec![3], 0),
        ]
    );
    let mut edges = Vec::new();
    s.for_each(|k, e| {
        let t = e.totals(0, u64::MAX, s.slot_ns());
        edges.push((k.caller.to_string(), t.requests, t.errors));
    });
    edges.sort();
    assert_eq!(
        edges,
        vec![("__overflow__".into(), 3, 1), ("a".into(), 1, 0)]
    );
}

#[test]
fn retirement_spares_buffered_edges_and_reuses_ids_of_retired_ones() {
    let s = store(2);
    s.record(&[call("a", "v1", "b", 1, false)], T0, 1);
    s.record(&[call("c", "v1", "b", 2, false)], T0, 1);
    s.flush();
    // A call on `a` waits in the buffer when the horizon has passed for both edges.
    s.record(&[call("a", "v1", "b", 3, false)], T0, 1);
    s.retire(T0 + 120 * SEC);
    let mut left = Vec::new();
    s.for_each(|k, _| left.push(k.caller.to_string()));
    assert_eq!(left, vec!["a"]);
    // `c`'s id is free again: a new edge takes it instead of going to the overflow edge.
    s.record(&[call("e", "v1", "b", 4, false)], T0 + 120 * SEC, 1);
    let runs = s.flush();
    assert_eq!(
        summary(&runs),
        vec![
            ("a".into(), "v1".into(), "b".into(), vec![3], 0),
            ("e".into(), "v1".into(), "b".into(), vec![4], 0),
        ]
    );
    assert_eq!(s.len(), 2);
    assert_eq!(
        s.overflow_calls.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn a_visit_by_key_and_id_skips_an_edge_retired_since_and_its_ids_new_edge() {
    let s = store(2);
    s.record(&[call("a", "v1", "b", 1, false)], T0, 1);
    s.record(&[call("c", "v1", "b", 2, true)], T0, 1);
    s.flush();
    let mut order = Vec::new();
    s.for_each_with_id(|id, k, _| order.push((k.clone(), id)));
    let requests = |s: &EdgeStore, order: &[(super::edges::EdgeKey, u32)]| {
        let mut seen = Vec::new();
        s.visit(order, |i, e| {
            seen.push((i, e.cumulative.requests, e.cumulative.failed))
        });
        seen
    };
    assert_eq!(requests(&s, &order), vec![(0, 1, 0), (1, 1, 1)]);
    // `c` retires and `e` takes its id: a visit by `c`'s key and id finds neither.
    s.record(&[call("a", "v1", "b", 3, false)], T0 + 120 * SEC, 1);
    s.flush();
    s.retire(T0 + 120 * SEC);
    s.record(&[call("e", "v1", "b", 4, false)], T0 + 120 * SEC, 1);
    s.flush();
    let mut ids = Vec::new();
    s.for_each_with_id(|id, k, _| ids.push((k.caller.to_string(), id)));
    assert!(ids.contains(&("e".to_string(), order[1].1)), "{ids:?}");
    assert_eq!(requests(&s, &order), vec![(0, 2, 0)]);
}

#[test]
fn the_edge_states_room_stops_at_the_cap() {
    let cap = 1_000;
    let s = store(cap);
    for i in 0..cap + 10 {
        s.record(&[call(&format!("caller-{i}"), "v1", "b", 1, false)], T0, 1);
        if i % 97 == 0 {
            s.flush();
        }
    }
    s.flush();
    assert_eq!(s.len(), cap + 1, "the cap's edges and the overflow edge");
    assert!(s.state_room() <= cap + 1, "room for {}", s.state_room());
}

#[test]
fn an_edges_windows_keep_both_latencies_and_only_the_horizons_slots() {
    let s = store(10);
    let slot = 30 * SEC;
    let mut held = Vec::new();
    for i in 0..20u64 {
        let at = T0 + i * slot;
        let mut c = call("a", "v1", "b", 1_000_000 * (1 + i % 3), i % 4 == 0);
        c.server_ns = Some(100_000 * (1 + i % 3));
        s.record(&[c], at, 2); // each kept call stands for two
        s.flush();
        s.retire(at);
        s.for_each(|_, e| held.push(e.heap_bytes()));
    }
    let now = T0 + 19 * slot;
    let mut totals = Vec::new();
    s.for_each(|_, e| totals.push(e.totals(0, u64::MAX, s.slot_ns())));
    // The 60 s horizon keeps the slots ending after now - 60 s: slots 17, 18 and 19.
    assert_eq!(totals[0].requests, 6);
    assert_eq!(
        totals[0].errors, 0,
        "slot 16 held the last failure and left"
    );
    assert_eq!(totals[0].client.count(), 6);
    assert_eq!(totals[0].server.count(), 6);
    assert!(totals[0].server.quantile(1.0) < totals[0].client.quantile(0.0));
    let mut last = Vec::new();
    s.for_each(|_, e| last.push(e.totals(now, now + slot, s.slot_ns())));
    assert_eq!((last[0].requests, last[0].client.count()), (2, 2));
    assert_eq!(last[0].client.quantile(0.5).map(|v| v / 100_000), Some(20));
    // Memory does not grow with the slots that passed.
    assert!(held[19] <= held[4] + 64, "{held:?}");
}
