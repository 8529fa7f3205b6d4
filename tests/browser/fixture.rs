//! A fixture API: the real dashboard routes next to `/api/v1/*` answers taken from a
//! mutable snapshot shaped like the fixed contracts, so browser tests can script changes.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub const HOSTILE: &str = "<img src=x onerror=alert(1)>";
pub const HOSTILE_VERSION: &str = "<img src=x onerror=window.__pwned=1>";

/// What the API answers; tests change it while the page runs.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub deployments: Vec<Value>,
    pub services: Vec<Value>,
    pub nodes: Vec<Value>,
    pub edges: Vec<Value>,
    pub alerts: Vec<Value>,
    /// The graph's `sample_rate`; absent when None (as an older analyzer answers).
    pub sample_rate: Option<f64>,
}

pub type Shared = Arc<Mutex<Snapshot>>;

/// Serves the dashboard and the snapshot on 127.0.0.1:0; returns the address.
pub async fn serve(snapshot: Snapshot) -> (SocketAddr, Shared) {
    let shared = Arc::new(Mutex::new(snapshot));
    let app = Router::new()
        .route("/api/v1/deployments", get(deployments))
        .route("/api/v1/services", get(services))
        .route("/api/v1/graph", get(graph))
        .route("/api/v1/alerts", get(alerts))
        .with_state(shared.clone())
        .merge(verdict::api::dashboard::routes());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("fixture server") });
    (addr, shared)
}

type Q = Query<HashMap<String, String>>;

fn in_env(v: &Value, q: &HashMap<String, String>) -> bool {
    q.get("environment")
        .is_none_or(|e| v["environment"] == e.as_str())
}

async fn deployments(State(s): State<Shared>, Query(q): Q) -> Json<Value> {
    let d: Vec<Value> = s
        .lock()
        .deployments
        .iter()
        .filter(|v| in_env(v, &q))
        .cloned()
        .collect();
    Json(json!({ "deployments": d }))
}

async fn services(State(s): State<Shared>, Query(q): Q) -> Json<Value> {
    let d: Vec<Value> = s
        .lock()
        .services
        .iter()
        .filter(|v| in_env(v, &q))
        .cloned()
        .collect();
    Json(json!({ "services": d }))
}

async fn graph(State(s): State<Shared>) -> Json<Value> {
    let s = s.lock();
    let mut g = json!({ "nodes": s.nodes, "edges": s.edges });
    if let Some(rate) = s.sample_rate {
        g["sample_rate"] = json!(rate);
    }
    Json(g)
}

async fn alerts(State(s): State<Shared>) -> Json<Value> {
    Json(json!({ "alerts": s.lock().alerts }))
}

pub fn deployment(
    env: &str,
    service: &str,
    version: &str,
    baseline: Option<&str>,
    verdict: &str,
    requests: u64,
    reasons: Vec<Value>,
) -> Value {
    json!({
        "environment": env, "service": service, "version": version, "baseline_version": baseline,
        "verdict": verdict, "started_at": "2026-11-26T18:00:00Z", "requests": requests, "reasons": reasons,
    })
}

pub fn edge_reason(caller: &str, callee: &str, base: f64, cand: f64, summary: &str) -> Value {
    json!({
        "signal": "error_rate", "scope": "outgoing", "caller": caller, "callee": callee, "regression": true,
        "summary": summary,
        "evidence": {
            "baseline_value": base, "candidate_value": cand, "effect": cand - base,
            "baseline_samples": 4200, "candidate_samples": 610, "test": "sequential_binomial",
            "statistic": 41.7, "confidence": 0.999,
            "exemplar_trace_ids": ["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736"],
        },
    })
}

pub fn service(env: &str, name: &str, versions: &[(&str, u64, u64, f64)]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|(v, req, err, p99)| json!({"version": v, "requests": req, "errors": err, "latency_ms": {"p50": p99 / 4.0, "p90": p99 / 2.0, "p99": p99}}))
        .collect();
    json!({"environment": env, "service": name, "versions": versions})
}

pub fn node(name: &str, kind: &str, versions: &[&str]) -> Value {
    json!({"name": name, "kind": kind, "versions": versions})
}

pub fn edge(
    caller: &str,
    cv: &str,
    callee: &str,
    tv: &str,
    requests: u64,
    errors: u64,
    p99: f64,
) -> Value {
    let lat = json!({"p50": p99 / 4.0, "p90": p99 / 2.0, "p99": p99});
    json!({
        "caller": caller, "caller_version": cv, "callee": callee, "callee_version": tv,
        "connection_type": "", "requests": requests, "errors": errors,
        "client_latency_ms": lat, "server_latency_ms": lat,
    })
}

