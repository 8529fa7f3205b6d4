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
    /// Callees per service: 0 lets any service call any other (the worst case for the
    /// graph and the judge: every pair of versions is an edge); K gives each service K
    /// fixed callees, as in a real call graph.
    pub fanout: usize,
    /// Share of each service's spans from its first version (the running one), the rest
    /// spread evenly over the others (canaries); `None`: all versions alike.
    pub stable_share: Option<f64>,
}

impl Shape {
    /// A caller and its callee.
    fn call_ends(&self, rng: &mut StdRng) -> (usize, usize) {
        let caller = rng.random_range(0..self.services);
        if self.fanout == 0 || self.services < 2 {
            return (caller, rng.random_range(0..self.services));
        }
        // K callees spread around the ring of services, never the caller itself.
        let k = self.fanout.min(self.services - 1);
        let step = ((self.services - 1) / k).max(1);
        let j = rng.random_range(0..k);
        (caller, (caller + 1 + j * step) % self.services)
    }

    /// The fleet-like shape of the tests: `services` each calling 4 fixed callees, 90 % of
    /// each service's spans from its first version.
    #[cfg(test)]
    pub(super) fn fleet_for_tests(services: usize) -> Self {
        Shape {
            services,
            versions: 3,
            operations: 10,
            spans_per_batch: 512,
            error_rate: 0.01,
            fanout: 4,
            stable_share: Some(0.9),
        }
    }

