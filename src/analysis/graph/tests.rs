//! Unit tests of pairing, expiry, virtual nodes, caps and the snapshot.

use super::config::GraphConfig;
use super::fixtures::{resource, span, with_peer};
use super::pairing::Side;
use super::Graph;
use crate::model::{ConnectionType, EdgeCall, NodeKind, SpanBatch, SpanKind, SpanRecord};
use crate::telemetry::{ExportMetrics, PromWriter};
use std::time::Duration;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn graph() -> Graph {
    Graph::new(&GraphConfig::default())
}

fn feed(g: &Graph, spans: Vec<SpanRecord>, now: u64) -> Vec<EdgeCall> {
    let mut out = Vec::new();
    g.record_spans(&SpanBatch { spans }, now, &mut out);
    g.flush();
    out
}

fn call_pair(trace: u64) -> (SpanRecord, SpanRecord) {
    let a = resource("prod", "checkout", "v2");
    let b = resource("prod", "payment", "v1");
    let client = span(&a, SpanKind::Client, trace, 10, 1, T0, 30_000_000, false);
    let server = span(
        &b,
        SpanKind::Server,
        trace,
        20,
        10,
        T0 + 1_000_000,
        25_000_000,
        true,
    );
    (client, server)
}

#[test]
fn pairs_in_either_order_and_across_batches() {
    let (c, s) = call_pair(1);
    let g1 = graph();
    assert!(feed(&g1, vec![c.clone()], T0).is_empty());
    let a = feed(&g1, vec![s.clone()], T0 + SEC);
    let g2 = graph();
    assert!(feed(&g2, vec![s], T0).is_empty());
    let b = feed(&g2, vec![c], T0 + SEC);
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
    let e = &a[0];
    assert_eq!(
        (e.caller.as_str(), e.caller_version.as_str()),
        ("checkout", "v2")
    );
    assert_eq!(
        (e.callee.as_str(), e.callee_version.as_str()),
        ("payment", "v1")
    );
    assert_eq!(
        (e.client_ns, e.server_ns, e.failed),
        (Some(30_000_000), Some(25_000_000), true)
    );
    assert_eq!(e.connection_type, ConnectionType::Direct);
    assert_eq!(g1.pending(), 0, "a completed pair leaves the store");
    assert_eq!(
        g1.pairing_tombstones(),
        1,
        "and stays as a tombstone for duplicates"
    );
}

#[test]
fn duplicates_do_not_double_count() {
    let (c, s) = call_pair(2);
    let g = graph();
    let mut all = feed(&g, vec![c.clone(), s.clone(), c.clone()], T0);
    all.extend(feed(&g, vec![s, c], T0 + SEC));
    assert_eq!(all.len(), 1);
    assert_eq!(
        g.pairing_stats()
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    let mut out = Vec::new();
    g.tick(T0 + 60 * SEC, &mut out);
    assert!(out.is_empty(), "a completed pair expires silently");
    assert_eq!(g.pending(), 0);
    let snap = g.snapshot(None, T0, T0 + 61 * SEC);
    assert_eq!(snap.edges[0].requests, 1);
}

#[test]
fn expired_client_spans_become_virtual_node_edges() {
    let a = resource("prod", "frontend", "v1");
    let named = with_peer(
        span(&a, SpanKind::Client, 3, 1, 0, T0, 5_000, true),
        NodeKind::External,
        "api.example.com",
    );
    let anonymous = span(&a, SpanKind::Client, 4, 1, 0, T0, 5_000, false);
    let g = graph();
    assert!(feed(&g, vec![named, anonymous], T0).is_empty());
    let mut out = Vec::new();
    g.tick(T0 + 9 * SEC, &mut out);
    assert!(out.is_empty(), "not expired before the TTL");
    g.tick(T0 + 10 * SEC, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].callee, "api.example.com");
    assert_eq!(out[0].callee_kind, NodeKind::External);
    assert_eq!(out[0].connection_type, ConnectionType::VirtualNode);
    assert_eq!(
        (out[0].client_ns, out[0].server_ns, out[0].failed),
        (Some(5_000), None, true)
    );
    assert_eq!(g.unpaired("prod", "frontend", Side::Client), 1);
    assert_eq!(g.pending(), 0);
}