/// A bad canary: checkout 2.0 fails its calls to payment; a hostile service name sits beside it.
pub fn canary_scenario() -> Snapshot {
    let reason = edge_reason(
        "checkout",
        "payment",
        0.002,
        0.094,
        "checkout 2.0 -> payment errors 9.4 % vs 0.2 % on 1.9",
    );
    Snapshot {
        deployments: vec![
            deployment(
                "prod",
                "checkout",
                "2.0",
                Some("1.9"),
                "rollback",
                610,
                vec![reason],
            ),
            deployment(
                "prod",
                "frontend",
                "5.1",
                Some("5.0"),
                "promote",
                9000,
                vec![],
            ),
            deployment(
                "prod",
                HOSTILE,
                HOSTILE_VERSION,
                None,
                "inconclusive",
                12,
                vec![],
            ),
            deployment(
                "staging",
                "checkout",
                "2.1",
                Some("2.0"),
                "inconclusive",
                40,
                vec![],
            ),
        ],
        services: vec![
            service(
                "prod",
                "checkout",
                &[("1.9", 4200, 8, 40.0), ("2.0", 610, 57, 44.0)],
            ),
            service(
                "prod",
                "frontend",
                &[("5.0", 900, 1, 80.0), ("5.1", 9000, 9, 78.0)],
            ),
            service("prod", "payment", &[("3.3", 4800, 65, 20.0)]),
            service("prod", HOSTILE, &[(HOSTILE_VERSION, 12, 0, 5.0)]),
            service("staging", "checkout", &[("2.1", 40, 0, 30.0)]),
        ],
        nodes: vec![
            node("frontend", "service", &["5.0", "5.1"]),
            node("checkout", "service", &["1.9", "2.0"]),
            node("payment", "service", &["3.3"]),
            node("postgres", "database", &[]),
            node("kafka", "messaging", &[]),
            node(HOSTILE, "service", &[HOSTILE_VERSION]),
        ],
        edges: vec![
            edge("frontend", "5.1", "checkout", "1.9", 4000, 8, 45.0),
            edge("frontend", "5.1", "checkout", "2.0", 600, 57, 48.0),
            edge("checkout", "1.9", "payment", "3.3", 4200, 8, 20.0),
            edge("checkout", "2.0", "payment", "3.3", 610, 57, 22.0),
            edge("payment", "3.3", "postgres", "", 4800, 0, 4.0),
            edge("checkout", "1.9", "kafka", "", 4200, 0, 2.0),
            edge("frontend", "5.1", HOSTILE, HOSTILE_VERSION, 12, 0, 5.0),
        ],
        alerts: vec![json!({
            "fingerprint": "a1b2c3", "dedup_key": "a1b2c3", "status": "firing", "starts_at": "2026-11-26T18:01:00Z", "ends_at": null,
            "annotations": {"summary": "checkout 2.0 fails its calls to payment"},
            "labels": {"alertname": "DeploymentRegression", "environment": "prod", "service": "checkout", "version": "2.0",
                       "baseline_version": "1.9", "severity": "critical", "signal": "error_rate", "scope": "outgoing",
                       "caller": "checkout", "callee": "payment"},
            "delivery": [{"sink": "webhook", "type": "webhook", "state": "delivered", "delivered_status": "firing",
                          "delivered_at": "2026-11-26T18:01:01Z", "last_error": null}],
        })],
        sample_rate: Some(1.0),
    }
}

/// `services` services in layers with `edges` distinct calls, a tenth of them canaries,
/// some failing; plus a database per 25 services. Deterministic.
pub fn large_scenario(services: usize, edges: usize) -> Snapshot {
    let mut s = Snapshot::default();
    let name = |i: usize| format!("svc-{i:03}");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for i in 0..services {
        let canary = i % 10 == 0;
        let verdict = if i % 50 == 0 {
            "rollback"
        } else if canary {
            "inconclusive"
        } else {
            "promote"
        };
        s.deployments.push(deployment(
            "prod",
            &name(i),
            "2",
            canary.then_some("1"),
            verdict,
            1000 + i as u64,
            vec![],
        ));
        let versions: &[(&str, u64, u64, f64)] = if canary {
            &[("1", 9000, 9, 50.0), ("2", 1000, 30, 60.0)]
        } else {
            &[("2", 9000, 9, 50.0)]
        };
        s.services.push(service("prod", &name(i), versions));
        s.nodes.push(node(
            &name(i),
            "service",
            if canary { &["1", "2"] } else { &["2"] },
        ));
    }
    for d in 0..services / 25 {
        s.nodes.push(node(&format!("db-{d:02}"), "database", &[]));
    }
    let mut seen = std::collections::HashSet::new();
    while seen.len() < edges {
        let a = rnd(services - 1);
        let b = if rnd(10) == 0 {
            format!("db-{:02}", rnd(services / 25))
        } else {
            name(a + 1 + rnd((services - a - 1).min(40)))
        };
        if seen.insert((a, b.clone())) {
            s.edges
                .push(edge(&name(a), "2", &b, "", 500, (a % 7) as u64, 30.0));
        }
    }
    s
}
