//! Shared harness of the receiver tests: a real receiver pair on 127.0.0.1:0 with a real
//! ingest queue, request builders, and raw gRPC / HTTP senders.
#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use verdict::clock::SystemClock;
use verdict::model::{IngestItem, SpanRecord};
use verdict::receiver::decode::DeltaConverter;
use verdict::receiver::queue::{IngestQueue, IngestReceiver};
use verdict::receiver::{ReceiverConfig, ReceiverHandles, ReceiverMetrics};

pub struct Harness {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub queue: Arc<IngestQueue>,
    pub rx: IngestReceiver,
    pub metrics: Arc<ReceiverMetrics>,
    shutdown: CancellationToken,
    handles: ReceiverHandles,
}

/// Starts both receivers on port 0 with `tweak` applied to the default configuration.
pub async fn start(tweak: impl FnOnce(&mut ReceiverConfig)) -> Harness {
    let mut cfg = ReceiverConfig {
        grpc_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        ..Default::default()
    };
    tweak(&mut cfg);
    let (queue, rx) = IngestQueue::new(cfg.queue_capacity);
    let metrics = Arc::new(ReceiverMetrics::new());
    let deltas = Arc::new(DeltaConverter::new(1000, Duration::from_secs(600)));
    let shutdown = CancellationToken::new();
    let handles = verdict::receiver::spawn(
        &cfg,
        queue.clone(),
        metrics.clone(),
        deltas,
        Arc::new(SystemClock),
        shutdown.clone(),
    )
    .await
    .expect("receivers start");
    Harness {
        grpc: handles.grpc_addr,
        http: handles.http_addr,
        queue,
        rx,
        metrics,
        shutdown,
        handles,
    }
}

impl Harness {
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Every span queued so far (freeing the queue's capacity).
    pub fn drain_spans(&mut self) -> Vec<SpanRecord> {
        let mut out = Vec::new();
        while let Some(item) = self.rx.try_recv() {
            self.queue.release(item.len());
            if let IngestItem::Spans(b) = item {
                out.extend(b.spans);
            }
        }
        out
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handles.join())
            .await
            .expect("receivers stop");
    }
}

pub fn now_ns() -> u64 {
    verdict::clock::Clock::now(&SystemClock)
}

pub fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// A valid server span ending now.
pub fn span(n: u8) -> Span {
    let end = now_ns();
    Span {
        trace_id: vec![n.max(1); 16],
        span_id: vec![n.max(1); 8],
        name: "GET /x".into(),
        kind: 2,
        start_time_unix_nano: end - 5_000_000,
        end_time_unix_nano: end,
        ..Default::default()
    }
}

/// A request with one resource (attributes as given) holding `spans`.
pub fn request(attrs: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: attrs,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

pub fn svc(name: &str, version: &str) -> Vec<KeyValue> {
    vec![kv("service.name", name), kv("service.version", version)]
}

pub fn encode(r: &ExportTraceServiceRequest) -> Vec<u8> {
    r.encode_to_vec()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A gRPC length-prefixed message.
pub fn grpc_frame(compressed: bool, msg: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(compressed as u8);
    b.put_u32(msg.len() as u32);
    b.extend_from_slice(msg);
    b.freeze()
}

/// What a raw gRPC call answered: HTTP status, grpc-status (headers or absent when it is in
/// trailers, i.e. a normal answer), and whether status details were attached.
#[derive(Debug)]
pub struct GrpcAnswer {
    pub http: u16,
    pub code: Option<i32>,
    pub details: bool,
}

/// Sends a raw gRPC request over HTTP/2 (prior knowledge) with the given headers.
pub async fn grpc_raw(
    addr: SocketAddr,
    path: &str,
    encoding: Option<&str>,
    body: Bytes,
) -> GrpcAnswer {
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut req = client
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(e) = encoding {
        req = req.header("grpc-encoding", e);
    }
    let resp = req.body(body).send().await.expect("gRPC request");
    let code = resp
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let details = resp.headers().contains_key("grpc-status-details-bin");
    GrpcAnswer {
        http: resp.status().as_u16(),
        code,
        details,
    }
}
