//! End to end through real clients and the whole app: the OpenTelemetry Python and Rust
//! SDKs send a topology (two caller versions, two callee versions, a database and a queue)
//! over OTLP/HTTP protobuf to `verdict::app::start` (the receivers, ingest queue and
//! analysis workers `verdict serve` runs); every edge's counts, failures and both
//! latencies are then checked against the formulas the clients use.

use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use verdict::analysis::graph::{EdgeView, Graph};
use verdict::analysis::histogram::RELATIVE_PRECISION;
use verdict::analysis::Analyzer;
use verdict::app::RunningApp;

const CALLS: u64 = 40;
const MS: f64 = 1.0;

/// Start of the clients' spans: a minute ago, so the windows the app keeps hold them.
fn t0() -> u64 {
    static T: OnceLock<u64> = OnceLock::new();
    *T.get_or_init(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        now.as_nanos() as u64 - 60_000_000_000
    })
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

/// Starts the whole app on loopback; returns it, its analyzer and the OTLP/HTTP traces URL.
async fn start_app(dir: &std::path::Path) -> (RunningApp, Arc<Analyzer>, String) {
    let mut config = verdict::config::Config::default();
    config.receivers.grpc_addr = "127.0.0.1:0".into();
    config.receivers.http_addr = "127.0.0.1:0".into();
    config.api.addr = "127.0.0.1:0".into();
    config.alerting.store_path = dir.join("alerts");
    config.judge.decision_log = String::new();
    let app = verdict::app::start(config, vec![], Arc::new(verdict::clock::SystemClock))
        .await
        .unwrap();
    let analyzer = app.state.analyzer.clone();
    let url = format!("http://{}/v1/traces", app.http_addr);
    (app, analyzer, url)
}

/// Waits until the analysis workers have recorded everything the clients sent: all 12
/// edges present and the total of their calls unchanged over 1.1 s (the graph applies
/// calls at each one-second tick).
async fn settled(graph: &Graph) {
    let total = || {
        let snap = graph.snapshot(Some("e2e"), 0, u64::MAX);
        (
            snap.edges.len(),
            snap.edges.iter().map(|e| e.requests).sum::<u64>(),
        )
    };
    let mut last = (0, 0);
    for _ in 0..40 {
        let now = total();
        if now.0 == 12 && now == last {
            return;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(1100)).await;
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
    let dir = tempfile::tempdir().unwrap();
    let (app, analyzer, endpoint) = start_app(dir.path()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/graph_e2e_topology.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &endpoint, &CALLS.to_string(), &t0().to_string()])
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
    settled(&analyzer.graph).await;
    expect_topology(&analyzer.graph);
    app.stop().await;
}

/// Every edge of the topology the script and [`rust_client::send`] produce.
fn expect_topology(graph: &Graph) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_topology_gives_exact_versioned_edges() {
    let dir = tempfile::tempdir().unwrap();
    let (app, analyzer, endpoint) = start_app(dir.path()).await;
    tokio::task::spawn_blocking(move || rust_client::send(&endpoint))
        .await
        .unwrap();
    settled(&analyzer.graph).await;
    expect_topology(&analyzer.graph);
    app.stop().await;
}

/// The same topology as `graph_e2e_topology.py`, sent by the Rust SDK
/// (`opentelemetry-otlp`, OTLP/HTTP protobuf, one provider per service version).
mod rust_client {
    use super::{t0, CALLS};
    use opentelemetry::trace::{
        Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _,
    };
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    const MS: u64 = 1_000_000;

    struct Providers {
        endpoint: String,
        all: HashMap<(&'static str, &'static str), SdkTracerProvider>,
    }