#[test]
fn server_spans_without_client_are_unpaired_and_roots_hang_under_user() {
    let b = resource("prod", "cart", "v3");
    let orphan = span(&b, SpanKind::Server, 5, 2, 99, T0, 1_000, false);
    let root = span(&b, SpanKind::Server, 6, 2, 0, T0, 2_000, false);
    let g = graph();
    let out = feed(&g, vec![orphan, root.clone(), root], T0);
    assert_eq!(out.len(), 1, "root emitted at once, its duplicate ignored");
    assert_eq!(
        (out[0].caller.as_str(), out[0].callee.as_str()),
        ("user", "cart")
    );
    assert_eq!(out[0].server_ns, Some(2_000));
    let mut later = Vec::new();
    g.tick(T0 + 11 * SEC, &mut later);
    assert!(later.is_empty());
    assert_eq!(g.unpaired("prod", "cart", Side::Server), 1);
    let snap = g.snapshot(Some("prod"), T0, T0 + SEC);
    let user = snap.nodes.iter().find(|n| n.name == "user").unwrap();
    assert_eq!(user.kind, NodeKind::External);
}

#[test]
fn database_and_queue_calls_complete_from_the_client_alone() {
    let a = resource("prod", "orders", "v1");
    let c = resource("prod", "shipping", "v4");
    let db = with_peer(
        span(&a, SpanKind::Client, 7, 3, 1, T0, 700, false),
        NodeKind::Database,
        "postgresql/orders",
    );
    let send = with_peer(
        span(&a, SpanKind::Producer, 7, 4, 1, T0, 300, false),
        NodeKind::Messaging,
        "kafka/shipments",
    );
    let consume = span(&c, SpanKind::Consumer, 7, 5, 4, T0 + 50, 900, true);
    let g = graph();
    let out = feed(&g, vec![db, send], T0);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].callee.as_str(), out[0].connection_type),
        ("postgresql/orders", ConnectionType::Database)
    );
    assert_eq!(out[0].callee_kind, NodeKind::Database);
    assert_eq!(
        (out[1].callee.as_str(), out[1].connection_type),
        ("kafka/shipments", ConnectionType::MessagingSystem)
    );
    let paired = feed(&g, vec![consume], T0 + SEC);
    assert_eq!(
        paired.len(),
        1,
        "the consumer still pairs with its producer"
    );
    assert_eq!(
        (paired[0].callee.as_str(), paired[0].callee_version.as_str()),
        ("shipping", "v4")
    );
    assert_eq!(paired[0].connection_type, ConnectionType::MessagingSystem);
    assert_eq!(
        (paired[0].client_ns, paired[0].server_ns, paired[0].failed),
        (Some(300), Some(900), true)
    );
    let mut late = Vec::new();
    g.tick(T0 + 30 * SEC, &mut late);
    assert!(
        late.is_empty(),
        "alone-emitted spans do not come back as virtual edges"
    );
    let snap = g.snapshot(Some("prod"), T0, T0 + 2 * SEC);
    let kinds: Vec<_> = snap
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.kind))
        .collect();
    assert!(
        kinds.contains(&("postgresql/orders", NodeKind::Database)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("kafka/shipments", NodeKind::Messaging)),
        "{kinds:?}"
    );
}

#[test]
fn a_full_store_evicts_the_oldest_and_counts_it() {
    let cfg = GraphConfig {
        max_pending: 64,
        shards: 4,
        ..GraphConfig::default()
    };
    let g = Graph::new(&cfg);
    let a = resource("prod", "frontend", "v1");
    let mut out = Vec::new();
    for i in 0..1_000u64 {
        let s = with_peer(
            span(&a, SpanKind::Client, i + 1, 1, 0, T0, 10, false),
            NodeKind::Service,
            "ghost",
        );
        g.record_spans(&SpanBatch { spans: vec![s] }, T0 + i, &mut out);
        assert!(g.pending() <= g.pending_capacity());
    }
    let evicted = g
        .pairing_stats()
        .evicted
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(evicted as usize + g.pending(), 1_000);
    assert_eq!(
        out.len(),
        evicted as usize,
        "evicted client spans still become virtual edges"
    );
}

