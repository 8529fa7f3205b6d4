//! Decode + normalize per span of a realistic 512-span OTLP trace export (about 560 bytes
//! per span, 10-11 attributes per span, 4 resources), comparing verdict's zero-copy
//! wire decoder with (a) a full `opentelemetry-proto` prost decode and (b) a prost decode
//! into trimmed message types that keep only the fields analysis reads.
//!
//! Run: `cargo bench --bench decode`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use std::hint::black_box;
use verdict::receiver::decode::decode_traces_proto;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const NOW: u64 = 1_800_000_000_000_000_000;
const SPANS: usize = 512;
const RESOURCES: usize = 4;

fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        key_strindex: 0,
    }
}

/// Instrumentation detail most spans carry (and analysis skips).
fn code(n: usize) -> KeyValue {
    s(
        "code.function.name",
        &format!(
            "github.com/example/shop/internal/handlers.(*Server).Handle{}",
            n % 7
        ),
    )
}

fn s(key: &str, v: &str) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, Value::IntValue(v))
}

fn resource(r: usize) -> Resource {
    let svc = ["frontend", "checkout", "cart", "payment"][r % 4];
    Resource {
        attributes: vec![
            s("service.name", svc),
            s("service.version", &format!("1.{r}.0")),
            s("service.instance.id", &format!("{svc}-7d9f8c6b5-x{r}k2p")),
            s("deployment.environment.name", "production"),
            s("k8s.deployment.name", svc),
            s("k8s.pod.name", &format!("{svc}-7d9f8c6b5-x{r}k2p")),
            s("k8s.namespace.name", "shop"),
            s("host.name", &format!("node-{r}.eu-west-1.compute.internal")),
            s("telemetry.sdk.name", "opentelemetry"),
            s("telemetry.sdk.language", "go"),
            s("telemetry.sdk.version", "1.32.0"),
        ],
        ..Default::default()
    }
}