    impl Providers {
        fn tracer(
            &mut self,
            service: &'static str,
            version: &'static str,
        ) -> opentelemetry_sdk::trace::SdkTracer {
            let endpoint = self.endpoint.clone();
            self.all
                .entry((service, version))
                .or_insert_with(|| {
                    let exporter = opentelemetry_otlp::SpanExporter::builder()
                        .with_http()
                        .with_protocol(Protocol::HttpBinary)
                        .with_endpoint(endpoint)
                        .build()
                        .expect("exporter");
                    let resource = Resource::builder_empty()
                        .with_attributes([
                            KeyValue::new("service.name", service),
                            KeyValue::new("service.version", version),
                            KeyValue::new("deployment.environment.name", "e2e"),
                        ])
                        .build();
                    SdkTracerProvider::builder()
                        .with_resource(resource)
                        .with_simple_exporter(exporter)
                        .build()
                })
                .tracer("graph-e2e")
        }
    }

    fn at(ns: u64) -> std::time::SystemTime {
        UNIX_EPOCH + Duration::from_nanos(ns)
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        t: &opentelemetry_sdk::trace::SdkTracer,
        name: &'static str,
        kind: SpanKind,
        parent: &Context,
        start: u64,
        dur: u64,
        error: bool,
        attrs: Vec<KeyValue>,
    ) -> (opentelemetry_sdk::trace::Span, Context, u64) {
        let mut s = t
            .span_builder(name)
            .with_kind(kind)
            .with_start_time(at(start))
            .with_attributes(attrs)
            .start_with_context(t, parent);
        if error {
            s.set_status(Status::error("failed"));
        }
        let cx = Context::new().with_remote_span_context(s.span_context().clone());
        (s, cx, start + dur)
    }

    /// Sends `CALLS` calls of the topology to `endpoint`.
    pub fn send(endpoint: &str) {
        let mut p = Providers {
            endpoint: endpoint.to_string(),
            all: HashMap::new(),
        };
        let v = |even: bool| if even { "v1" } else { "v2" };
        for i in 0..CALLS {
            let start = t0() + i * 100 * MS;
            let co = p.tracer("checkout", v(i % 2 == 0));
            let pay = p.tracer("payment", v(i % 4 < 2));
            let ship = p.tracer("shipping", "v1");
            let (mut root, root_cx, root_end) = span(
                &co,
                "POST /checkout",
                SpanKind::Server,
                &Context::new(),
                start,
                (50 + i) * MS,
                false,
                vec![],
            );
            let (mut cl, cl_cx, cl_end) = span(
                &co,
                "POST /pay",
                SpanKind::Client,
                &root_cx,
                start + MS,
                (10 + i) * MS,
                false,
                vec![],
            );
            let (mut sv, _, sv_end) = span(
                &pay,
                "POST /pay",
                SpanKind::Server,
                &cl_cx,
                start + 2 * MS,
                (5 + i) * MS,
                i % 5 == 0,
                vec![],
            );
            sv.end_with_timestamp(at(sv_end));
            cl.end_with_timestamp(at(cl_end));
            let db_attrs = vec![
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new("db.namespace", "shop"),
            ];
            let (mut db, _, db_end) = span(
                &co,
                "SELECT",
                SpanKind::Client,
                &root_cx,
                start + 20 * MS,
                2 * MS,
                false,
                db_attrs,
            );
            db.end_with_timestamp(at(db_end));
            let mq = vec![
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.destination.name", "orders"),
            ];
            let (mut pr, pr_cx, pr_end) = span(
                &co,
                "orders publish",
                SpanKind::Producer,
                &root_cx,
                start + 30 * MS,
                MS,
                false,
                mq,
            );
            let (mut cons, _, cons_end) = span(
                &ship,
                "orders process",
                SpanKind::Consumer,
                &pr_cx,
                start + 40 * MS,
                (3 + i) * MS,
                i % 7 == 0,
                vec![],
            );
            cons.end_with_timestamp(at(cons_end));
            pr.end_with_timestamp(at(pr_end));
            root.end_with_timestamp(at(root_end));
        }
        for provider in p.all.values() {
            provider.shutdown().expect("flush");
        }
    }
}