#[test]
fn edges_beyond_the_cap_go_to_the_overflow_edge() {
    let g = Graph::new(&GraphConfig {
        max_edges: 2,
        ..GraphConfig::default()
    });
    let callee = resource("prod", "db-proxy", "v1");
    for (i, caller) in ["a", "b", "c", "d"].iter().enumerate() {
        let r = resource("prod", caller, "v1");
        let t = i as u64 + 1;
        feed(
            &g,
            vec![
                span(&r, SpanKind::Client, t, 1, 0, T0, 10, false),
                span(&callee, SpanKind::Server, t, 2, 1, T0, 5, false),
            ],
            T0,
        );
    }
    assert_eq!(g.edge_count(), 3);
    let snap = g.snapshot(None, T0, T0 + SEC);
    let overflow = snap
        .edges
        .iter()
        .find(|e| e.caller == "__overflow__")
        .unwrap();
    assert_eq!(overflow.requests, 2);
    assert_eq!(
        g.edges
            .overflow_calls
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn windows_roll_and_edges_retire() {
    let cfg = GraphConfig {
        horizon: Duration::from_secs(60),
        default_window: Duration::from_secs(60),
        ..GraphConfig::default()
    };
    let g = Graph::new(&cfg);
    let (c, s) = call_pair(9);
    feed(&g, vec![c, s], T0);
    let (c, s) = call_pair(10);
    feed(&g, vec![c, s], T0 + 30 * SEC);
    assert_eq!(g.snapshot(None, T0, T0 + 31 * SEC).edges[0].requests, 2);
    assert_eq!(
        g.snapshot(None, T0 + 20 * SEC, T0 + 31 * SEC).edges[0].requests,
        1
    );
    let mut out = Vec::new();
    g.tick(T0 + 80 * SEC, &mut out);
    assert_eq!(
        g.snapshot(None, 0, u64::MAX).edges[0].requests,
        1,
        "the first slot left the horizon"
    );
    g.tick(T0 + 100 * SEC, &mut out);
    assert_eq!(g.edge_count(), 0);
}

#[test]
fn metrics_use_servicegraph_names_and_labels() {
    let g = graph();
    let (c, s) = call_pair(11);
    feed(&g, vec![c, s], T0);
    let mut w = PromWriter::new();
    g.export_metrics(&mut w);
    let text = w.finish();
    let labels = r#"client="checkout",server="payment",connection_type="",client_service_version="v2",server_service_version="v1",environment="prod""#;
    assert!(
        text.contains(&format!(
            "traces_service_graph_request_total{{{labels}}} 1\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "traces_service_graph_request_failed_total{{{labels}}} 1\n"
        )),
        "{text}"
    );
    let server_bucket = |le: &str, n: u64| {
        format!("traces_service_graph_request_server_seconds_bucket{{{labels},failed=\"true\",le=\"{le}\"}} {n}\n")
    };
    assert!(text.contains(&server_bucket("0.01", 0)), "{text}");
    assert!(text.contains(&server_bucket("0.05", 1)), "{text}");
    assert!(text.contains(&server_bucket("+Inf", 1)), "{text}");
    assert!(
        text.contains(&format!(
            "traces_service_graph_request_client_seconds_count{{{labels},failed=\"true\"}} 1\n"
        )),
        "{text}"
    );
    assert!(text.contains("verdict_graph_store_items 0\n"), "{text}");
    assert!(
        text.contains("verdict_graph_store_tombstones 1\n"),
        "{text}"
    );
    assert!(text.contains("verdict_graph_pairing_ratio 1\n"), "{text}");
}

/// Completed pairs do not take room from spans still waiting: with room for four waiting
/// spans, a hundred pairs completing in between do not evict a waiting client span, and
/// their copies are still recognised within the TTL.
#[test]
fn completed_pairs_do_not_evict_waiting_spans() {
    let g = Graph::new(&GraphConfig {
        max_pending: 4,
        shards: 1,
        ..GraphConfig::default()
    });
    let (waiting, its_server) = call_pair(1_000);
    assert!(feed(&g, vec![waiting], T0).is_empty());
    let pairs: Vec<_> = (0..100).map(|i| call_pair(2_000 + i)).collect();
    for (c, s) in &pairs {
        assert_eq!(feed(&g, vec![c.clone(), s.clone()], T0 + SEC).len(), 1);
    }
    assert_eq!(g.pending(), 1);
    let evicted = &g.pairing_stats().evicted;
    assert_eq!(evicted.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(
        feed(&g, vec![its_server], T0 + 2 * SEC).len(),
        1,
        "still pairs"
    );
    let (c, s) = &pairs[99];
    assert!(feed(&g, vec![c.clone(), s.clone()], T0 + 3 * SEC).is_empty());
    let dups = &g.pairing_stats().duplicates;
    assert_eq!(dups.load(std::sync::atomic::Ordering::Relaxed), 2);
}

/// Pairs that complete leave little behind in the expiry queue: a shard drops the entries
/// of completed pairs once they are half of its queue, so the queue follows the waiting
/// keys (here none), not every key of the last TTL (60,000 pairs within one TTL).
#[test]
fn completed_pairs_do_not_keep_the_expiry_queue() {
    let g = graph();
    for trace in 1..=60_000u64 {
        let (c, s) = call_pair(trace);
        assert_eq!(feed(&g, vec![c, s], T0).len(), 1);
    }
    assert_eq!(g.pending(), 0);
    let shards = GraphConfig::default().shards;
    assert!(
        g.pairing_queued() <= shards * 2 * super::pairing::FIFO_SLACK,
        "{} queued",
        g.pairing_queued()
    );
}

/// Under pressure the graph keeps a quarter of the traces, whole: every kept call counts
/// four times in the edge, the judge gets the kept calls themselves, no span is left
/// unpaired by thinning, and the rate shows in the snapshot and in `/metrics`.
#[test]
fn a_thinned_graph_keeps_whole_traces_and_weighs_their_calls() {
    use super::thinning::Pressure;
    let g = graph();
    let busy = Pressure {
        queued: 900,
        capacity: 1_000,
        refused: 0,
        cpu: None,
    };
    assert_eq!(g.adapt(busy), Some(0.5));
    assert_eq!(g.adapt(busy), Some(0.25));
    let n = 8_000u64;
    let mut spans = Vec::new();
    for trace in 1..=n {
        let (c, s) = call_pair(trace.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Server first: every kept pair waits in the store once.
        spans.extend([s, c]);
    }
    let mut out = Vec::new();
    for chunk in spans.chunks(512) {
        g.record_spans(
            &SpanBatch {
                spans: chunk.to_vec(),
            },
            T0,
            &mut out,
        );
    }
    let runs = g.tick(T0 + 60 * SEC, &mut out);
    let kept = out.len() as u64;
    let sd = (n as f64 * 0.25 * 0.75).sqrt();
    assert!(
        (kept as f64 - n as f64 / 4.0).abs() < 5.0 * sd,
        "kept {kept} of {n}"
    );
    assert_eq!(runs.calls() as u64, kept, "the judge sees the kept calls");
    assert_eq!(g.thinned_spans(), 2 * (n - kept));
    assert_eq!(g.unpaired("prod", "payment", Side::Server), 0);
    assert_eq!(g.unpaired("prod", "checkout", Side::Client), 0);
    assert_eq!(g.pending(), 0);
    let snap = g.snapshot(None, T0, T0 + 61 * SEC);
    assert_eq!(snap.sample_rate, 0.25);
    assert_eq!(snap.edges[0].requests, 4 * kept);
    assert_eq!(snap.edges[0].errors, 4 * kept, "every server span failed");
    let mut w = PromWriter::new();
    g.export_metrics(&mut w);
    let text = w.finish();
    assert!(text.contains("verdict_graph_sample_rate 0.25\n"), "{text}");
    assert!(text.contains(&format!(
        "verdict_graph_thinned_spans_total {}\n",
        2 * (n - kept)
    )));
}

#[test]
fn the_pairing_store_estimate_grows_with_waiting_spans_and_tombstones() {
    let g = graph();
    let empty = g.pairing_memory_bytes();
    let fe = resource("prod", "frontend", "v1");
    let waiting: Vec<SpanRecord> = (1..=10_000)
        .map(|t| {
            let s = span(&fe, SpanKind::Client, t, 1, 9, T0, 1_000, false);
            with_peer(s, NodeKind::Service, "ghost")
        })
        .collect();
    feed(&g, waiting, T0);
    assert_eq!(g.pending(), 10_000);
    let per_span = (g.pairing_memory_bytes() - empty) as f64 / 10_000.0;
    // A map entry (with its control byte and the room a hash table keeps), a queue entry
    // and the boxed peer: the counting allocator of `cargo bench --bench graph` measures
    // about 170 bytes per waiting span.
    assert!(
        (100.0..400.0).contains(&per_span),
        "{per_span} bytes per waiting span"
    );
    // Their partners complete the pairs: the peers are freed, the fingerprints remembered.
    let be = resource("prod", "backend", "v1");
    let servers: Vec<SpanRecord> = (1..=10_000)
        .map(|t| span(&be, SpanKind::Server, t, 2, 1, T0, 900, false))
        .collect();
    feed(&g, servers, T0);
    assert_eq!(g.pending(), 0);
    assert_eq!(g.pairing_tombstones(), 10_000);
    assert!(g.pairing_memory_bytes() >= empty + 10_000 * 8);
}