    /// The version of a span's service.
    fn version(&self, rng: &mut StdRng) -> usize {
        match self.stable_share {
            Some(p) if self.versions > 1 => {
                if rng.random_bool(p.clamp(0.0, 1.0)) {
                    0
                } else {
                    rng.random_range(1..self.versions)
                }
            }
            _ => rng.random_range(0..self.versions),
        }
    }
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
    // OK rather than UNSET: both encode in two bytes, so a resend can flip it in place.
    let status = if c.failed {
        status::StatusCode::Error
    } else {
        status::StatusCode::Ok
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
/// timestamps just before `now`: both spans of every call are in it, so it holds about as
/// many resources as spans (the worst case for everything done once per resource).
pub fn encode_batch(shape: &Shape, env: &str, seed: u64, now: u64) -> EncodedBatch {
    let mut rng = StdRng::seed_from_u64(seed);
    let latency = server_latency();
    let mut spans = CycleSpans::default();
    for _ in 0..shape.spans_per_batch / 2 {
        add_call(shape, &mut rng, &latency, now, &mut spans);
    }
    let by_resource = std::mem::take(&mut spans.by_resource);
    encode_request(by_resource, &spans, env, shape.error_rate)
}

/// A (service, version) resource of the load.
pub(super) type ResourceKey = (usize, usize);

/// Spans of a request (or of a whole cycle of requests) and what finding their trace ids
/// and end times in the encoded bodies needs.
#[derive(Default)]
pub(super) struct CycleSpans {
    pub by_resource: BTreeMap<ResourceKey, Vec<Span>>,
    pub trace_ids: std::collections::HashSet<Vec<u8>>,
    /// End time -> (start time, client span) of every span.
    pub ends: std::collections::HashMap<u64, (u64, bool)>,
}

/// Draws one call and adds its client span (to the caller's resource) and its server span
/// (to the callee's) to `spans`, with their trace id and end times.
pub(super) fn add_call(
    shape: &Shape,
    rng: &mut StdRng,
    latency: &LogNormal<f64>,
    now: u64,
    spans: &mut CycleSpans,
) {
    let (caller, callee) = shape.call_ends(rng);
    let (cv, sv) = (shape.version(rng), shape.version(rng));
    let server_ns = latency.sample(rng) as u64;
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
    spans.trace_ids.insert(call.trace_id.clone());
    let route = format!("/api/v1/op{:02}", call.op);
    for (server, key) in [(false, (caller, cv)), (true, (callee, sv))] {
        let s = span_of(&call, server, &route);
        spans
            .ends
            .insert(s.end_time_unix_nano, (s.start_time_unix_nano, !server));
        spans.by_resource.entry(key).or_default().push(s);
    }
}

/// Encodes one request of the given resources' spans and locates what each send rewrites.
pub(super) fn encode_request(
    by_resource: BTreeMap<ResourceKey, Vec<Span>>,
    spans: &CycleSpans,
    env: &str,
    error_rate: f64,
) -> EncodedBatch {
    let n = by_resource.values().map(Vec::len).sum();
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
    EncodedBatch {
        trace_id_offsets: trace_id_offsets(&body, &spans.trace_ids),
        end_times: end_time_offsets(&body, &spans.ends),
        outcomes: outcome_offsets(&body),
        error_ppm: (error_rate * 1e6) as u64,
        spans: n,
        body,
    }
}

/// One pre-encoded request and where its spans' trace ids and end times sit in it.
pub struct EncodedBatch {
    pub body: Vec<u8>,
    pub trace_id_offsets: Vec<usize>,
    /// Offset of each span's `end_time_unix_nano` value, with the span's start and whether
    /// it is the client span of its call.
    pub end_times: Vec<(usize, u64, bool)>,
    /// Per span, the offsets of its HTTP status code's varint and of its status code byte.
    pub outcomes: Vec<(usize, usize)>,
    /// Failed spans per million, drawn afresh per send.
    pub error_ppm: u64,
    /// Spans in the request.
    pub spans: usize,
}

impl EncodedBatch {
    /// A copy whose trace ids are all changed by `n` (both spans of a call keep one trace
    /// id, so they still pair), and whose span durations are drawn afresh from one latency
    /// distribution for every span and send: resending it is new traffic, not a retried
    /// duplicate, and every version serves the same latency distribution (reusing the
    /// encoded durations would give each version its own few values, and the judge would
    /// rightly tell versions apart).
    pub fn renumbered(&self, n: u64) -> Vec<u8> {
        self.renumbered_as(n, n)
    }

    /// As [`Self::renumbered`], with the trace ids changed by `ids` and the durations and
    /// failures drawn by `n`: the requests of one cycle of [`super::cycle`] share `ids`, so
    /// calls whose two spans sit in different requests of the cycle still pair.
    pub fn renumbered_as(&self, ids: u64, n: u64) -> Vec<u8> {
        let mut body = self.body.clone();
        let mix = ids.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes();
        for &at in &self.trace_id_offsets {
            for (b, m) in body[at..at + 8].iter_mut().zip(mix) {
                *b ^= m;
            }
        }
        let table = latency_table();
        for &(at, start, client) in &self.end_times {
            let h = splitmix(n ^ (at as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
            let mut dur = table[(h as usize) % table.len()];
            if client {
                dur += 200_000 + (h >> 32) % 300_000;
            }
            body[at..at + 8].copy_from_slice(&(start + dur).to_le_bytes());
        }
        for &(http, status) in &self.outcomes {
            let h = splitmix(n ^ (status as u64).wrapping_mul(0xA076_1D64_78BD_642F));
            let failed = h % 1_000_000 < self.error_ppm;
            // 500 and 200 are both two-byte varints; ERROR is 2, OK 1.
            let code: [u8; 2] = if failed { [0xF4, 0x03] } else { [0xC8, 0x01] };
            body[http..http + 2].copy_from_slice(&code);
            body[status] = if failed { 2 } else { 1 };
        }
        body
    }
}

/// Per span, where its `http.response.status_code` value (two varint bytes) and its
/// status code byte sit (the attribute comes first within a span); empty when the two
/// lists do not line up.
fn outcome_offsets(body: &[u8]) -> Vec<(usize, usize)> {
    let key = b"http.response.status_code";
    let http: Vec<usize> = (0..body.len().saturating_sub(key.len() + 6))
        .filter(|&i| {
            body[i..].starts_with(key) && body[i + key.len()..].starts_with(&[0x12, 0x03, 0x18])
        })
        .map(|i| i + key.len() + 3)
        .collect();
    let status: Vec<usize> = (0..body.len().saturating_sub(4))
        .filter(|&i| body[i..i + 3] == [0x7A, 0x02, 0x18] && matches!(body[i + 3], 1 | 2))
        .map(|i| i + 3)
        .collect();
    if http.len() != status.len() || http.iter().zip(&status).any(|(h, s)| h >= s) {
        return Vec::new();
    }
    http.into_iter().zip(status).collect()
}

/// 4,096 draws of the load's server latency (log-normal, median 3.3 ms), shared by all.
fn latency_table() -> &'static [u64] {
    static TABLE: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(0x1a7e);
        let d = server_latency();
        (0..4096).map(|_| d.sample(&mut rng) as u64).collect()
    })
}

/// The server latency every version of the load has.
pub(super) fn server_latency() -> LogNormal<f64> {
    LogNormal::new(15.0, 0.6).unwrap_or_else(|_| unreachable!("constant parameters are valid"))
}

/// A 64-bit mixing function (SplitMix64's finalizer).
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Offsets of the 8 bytes after each `end_time_unix_nano` key (field 8, fixed64) whose
/// value is one of `ends`' keys, with that span's start and whether it is a client span.
fn end_time_offsets(
    body: &[u8],
    ends: &std::collections::HashMap<u64, (u64, bool)>,
) -> Vec<(usize, u64, bool)> {
    (0..body.len().saturating_sub(9))
        .filter(|&i| body[i] == 0x41)
        .filter_map(|i| {
            let v = u64::from_le_bytes(body[i + 1..i + 9].try_into().ok()?);
            let (start, client) = *ends.get(&v)?;
            (v > start).then_some((i + 1, start, client))
        })
        .collect()
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
            fanout: 0,
            stable_share: None,
        };
        let now = 1_800_000_000_000_000_000;
        let batch = encode_batch(&shape, "prod", 7, now);
        assert_eq!(batch.trace_id_offsets.len(), 512, "one trace id per span");
        assert_eq!(batch.end_times.len(), 512, "one end time per span");
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
        // Every duration is drawn afresh per send from the one distribution.
        let again =
            crate::receiver::decode::decode_traces_proto(&batch.renumbered(4), now).unwrap();
        let durations = |d: &crate::receiver::decode::TraceDecode| {
            d.spans
                .iter()
                .map(|s| s.end_unix_nano - s.start_unix_nano)
                .collect::<Vec<_>>()
        };
        let (r3, r4) = (durations(&d), durations(&again));
        let same = (0..512).filter(|&i| r3[i] == r4[i]).count();
        assert!(same < 5, "{same} durations repeat between sends");
        let mut all: Vec<u64> = (0..64u64)
            .flat_map(|n| {
                let d = crate::receiver::decode::decode_traces_proto(&batch.renumbered(n), now);
                d.unwrap()
                    .spans
                    .iter()
                    .filter(|s| s.kind == crate::model::SpanKind::Server)
                    .map(|s| s.end_unix_nano - s.start_unix_nano)
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_unstable();
        let median = all[all.len() / 2] as f64;
        assert!(
            (2.9e6..3.7e6).contains(&median),
            "median server latency {median} ns"
        );
        // Failures too are drawn per send, at the shape's rate, status and HTTP code alike.
        assert_eq!(batch.outcomes.len(), 512);
        let (mut failed, mut total) = (0, 0);
        for n in 0..200u64 {
            let d = crate::receiver::decode::decode_traces_proto(&batch.renumbered(n), now);
            for s in d.unwrap().spans {
                total += 1;
                failed += s.error as u32;
            }
        }
        let rate = failed as f64 / total as f64;
        assert!((0.007..0.013).contains(&rate), "error rate {rate}");
    }

    /// The fleet-like shape: each service calls only its K callees, and its first version
    /// serves the stated share.
    #[test]
    fn fleet_shape_has_fixed_callees_and_a_dominant_version() {
        let shape = Shape::fleet_for_tests(100);
        let now = 1_800_000_000_000_000_000;
        let mut callees: std::collections::BTreeMap<u64, std::collections::BTreeSet<u64>> =
            Default::default();
        let (mut first, mut total) = (0, 0);
        for seed in 0..20 {
            let body = encode_batch(&shape, "prod", seed, now).body;
            let d = crate::receiver::decode::decode_traces_proto(&body, now).unwrap();
            let num = |n: &str| n.trim_start_matches("svc-").parse::<u64>().unwrap();
            let server_of: std::collections::HashMap<[u8; 16], u64> = d
                .spans
                .iter()
                .filter(|s| s.kind == crate::model::SpanKind::Server)
                .map(|s| (s.trace_id, num(&s.resource.service)))
                .collect();
            for s in &d.spans {
                total += 1;
                first += (s.resource.version.as_str() == "1.0.0") as u32;
                if s.kind == crate::model::SpanKind::Client {
                    let callee = server_of[&s.trace_id];
                    callees
                        .entry(num(&s.resource.service))
                        .or_default()
                        .insert(callee);
                }
            }
        }
        assert!(callees.len() > 90, "{} callers", callees.len());
        for (caller, set) in &callees {
            assert!(set.len() <= 4, "svc-{caller} calls {set:?}");
            assert!(!set.contains(caller), "svc-{caller} calls itself");
        }
        let share = first as f64 / total as f64;
        assert!(
            (0.88..0.92).contains(&share),
            "first version's share {share}"
        );
    }
}
