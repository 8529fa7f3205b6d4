//! Realistic pre-encoded OTLP trace batches for the load runner: client/server span pairs
//! between many service versions (so the dependency graph has pairing work), with the
//! attributes a real HTTP service exports (about 560 bytes per span).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use std::collections::BTreeMap;

/// The shape of the generated traffic.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub services: usize,
    pub versions: usize,
    pub operations: usize,
    /// Spans per request (even: client/server pairs).
    pub spans_per_batch: usize,
    /// Fraction of calls that fail (HTTP 500 on both sides).
    pub error_rate: f64,
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

fn resource(svc: usize, ver: usize, env: &str) -> Resource {
    Resource {
        attributes: vec![
            s("service.name", format!("svc-{svc:04}")),
            s("service.version", format!("1.{ver}.0")),
            s("deployment.environment.name", env),
            s(
                "service.instance.id",
                format!("svc-{svc:04}-{ver}-7d9f8c6b5-x2k4q"),
            ),
            s("telemetry.sdk.language", "rust"),
            s("telemetry.sdk.name", "opentelemetry"),
            s("telemetry.sdk.version", "0.33.0"),
        ],
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    }
}

struct Call {
    trace_id: Vec<u8>,
    client_id: [u8; 8],
    callee: usize,
    op: usize,
    start: u64,
    client_ns: u64,
    server_ns: u64,
    failed: bool,
}

fn http_attrs(route: &str, status: i64, server: bool, callee: usize) -> Vec<KeyValue> {
    let mut a = vec![
        s("http.request.method", "GET"),
        i("http.response.status_code", status),
        s("url.scheme", "http"),
        s("network.protocol.version", "1.1"),
        s(
            "server.address",
            format!("svc-{callee:04}.prod.svc.cluster.local"),
        ),
        i("server.port", 8080),
    ];
    if server {
        a.push(s("http.route", route));
        a.push(s("url.path", format!("{route}/12345")));
        a.push(s("client.address", "10.12.34.56"));
        a.push(s(
            "user_agent.original",
            "Mozilla/5.0 (X11; Linux x86_64) loadgen/1.0",
        ));
    } else {
        a.push(s(
            "url.full",
            format!("http://svc-{callee:04}.prod.svc.cluster.local:8080{route}/12345"),
        ));
    }
    a
}

fn span_of(c: &Call, server: bool, route: &str) -> Span {
    let (kind, id, parent, start, dur) = if server {
        let offset = (c.client_ns - c.server_ns) / 2;
        (
            span::SpanKind::Server,
            server_id(c),
            c.client_id.to_vec(),
            c.start + offset,
            c.server_ns,
        )
    } else {
        (
            span::SpanKind::Client,
            c.client_id.to_vec(),
            Vec::new(),
            c.start,
            c.client_ns,
        )
    };
    let status = if c.failed {
        status::StatusCode::Error
    } else {
        status::StatusCode::Unset
    };
    Span {
        trace_id: c.trace_id.clone(),
        span_id: id,
        parent_span_id: parent,
        name: format!("GET {route}"),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + dur,
        attributes: http_attrs(route, if c.failed { 500 } else { 200 }, server, c.callee),
        status: Some(Status {
            code: status as i32,
            message: String::new(),
        }),
        ..Default::default()
    }
}

fn server_id(c: &Call) -> Vec<u8> {
    let mut id = c.client_id;
    id[0] ^= 0x5a;
    id.to_vec()
}

