//! The simulator's output as a receiver sees it: a real OTLP gRPC server (tonic with the
//! generated `TraceServiceServer` / `MetricsServiceServer`) collects what the Rust SDK
//! exports; the test decodes it and checks span kinds, parentage, attributes, resources,
//! timings, metrics, and that a seed reproduces the same traffic exactly.

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use verdict::sim::emit::{ExportProtocol, ExportSettings};
use verdict::sim::simulate::emit_burst;
use verdict::sim::{Scenario, Topology};

#[derive(Clone, Default)]
struct Collector {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().expect("lock").push(req.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().expect("lock").push(req.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn start_collector() -> (String, Collector) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let c = Collector::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(c.clone()))
        .add_service(MetricsServiceServer::new(c.clone()));
    tokio::spawn(server.serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)));
    (format!("http://{addr}"), c)
}

/// A decoded span with its resource attributes.
#[derive(Debug, Clone, PartialEq)]
struct Flat {
    resource: BTreeMap<String, String>,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    error: bool,
    attrs: BTreeMap<String, String>,
}

fn value(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn flatten(reqs: &[ExportTraceServiceRequest]) -> Vec<Flat> {
    let mut out = Vec::new();
    for req in reqs {
        for rs in &req.resource_spans {
            let resource: BTreeMap<_, _> = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .map(|kv| (kv.key.clone(), value(kv)))
                .collect();
            for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                out.push(Flat {
                    resource: resource.clone(),
                    trace_id: span.trace_id.clone(),
                    span_id: span.span_id.clone(),
                    parent: span.parent_span_id.clone(),
                    name: span.name.clone(),
                    kind: span.kind,
                    start: span.start_time_unix_nano,
                    end: span.end_time_unix_nano,
                    error: span.status.as_ref().is_some_and(|s| s.code == 2),
                    attrs: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), value(kv)))
                        .collect(),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.trace_id, &a.span_id).cmp(&(&b.trace_id, &b.span_id)));
    out
}

const CANARY: &str = r#"
name: test-canary
seed: 42
rate: 100
duration: 60s
rollouts: [{service: checkout, version: "2.3.0", steps: [{at: 0s, weight: 50}]}]
effects:
  - {kind: callee_errors, service: checkout, version: "2.3.0", callee: payment, at: 0s, rate: 0.5}
expect: {culprit: {service: checkout, version: "2.3.0"}, final_verdict: [rollback]}
"#;

