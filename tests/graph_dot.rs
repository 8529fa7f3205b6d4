//! The graph's human outputs: `GET /api/v1/graph` as JSON and as Graphviz DOT (with
//! hostile names from telemetry), and the DOT rendered by the real `dot -Tsvg`.

use axum::body::Body;
use http::{Request, StatusCode};
use std::process::{Command, Stdio};
use std::sync::Arc;
use tower::ServiceExt;
use verdict::analysis::graph::config::GraphConfig;
use verdict::analysis::graph::fixtures::{resource, span, with_peer};
use verdict::analysis::Analyzer;
use verdict::api::AppState;
use verdict::clock::ManualClock;
use verdict::model::{IngestItem, NodeKind, SpanBatch, SpanKind};

const T0: u64 = 1_700_000_000_000_000_000;

fn state() -> (AppState, tempfile::TempDir) {
    let analyzer = Analyzer::new(&Default::default(), &GraphConfig::default());
    let hostile = resource("prod", "we\"ird\\svc\n}; x -> y [", "v\"1");
    let pay = resource("prod", "payment", "v1");
    let spans = vec![
        span(&hostile, SpanKind::Server, 1, 1, 0, T0, 9_000_000, false),
        span(&hostile, SpanKind::Client, 1, 2, 1, T0, 8_000_000, true),
        span(&pay, SpanKind::Server, 1, 3, 2, T0, 5_000_000, false),
        with_peer(
            span(&pay, SpanKind::Client, 1, 4, 3, T0, 1_000_000, false),
            NodeKind::Database,
            "redis/<0>&\"db\"",
        ),
    ];
    analyzer.record(&IngestItem::Spans(SpanBatch { spans }), T0);
    analyzer.graph.flush();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0 + 1_000_000_000));
    let state = AppState::standalone(analyzer, clock, dir.path()).unwrap();
    (state, dir)
}

async fn get(uri: &str, accept: Option<&str>) -> (StatusCode, String, String) {
    let (state, _dir) = state();
    let mut req = Request::get(uri);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = verdict::api::router(state)
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn json_has_the_issue_shape() {
    let (status, ctype, body) = get("/api/v1/graph?environment=prod&window=1m", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let edges = v["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 3, "{body}");
    let call = edges.iter().find(|e| e["callee"] == "payment").unwrap();
    assert_eq!(call["caller_version"], "v\"1");
    assert_eq!(call["callee_version"], "v1");
    assert_eq!(call["connection_type"], "");
    assert_eq!(
        (call["requests"].as_u64(), call["errors"].as_u64()),
        (Some(1), Some(1))
    );
    let p50 = call["client_latency_ms"]["p50"].as_f64().unwrap();
    assert!((p50 - 8.0).abs() < 8.0 * 0.008, "{p50}");
    assert!((call["server_latency_ms"]["p99"].as_f64().unwrap() - 5.0).abs() < 0.05);
    let db = edges
        .iter()
        .find(|e| e["connection_type"] == "database")
        .unwrap();
    assert!(db["server_latency_ms"]["p50"].is_null());
    let nodes = v["nodes"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["kind"].as_str().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("redis/<0>&\"db\"", "database")),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("user", "external")), "{kinds:?}");
    let payment = nodes.iter().find(|n| n["name"] == "payment").unwrap();
    assert_eq!(payment["versions"], serde_json::json!(["v1"]));
    let (_, _, other) = get("/api/v1/graph?environment=staging", None).await;
    // The issue's shape, plus the share of traces the graph keeps (1: not thinned).
    assert_eq!(other, r#"{"nodes":[],"edges":[],"sample_rate":1.0}"#);
}

#[tokio::test]
async fn malformed_queries_answer_400() {
    for uri in [
        "/api/v1/graph?window=soon",
        "/api/v1/graph?window=0s",
        "/api/v1/graph?format=png",
    ] {
        let (status, _, body) = get(uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
    }
}

#[tokio::test]
async fn dot_renders_with_graphviz() {
    let (status, ctype, by_accept) = get("/api/v1/graph", Some("text/vnd.graphviz")).await;
    assert_eq!(
        (status, ctype.as_str()),
        (StatusCode::OK, "text/vnd.graphviz")
    );
    let (_, _, by_param) = get("/api/v1/graph?format=dot", None).await;
    assert_eq!(by_accept, by_param);
    assert_eq!(
        by_accept.lines().filter(|l| l.contains("color=")).count(),
        3,
        "{by_accept}"
    );
    let deps = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/ensure-test-deps.sh"
        ))
        .status()
        .unwrap();
    assert!(deps.success(), "scripts/ensure-test-deps.sh failed");
    let mut dot = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    dot.stdin
        .take()
        .unwrap()
        .write_all(by_accept.as_bytes())
        .unwrap();
    let out = dot.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "dot failed: {stderr}\n{by_accept}"
    );
    let svg = String::from_utf8(out.stdout).unwrap();
    // Exactly three edges and four nodes: the hostile name did not inject any.
    assert_eq!(svg.matches("class=\"edge\"").count(), 3, "{svg}");
    assert_eq!(svg.matches("class=\"node\"").count(), 4, "{svg}");
    assert!(svg.contains("we&quot;ird\\svc"), "{svg}");
}
