//! End to end through a real client: the OpenTelemetry Python SDK sends a topology (two
//! caller versions, two callee versions, a database and a queue) over OTLP/HTTP protobuf;
//! the receiver's decoder normalizes it and the graph pairs it. Every edge's counts,
//! failures and both latencies are checked against the formulas the script uses.
//!
//! The server here is a minimal `/v1/traces` endpoint over `verdict::receiver::decode`
//! because `verdict serve` does not start its receivers yet; once it does, this test can
//! point the SDK at the binary instead.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use std::process::Command;
use std::sync::Arc;
use verdict::analysis::graph::config::GraphConfig;
use verdict::analysis::graph::{EdgeView, Graph};
use verdict::analysis::histogram::RELATIVE_PRECISION;
use verdict::model::SpanBatch;

const CALLS: u64 = 40;
const MS: f64 = 1.0;
const T0: u64 = 1_700_000_000_000_000_000;

async fn traces(State(g): State<Arc<Graph>>, body: Bytes) -> &'static str {
    let now = T0 + 60_000_000_000;
    let decoded = verdict::receiver::decode::decode_traces_proto(&body, now).expect("valid OTLP");
    let mut out = Vec::new();
    g.record_spans(
        &SpanBatch {
            spans: decoded.spans,
        },
        now,
        &mut out,
    );
    ""
}

/// Nearest-rank quantile of exact values.
fn quantile(mut xs: Vec<f64>, q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((q * xs.len() as f64).ceil() as usize).max(1) - 1]
}

fn assert_close(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no latency"));
    assert!(
        (got - want).abs() <= want * RELATIVE_PRECISION + 0.001,
        "{what}: got {got} want {want}"
    );
}

/// Checks one edge against the calls `which` selects: `client`/`server` give each call's
/// latency in ms (None: that side has no span), `failed` its outcome.
fn check(
    edges: &[EdgeView],
    key: (&str, &str, &str, &str, &str),
    which: impl Fn(u64) -> bool,
    client: impl Fn(u64) -> Option<f64>,
    server: impl Fn(u64) -> Option<f64>,
    failed: impl Fn(u64) -> bool,
) {
    let e = edges
        .iter()
        .find(|e| {
            (
                e.caller.as_str(),
                e.caller_version.as_str(),
                e.callee.as_str(),
                e.callee_version.as_str(),
                e.connection_type,
            ) == key
        })
        .unwrap_or_else(|| panic!("edge {key:?} missing from {edges:#?}"));
    let calls: Vec<u64> = (0..CALLS).filter(|i| which(*i)).collect();
    assert_eq!(e.requests, calls.len() as u64, "{key:?} requests");
    assert_eq!(
        e.errors,
        calls.iter().filter(|i| failed(**i)).count() as u64,
        "{key:?} errors"
    );
    for (side, f, got) in [
        (
            "client",
            &client as &dyn Fn(u64) -> Option<f64>,
            &e.client_latency_ms,
        ),
        ("server", &server, &e.server_latency_ms),
    ] {
        let xs: Vec<f64> = calls.iter().filter_map(|i| f(*i)).collect();
        if xs.is_empty() {
            assert_eq!(got.p50, None, "{key:?} {side}");
            continue;
        }
        for (q, v) in [(0.5, got.p50), (0.9, got.p90), (0.99, got.p99)] {
            assert_close(
                v,
                quantile(xs.clone(), q),
                &format!("{key:?} {side} p{}", q * 100.0),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_topology_gives_exact_versioned_edges() {
    let deps = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/ensure-test-deps.sh"
        ))
        .status()
        .unwrap();
    assert!(deps.success(), "scripts/ensure-test-deps.sh failed");
    let graph = Arc::new(Graph::new(&GraphConfig::default()));
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(graph.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/graph_e2e_topology.py");
    let endpoint = format!("http://{addr}/v1/traces");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &endpoint, &CALLS.to_string(), &T0.to_string()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let snap = graph.snapshot(Some("e2e"), 0, u64::MAX);
    let e = &snap.edges;
    assert_eq!(e.len(), 2 + 4 + 2 + 2 + 2, "{e:#?}");
    let v = |even: bool| if even { "v1" } else { "v2" };
    for cv in ["v1", "v2"] {
        let mine = move |i: u64| v(i % 2 == 0) == cv;
        check(
            e,
            ("user", "", "checkout", cv, "virtual_node"),
            mine,
            |_| None,
            |i| Some((50 + i) as f64 * MS),
            |_| false,
        );
        for pv in ["v1", "v2"] {
            check(
                e,
                ("checkout", cv, "payment", pv, ""),
                move |i| mine(i) && v(i % 4 < 2) == pv,
                |i| Some((10 + i) as f64),
                |i| Some((5 + i) as f64),
                |i| i % 5 == 0,
            );
        }
        check(
            e,
            ("checkout", cv, "postgresql/shop", "", "database"),
            mine,
            |_| Some(2.0),
            |_| None,
            |_| false,
        );
        check(
            e,
            ("checkout", cv, "kafka/orders", "", "messaging_system"),
            mine,
            |_| Some(1.0),
            |_| None,
            |_| false,
        );
        check(
            e,
            ("checkout", cv, "shipping", "v1", "messaging_system"),
            mine,
            |_| Some(1.0),
            |i| Some((3 + i) as f64),
            |i| i % 7 == 0,
        );
    }
    let pay = snap.nodes.iter().find(|n| n.name == "payment").unwrap();
    assert_eq!(pay.versions, vec!["v1", "v2"]);
}