async fn run_once(seed: u64, requests: usize, metrics: bool) -> (Vec<Flat>, Collector) {
    let (endpoint, collector) = start_collector().await;
    let topo = Arc::new(Topology::load("otel-demo").expect("topology"));
    let mut scenario = Scenario::from_yaml("canary", CANARY).expect("scenario");
    scenario.seed = seed;
    let settings = ExportSettings {
        endpoint,
        protocol: ExportProtocol::Grpc,
        batch_delay: Duration::from_millis(100),
        metrics_interval: metrics.then_some(Duration::from_secs(60)),
    };
    let t0 = 1_700_000_000_000_000_000;
    let stats = emit_burst(topo, Arc::new(scenario), settings, t0, requests)
        .await
        .expect("emit");
    let spans = flatten(&collector.traces.lock().expect("lock"));
    assert_eq!(
        spans.len() as u64,
        stats.spans,
        "every emitted span arrived"
    );
    (spans, collector)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_have_kinds_parentage_attributes_and_resources() {
    let (spans, _) = run_once(42, 300, false).await;
    assert!(spans.len() > 3000, "{} spans", spans.len());
    let by_id: HashMap<(&[u8], &[u8]), &Flat> = spans
        .iter()
        .map(|s| ((&s.trace_id[..], &s.span_id[..]), s))
        .collect();
    let mut children: HashMap<(&[u8], &[u8]), Vec<&Flat>> = HashMap::new();
    for s in &spans {
        if !s.parent.is_empty() {
            children
                .entry((&s.trace_id[..], &s.parent[..]))
                .or_default()
                .push(s);
        }
    }
    let (client, server, producer, consumer) = (
        SpanKind::Client as i32,
        SpanKind::Server as i32,
        SpanKind::Producer as i32,
        SpanKind::Consumer as i32,
    );
    for s in &spans {
        for key in [
            "service.name",
            "service.version",
            "deployment.environment.name",
            "service.instance.id",
            "k8s.deployment.name",
        ] {
            assert!(
                s.resource.contains_key(key),
                "{} lacks resource {key}",
                s.name
            );
        }
        assert_eq!(s.resource["deployment.environment.name"], "test-canary-s42");
        assert!(s.start <= s.end, "{} ends before it starts", s.name);
        let kids = children
            .get(&(&s.trace_id[..], &s.span_id[..]))
            .cloned()
            .unwrap_or_default();
        if s.kind == client && s.attrs.contains_key("db.system.name") {
            assert!(
                kids.is_empty(),
                "database client span {} has children",
                s.name
            );
            for k in ["db.system", "server.address", "db.operation.name"] {
                assert!(s.attrs.contains_key(k), "db span lacks {k}");
            }
        } else if s.kind == client {
            assert_eq!(
                kids.len(),
                1,
                "client span {} has {} children",
                s.name,
                kids.len()
            );
            let callee = kids[0];
            assert_eq!(
                callee.kind, server,
                "the child of a client span is a server span"
            );
            assert_eq!(
                s.attrs["service.peer.name"],
                callee.resource["service.name"]
            );
            assert_eq!(s.attrs["peer.service"], callee.resource["service.name"]);
            assert!(
                s.start <= callee.start && callee.end <= s.end,
                "server span inside its client span"
            );
            assert_eq!(
                s.error, callee.error,
                "the caller sees the callee's failure"
            );
        } else if s.kind == producer {
            assert!(
                !kids.is_empty() && kids.iter().all(|k| k.kind == consumer),
                "producer children are consumers"
            );
            assert_eq!(s.attrs["messaging.system"], "kafka");
            assert_eq!(s.attrs["messaging.destination.name"], "orders");
        } else if s.kind == server {
            match by_id.get(&(&s.trace_id[..], &s.parent[..])) {
                None => assert!(s.parent.is_empty(), "server span with a missing parent"),
                Some(p) => assert_eq!(p.kind, client, "a server span's parent is a client span"),
            }
            if s.attrs.contains_key("rpc.system") {
                assert_eq!(s.attrs["rpc.system"], "grpc");
                assert!(s.attrs.contains_key("rpc.service") && s.attrs.contains_key("rpc.method"));
                let code = &s.attrs["rpc.grpc.status_code"];
                assert_eq!(code != "0", s.error, "gRPC status code matches the status");
            } else {
                for k in [
                    "http.request.method",
                    "http.route",
                    "http.response.status_code",
                ] {
                    assert!(
                        s.attrs.contains_key(k),
                        "http server span {} lacks {k}",
                        s.name
                    );
                }
                assert_eq!(
                    s.name,
                    format!(
                        "{} {}",
                        s.attrs["http.request.method"], s.attrs["http.route"]
                    )
                );
            }
        } else {
            assert_eq!(s.kind, consumer, "unexpected kind {} on {}", s.kind, s.name);
            let p = by_id
                .get(&(&s.trace_id[..], &s.parent[..]))
                .expect("consumer parent");
            assert_eq!(p.kind, producer);
        }
    }
    let kinds: BTreeSet<i32> = spans.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, BTreeSet::from([server, client, producer, consumer]));
    let frontends: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.resource["service.name"] == "frontend")
        .map(|s| s.resource["service.instance.id"].as_str())
        .collect();
    assert_eq!(frontends.len(), 3, "three frontend instances");
    // The injected regression: payment fails only for calls from checkout@2.3.0.
    let payment: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.resource["service.name"] == "payment" && s.kind == server)
        .collect();
    let caller_version = |s: &Flat| {
        let client = by_id[&(&s.trace_id[..], &s.parent[..])];
        client.resource["service.version"].clone()
    };
    let failed = |v: &str| {
        let of: Vec<_> = payment.iter().filter(|s| caller_version(s) == v).collect();
        (of.iter().filter(|s| s.error).count(), of.len())
    };
    let (bad_new, n_new) = failed("2.3.0");
    let (bad_old, n_old) = failed("2.2.0");
    assert!(
        n_new > 10 && n_old > 10,
        "both versions call payment ({n_new}, {n_old})"
    );
    assert_eq!(bad_old, 0, "payment serves the old checkout without errors");
    assert!(
        bad_new * 4 > n_new,
        "payment fails about half the calls of the new checkout ({bad_new}/{n_new})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_reproduces_ids_timings_and_attributes() {
    let (a, _) = run_once(7, 60, false).await;
    let (b, _) = run_once(7, 60, false).await;
    let (c, _) = run_once(8, 60, false).await;
    assert_eq!(a, b, "same seed, same spans (ids included)");
    assert_ne!(a, c, "another seed, other traffic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_duration_histograms_are_exported_per_resource() {
    let (_, collector) = run_once(3, 50, true).await;
    let metrics = collector.metrics.lock().expect("lock");
    let mut seen = BTreeMap::new();
    for rm in metrics.iter().flat_map(|r| &r.resource_metrics) {
        let service = rm
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(value)
            .unwrap_or_default();
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            seen.insert(m.name.clone(), service.clone());
        }
    }
    assert!(
        seen.contains_key("http.server.request.duration"),
        "{seen:?}"
    );
    assert!(seen.contains_key("rpc.server.duration"), "{seen:?}");
}