fn ids(n: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let x = (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let t = [x.to_le_bytes(), (!x).to_le_bytes()].concat();
    (
        (t),
        (x ^ 0x55).to_le_bytes().to_vec(),
        (x ^ 0xaa).to_le_bytes().to_vec(),
    )
}

/// An HTTP server span: route, method, status, URL, client and network attributes.
fn http_server(n: usize) -> Span {
    let (t, sid, p) = ids(n);
    let route = [
        "/api/cart",
        "/api/products/{id}",
        "/api/checkout",
        "/api/recommendations",
    ][n % 4];
    Span {
        trace_id: t,
        span_id: sid,
        parent_span_id: p,
        name: format!("GET {route}"),
        kind: 2,
        start_time_unix_nano: NOW - 5_000_000 - n as u64,
        end_time_unix_nano: NOW - n as u64,
        attributes: vec![
            s("http.request.method", "GET"),
            s("http.route", route),
            i("http.response.status_code", if n % 50 == 0 { 503 } else { 200 }),
            s("url.path", &route.replace("{id}", &format!("OLJCESPC7Z{n:04}"))),
            s("url.scheme", "http"),
            s("server.address", "frontend.shop.svc.cluster.local"),
            i("server.port", 8080),
            s("client.address", "10.42.3.17"),
            s("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"),
            s("network.protocol.version", "1.1"),
            code(n),
        ],
        status: Some(Status::default()),
        flags: 0x100,
        ..Default::default()
    }
}

/// A gRPC client span, with an event on some.
fn grpc_client(n: usize) -> Span {
    let (t, sid, p) = ids(n);
    let method = ["GetCart", "AddItem", "Charge", "ListProducts"][n % 4];
    Span {
        trace_id: t,
        span_id: sid,
        parent_span_id: p,
        name: format!("oteldemo.CartService/{method}"),
        kind: 3,
        start_time_unix_nano: NOW - 3_000_000 - n as u64,
        end_time_unix_nano: NOW - 1_000_000 - n as u64,
        attributes: vec![
            s("rpc.system", "grpc"),
            s("rpc.service", "oteldemo.CartService"),
            s("rpc.method", method),
            i("rpc.grpc.status_code", if n % 40 == 0 { 14 } else { 0 }),
            s("server.address", "cart.shop.svc.cluster.local"),
            i("server.port", 7070),
            s("network.peer.address", "10.42.1.9"),
            i("network.peer.port", 7070),
            s("network.transport", "tcp"),
            s("network.type", "ipv4"),
            code(n),
        ],
        events: if n % 8 == 0 {
            vec![span::Event {
                time_unix_nano: NOW - 2_000_000,
                name: "message".into(),
                attributes: vec![s("message.type", "SENT"), i("message.id", 1)],
                dropped_attributes_count: 0,
            }]
        } else {
            vec![]
        },
        status: Some(Status {
            code: if n % 40 == 0 {
                status::StatusCode::Error as i32
            } else {
                0
            },
            message: String::new(),
        }),
        flags: 0x100,
        ..Default::default()
    }
}

/// A database client span with a statement.
fn db_client(n: usize) -> Span {
    let (t, sid, p) = ids(n);
    Span {
        trace_id: t,
        span_id: sid,
        parent_span_id: p,
        name: "SELECT shop.products".into(),
        kind: 3,
        start_time_unix_nano: NOW - 2_000_000 - n as u64,
        end_time_unix_nano: NOW - 1_500_000 - n as u64,
        attributes: vec![
            s("db.system.name", "postgresql"),
            s("db.namespace", "shop"),
            s("db.operation.name", "SELECT"),
            s("db.collection.name", "products"),
            s(
                "db.query.text",
                "SELECT id, name, price FROM products WHERE id = $1 AND visible = true",
            ),
            s("server.address", "postgres.shop.svc.cluster.local"),
            i("server.port", 5432),
            s("network.peer.address", "10.42.2.4"),
            i("network.peer.port", 5432),
            s("db.response.status_code", "00000"),
            code(n),
        ],
        status: Some(Status::default()),
        flags: 0x100,
        ..Default::default()
    }
}

/// The fixture: 512 spans over 4 resources, a mix of server, gRPC client and DB spans.
fn fixture() -> ExportTraceServiceRequest {
    let per = SPANS / RESOURCES;
    let resource_spans = (0..RESOURCES)
        .map(|r| {
            let spans = (0..per)
                .map(|k| {
                    let n = r * per + k;
                    match n % 3 {
                        0 => http_server(n),
                        1 => grpc_client(n),
                        _ => db_client(n),
                    }
                })
                .collect();
            ResourceSpans {
                resource: Some(resource(r)),
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans,
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                }],
                schema_url: String::new(),
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// Trimmed message types: only the fields analysis reads, ids as zero-copy `Bytes`. This
/// is what prost-build generates for a trimmed copy of trace.proto.
mod trimmed {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "bytes", tag = "1")]
        pub trace_id: bytes::Bytes,
        #[prost(bytes = "bytes", tag = "2")]
        pub span_id: bytes::Bytes,
        #[prost(bytes = "bytes", tag = "4")]
        pub parent_span_id: bytes::Bytes,
        #[prost(string, tag = "5")]
        pub name: String,
        #[prost(int32, tag = "6")]
        pub kind: i32,
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "3")]
        pub code: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(bytes = "bytes", tag = "1")]
        pub key: bytes::Bytes,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(bytes = "bytes", tag = "1")]
        pub string_value: bytes::Bytes,
        #[prost(int64, tag = "3")]
        pub int_value: i64,
    }
}

fn bench_decode(c: &mut Criterion) {
    let body = fixture().encode_to_vec();
    let bytes = Bytes::from(body.clone());
    let mut g = c.benchmark_group("decode_traces_512");
    g.throughput(Throughput::Elements(SPANS as u64));
    eprintln!(
        "fixture: {} bytes, {} bytes/span",
        body.len(),
        body.len() / SPANS
    );
    g.bench_with_input(
        BenchmarkId::new("verdict_wire_decode_normalize", SPANS),
        &body,
        |b, body| {
            b.iter(|| {
                let out = decode_traces_proto(black_box(body), NOW).expect("fixture decodes");
                assert_eq!(out.spans.len(), SPANS);
                out
            })
        },
    );
    g.bench_with_input(
        BenchmarkId::new("prost_full_opentelemetry_proto", SPANS),
        &body,
        |b, body| {
            b.iter(|| {
                ExportTraceServiceRequest::decode(black_box(&body[..])).expect("fixture decodes")
            })
        },
    );
    g.bench_with_input(
        BenchmarkId::new("prost_trimmed_types_bytes", SPANS),
        &bytes,
        |b, bytes| {
            b.iter(|| trimmed::Request::decode(black_box(bytes.clone())).expect("fixture decodes"))
        },
    );
    g.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
