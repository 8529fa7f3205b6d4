//! Real clients against the real receivers: the Rust `opentelemetry-otlp` exporter and the
//! Python SDK (gRPC and HTTP/protobuf) send spans of two versions of a service and the
//! queue receives exactly those; the shared SDK captures are accepted as-is; a full queue
//! answers retryably and a retrying client loses nothing.

mod receiver_support;
mod shared_data;

use bytes::Bytes;
use opentelemetry::trace::{Span as _, SpanKind as OtelKind, Status, Tracer, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use receiver_support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use verdict::model::{SpanKind, SpanRecord};
use verdict::receiver::grpc::{METRICS_PATH, TRACES_PATH};
use verdict::receiver::loadgen::client::{RawOtlpClient, SendError};
use verdict::receiver::metrics::{RefusalReason, Transport};

const PER_VERSION: usize = 12;

/// (version, kind) -> (spans, errors) for one service.
fn tally(spans: &[SpanRecord], service: &str) -> BTreeMap<(String, &'static str), (usize, usize)> {
    let mut m = BTreeMap::new();
    for s in spans.iter().filter(|s| s.resource.service == service) {
        let e = m
            .entry((s.resource.version.to_string(), s.kind.as_str()))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 += s.error as usize;
    }
    m
}

/// What every client sends: per version, PER_VERSION server spans (every 4th an error) and
/// PER_VERSION client spans without error.
fn expected() -> BTreeMap<(String, &'static str), (usize, usize)> {
    let errors = PER_VERSION.div_ceil(4);
    let mut m = BTreeMap::new();
    for v in ["1.0.0", "2.0.0"] {
        m.insert(
            (v.to_string(), SpanKind::Server.as_str()),
            (PER_VERSION, errors),
        );
        m.insert((v.to_string(), SpanKind::Client.as_str()), (PER_VERSION, 0));
    }
    m
}

/// Sends with the Rust SDK (simple processor: one export per span, on this blocking thread).
fn rust_sdk_send(exporters: Vec<(SpanExporter, &'static str)>, service: &'static str) {
    for (exporter, version) in exporters {
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service)
            .with_attribute(KeyValue::new("service.version", version))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("verdict-test");
        for i in 0..PER_VERSION {
            let mut server = tracer
                .span_builder("GET /cart")
                .with_kind(OtelKind::Server)
                .start(&tracer);
            if i % 4 == 0 {
                server.set_status(Status::error("boom"));
            }
            server.end();
            tracer
                .span_builder("SELECT")
                .with_kind(OtelKind::Client)
                .start(&tracer)
                .end();
        }
        provider.force_flush().expect("flush");
        provider.shutdown().expect("shutdown");
    }
}

async fn wait_for_spans(h: &mut Harness, service: &str, want: usize) -> Vec<SpanRecord> {
    let mut got = Vec::new();
    for _ in 0..200 {
        got.extend(h.drain_spans());
        if got.iter().filter(|s| s.resource.service == service).count() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_otlp_exporter_over_grpc_and_http() {
    let mut h = start(|_| {}).await;
    let grpc = |_| {
        SpanExporter::builder()
            .with_tonic()
            .with_endpoint(h.grpc_url())
            .build()
            .unwrap()
    };
    let exporters = vec![(grpc(()), "1.0.0"), (grpc(()), "2.0.0")];
    tokio::task::spawn_blocking(move || rust_sdk_send(exporters, "cart-grpc"))
        .await
        .unwrap();
    let http = |_| {
        SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(h.http_url("/v1/traces"))
            .build()
            .unwrap()
    };
    let exporters = vec![(http(()), "1.0.0"), (http(()), "2.0.0")];
    tokio::task::spawn_blocking(move || rust_sdk_send(exporters, "cart-http"))
        .await
        .unwrap();
    let spans = wait_for_spans(&mut h, "cart-http", 4 * PER_VERSION).await;
    assert_eq!(tally(&spans, "cart-grpc"), expected());
    assert_eq!(tally(&spans, "cart-http"), expected());
    h.stop().await;
}

fn python_send(protocol: &str, endpoint: &str, service: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/send_spans.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([protocol, endpoint, service, &PER_VERSION.to_string()])
        .output()
        .expect("python3 runs (scripts/ensure-test-deps.sh installs the SDK)");
    assert!(
        out.status.success(),
        "python {protocol}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_grpc_and_http() {
    let deps = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ensure-test-deps.sh");
    assert!(
        std::process::Command::new("bash")
            .arg(deps)
            .status()
            .unwrap()
            .success(),
        "test dependencies"
    );
    let mut h = start(|_| {}).await;
    let (grpc, http) = (h.grpc_url(), format!("http://{}", h.http));
    tokio::task::spawn_blocking(move || {
        python_send("grpc", &grpc, "py-grpc");
        python_send("http", &http, "py-http");
    })
    .await
    .unwrap();
    let spans = wait_for_spans(&mut h, "py-http", 4 * PER_VERSION).await;
    assert_eq!(tally(&spans, "py-grpc"), expected());
    assert_eq!(tally(&spans, "py-http"), expected());
    h.stop().await;
}

fn captures(sub: &str, suffix: &str) -> Vec<PathBuf> {
    let dir = shared_data::dir("sdk-captures").join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_captures_are_accepted_as_sent() {
    let h = start(|_| {}).await;
    let mut grpc = RawOtlpClient::connect(&h.grpc_url()).await.unwrap();
    let http = reqwest::Client::new();
    for (sub, path, grpc_path) in [
        ("traces", "/v1/traces", TRACES_PATH),
        ("metrics", "/v1/metrics", METRICS_PATH),
    ] {
        for f in captures(sub, ".pb") {
            let body = std::fs::read(&f).unwrap();
            grpc.call(grpc_path, Bytes::from(body.clone()))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let r = http
                .post(h.http_url(path))
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", f.display());
            assert!(
                r.bytes().await.unwrap().is_empty(),
                "{}: no partial success",
                f.display()
            );
        }
        for f in captures(sub, ".otlp.json") {
            let r = http
                .post(h.http_url(path))
                .header("content-type", "application/json")
                .body(std::fs::read(&f).unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", f.display());
            assert_eq!(r.text().await.unwrap(), "{}", "{}", f.display());
        }
    }
    for t in [Transport::Grpc, Transport::Http] {
        assert_eq!(
            h.metrics.items(
                t,
                verdict::receiver::metrics::SignalKind::Traces,
                "rejected"
            ),
            0
        );
        assert!(
            h.metrics.items(
                t,
                verdict::receiver::metrics::SignalKind::Traces,
                "accepted"
            ) >= 16
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_retryable_and_a_retrying_client_loses_nothing() {
    let mut h = start(|c| c.queue_capacity = 100).await;
    // HTTP: a full queue answers 429 with Retry-After.
    let fill = encode(&request(svc("fill", "1"), (1..=100).map(span).collect()));
    let http = reqwest::Client::new();
    let post = || {
        http.post(h.http_url("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(fill.clone())
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 200);
    let refused = post().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(h.drain_spans().len(), 100);

    // gRPC: 40 batches of 50 spans into a queue of 100 drained slowly; the client retries.
    let (queue, mut rx) = (
        h.queue.clone(),
        std::mem::replace(&mut h.rx, verdict::receiver::queue::IngestQueue::new(1).1),
    );
    let consumer = tokio::spawn(async move {
        let mut ids = std::collections::HashSet::new();
        while ids.len() < 2000 {
            let Some(item) = rx.recv().await else { break };
            tokio::time::sleep(Duration::from_millis(2)).await;
            queue.release(item.len());
            if let verdict::model::IngestItem::Spans(b) = item {
                ids.extend(b.spans.iter().map(|s| s.trace_id));
            }
        }
        ids.len()
    });
    let mut client = RawOtlpClient::connect(&h.grpc_url()).await.unwrap();
    let mut retries = 0;
    for b in 0..40u32 {
        let spans = (0..50u32).map(|i| {
            let mut s = span(1);
            s.trace_id = [(b * 50 + i).to_be_bytes().to_vec(), vec![7; 12]].concat();
            s
        });
        let body = Bytes::from(encode(&request(svc("retry", "1"), spans.collect())));
        loop {
            match client.export_traces(body.clone()).await {
                Ok(rejected) => break assert_eq!(rejected, 0),
                Err(SendError::Retryable(_)) => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(SendError::Failed(s)) => panic!("not retryable: {s:?}"),
            }
        }
    }
    let delivered = tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivered, 2000, "every span arrived exactly once");
    assert!(retries > 0, "the queue was full at least once");
    assert_eq!(
        h.metrics
            .refusals(Transport::Grpc, RefusalReason::QueueFull),
        retries
    );
    h.stop().await;
}