/// Builds one encoded `ExportTraceServiceRequest` of `shape.spans_per_batch` spans with
/// timestamps just before `now`.
pub fn encode_batch(shape: &Shape, env: &str, seed: u64, now: u64) -> EncodedBatch {
    let mut rng = StdRng::seed_from_u64(seed);
    let latency =
        LogNormal::new(15.0, 0.6).unwrap_or_else(|_| unreachable!("constant parameters are valid"));
    // (service, version) -> spans of that resource.
    let mut by_resource: BTreeMap<(usize, usize), Vec<Span>> = BTreeMap::new();
    let mut trace_ids = std::collections::HashSet::new();
    for _ in 0..shape.spans_per_batch / 2 {
        let (caller, callee) = (
            rng.random_range(0..shape.services),
            rng.random_range(0..shape.services),
        );
        let (cv, sv) = (
            rng.random_range(0..shape.versions),
            rng.random_range(0..shape.versions),
        );
        let server_ns = latency.sample(&mut rng) as u64;
        let call = Call {
            trace_id: rng.random::<[u8; 16]>().to_vec(),
            client_id: rng.random::<[u8; 8]>(),
            callee,
            op: rng.random_range(0..shape.operations),
            start: now - 2_000_000_000 - rng.random_range(0..1_000_000_000),
            client_ns: server_ns + 200_000 + rng.random_range(0..300_000),
            server_ns,
            failed: rng.random_bool(shape.error_rate),
        };
        trace_ids.insert(call.trace_id.clone());
        let route = format!("/api/v1/op{:02}", call.op);
        by_resource
            .entry((caller, cv))
            .or_default()
            .push(span_of(&call, false, &route));
        by_resource
            .entry((callee, sv))
            .or_default()
            .push(span_of(&call, true, &route));
    }
    let resource_spans = by_resource
        .into_iter()
        .map(|((svc, ver), spans)| ResourceSpans {
            resource: Some(resource(svc, ver, env)),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "loadgen".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        })
        .collect();
    let body = ExportTraceServiceRequest { resource_spans }.encode_to_vec();
    let trace_id_offsets = trace_id_offsets(&body, &trace_ids);
    EncodedBatch {
        body,
        trace_id_offsets,
    }
}

/// One pre-encoded request and where its spans' trace ids sit in it.
pub struct EncodedBatch {
    pub body: Vec<u8>,
    pub trace_id_offsets: Vec<usize>,
}

impl EncodedBatch {
    /// A copy whose trace ids are all changed by `n` (both spans of a call keep one trace
    /// id, so they still pair): resending it is new traffic, not a retried duplicate.
    pub fn renumbered(&self, n: u64) -> Vec<u8> {
        let mut body = self.body.clone();
        let mix = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes();
        for &at in &self.trace_id_offsets {
            for (b, m) in body[at..at + 8].iter_mut().zip(mix) {
                *b ^= m;
            }
        }
        body
    }
}

/// Offsets of the 16 bytes after each `trace_id` key (field 1, 16 bytes long) whose value
/// is one of `ids`.
fn trace_id_offsets(body: &[u8], ids: &std::collections::HashSet<Vec<u8>>) -> Vec<usize> {
    (0..body.len().saturating_sub(17))
        .filter(|&i| body[i] == 0x0A && body[i + 1] == 16 && ids.contains(&body[i + 2..i + 18]))
        .map(|i| i + 2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_decode_to_paired_spans() {
        let shape = Shape {
            services: 50,
            versions: 3,
            operations: 10,
            spans_per_batch: 512,
            error_rate: 0.01,
        };
        let now = 1_800_000_000_000_000_000;
        let batch = encode_batch(&shape, "prod", 7, now);
        assert_eq!(batch.trace_id_offsets.len(), 512, "one trace id per span");
        let body = batch.renumbered(3);
        assert_ne!(body, batch.body);
        let per_span = body.len() / 512;
        assert!((300..900).contains(&per_span), "{per_span} bytes per span");
        let d = crate::receiver::decode::decode_traces_proto(&body, now).unwrap();
        assert_eq!(d.spans.len(), 512);
        assert_eq!(d.rejected_spans, 0);
        let servers = d
            .spans
            .iter()
            .filter(|s| s.kind == crate::model::SpanKind::Server)
            .count();
        assert_eq!(servers, 256);
        assert!(d.spans.iter().all(|s| s.timing_valid));
        let original = crate::receiver::decode::decode_traces_proto(&batch.body, now).unwrap();
        let traces = |d: &crate::receiver::decode::TraceDecode| {
            d.spans
                .iter()
                .map(|s| s.trace_id)
                .collect::<std::collections::BTreeSet<_>>()
        };
        let (a, b) = (traces(&original), traces(&d));
        assert_eq!(a.len(), 256, "a trace per call");
        assert_eq!(b.len(), 256, "renumbering keeps the pairs together");
        assert!(a.is_disjoint(&b), "and gives every call a new trace id");
    }
}
