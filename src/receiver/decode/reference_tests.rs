//! Property tests: the zero-copy wire decoder agrees with a full `opentelemetry-proto`
//! (prost) decode followed by a straightforward reference normalization, on generated
//! requests and on corrupted ones; and it never fails on input prost accepts.

use super::attrs::{resource_attrs_of, span_attrs_of};
use super::normalize;
use super::tests::NOW;
use super::*;
use crate::model::SpanKind;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use proptest::prelude::*;
use prost::Message;

/// Reference: prost-decoded request, normalized span by span with no shortcuts.
fn reference(body: &[u8], now: u64) -> Result<TraceDecode, DecodeError> {
    let req = ExportTraceServiceRequest::decode(body).map_err(|e| DecodeError::from_prost(&e))?;
    let mut out = TraceDecode::default();
    let mut scratch = String::new();
    for rs in &req.resource_spans {
        let attrs = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes);
        let res = normalize::resource(&resource_attrs_of(attrs), &mut out.stats)?;
        for sp in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            let ids = (
                <[u8; 16]>::try_from(&sp.trace_id[..])
                    .ok()
                    .filter(|t| *t != [0; 16]),
                <[u8; 8]>::try_from(&sp.span_id[..])
                    .ok()
                    .filter(|s| *s != [0; 8]),
                match sp.parent_span_id.len() {
                    0 => Some([0; 8]),
                    _ => <[u8; 8]>::try_from(&sp.parent_span_id[..]).ok(),
                },
            );
            let (Some(trace_id), Some(span_id), Some(parent_span_id)) = ids else {
                out.rejected_spans += 1;
                continue;
            };
            let a = span_attrs_of(&sp.attributes);
            let kind = SpanKind::from_i32(sp.kind);
            let st = &mut out.stats;
            let operation = normalize::operation(&a, sp.name.as_bytes(), &mut scratch, st)?;
            let peer = normalize::peer(kind, &a, &mut scratch, st)?;
            let timing_valid =
                normalize::timing_valid(sp.start_time_unix_nano, sp.end_time_unix_nano, now);
            st.invalid_timing += u64::from(!timing_valid);
            st.missing_service += u64::from(res.missing_service);
            let code = sp.status.as_ref().map_or(0, |s| s.code);
            out.spans.push(crate::model::SpanRecord {
                resource: res.resource.clone(),
                trace_id,
                span_id,
                parent_span_id,
                operation,
                kind,
                start_unix_nano: sp.start_time_unix_nano,
                end_unix_nano: sp.end_time_unix_nano,
                error: normalize::is_error(kind, code, &a),
                timing_valid,
                peer,
            });
        }
    }
    Ok(out)
}

const RESOURCE_KEYS: &[&str] = &[
    "service.name",
    "service.version",
    "deployment.environment.name",
    "deployment.environment",
    "service.instance.id",
    "k8s.pod.name",
    "k8s.deployment.name",
    "host.name",
];

const SPAN_KEYS: &[&str] = &[
    "http.route",
    "http.request.method",
    "http.method",
    "http.response.status_code",
    "http.status_code",
    "rpc.service",
    "rpc.method",
    "rpc.grpc.status_code",
    "rpc.response.status_code",
    "service.peer.name",
    "peer.service",
    "db.system.name",
    "db.system",
    "db.namespace",
    "db.name",
    "server.address",
    "net.peer.name",
    "messaging.system",
    "messaging.destination.name",
    "messaging.destination",
    "error.type",
    "user_agent.original",
    "thread.id",
];

fn any_value() -> impl Strategy<Value = Option<AnyValue>> {
    let v = prop_oneof![
        4 => "[a-z/{}.é _]{0,12}".prop_map(Value::StringValue),
        1 => "[a-z]{250,300}".prop_map(Value::StringValue),
        2 => prop_oneof![Just(200i64), Just(404), Just(503), 0i64..17, any::<i64>()]
            .prop_map(Value::IntValue),
        1 => prop_oneof![Just("500"), Just("UNAVAILABLE"), Just("ok")]
            .prop_map(|s| Value::StringValue(s.into())),
        1 => any::<bool>().prop_map(Value::BoolValue),
        1 => any::<f64>().prop_map(Value::DoubleValue),
        1 => proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::BytesValue),
    ];
    prop_oneof![8 => v.prop_map(|v| Some(AnyValue { value: Some(v) })), 1 => Just(None)]
}

fn key_values(keys: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<KeyValue>> {
    let kv = (proptest::sample::select(keys), any_value()).prop_map(|(k, value)| KeyValue {
        key: k.into(),
        value,
        key_strindex: 0,
    });
    proptest::collection::vec(kv, 0..max)
}

fn id(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => proptest::collection::vec(any::<u8>(), len),
        1 => Just(vec![0u8; len]),
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ]
}

fn gen_span() -> impl Strategy<Value = Span> {
    let times = (
        NOW - 90_000_000_000_000..NOW + 2_000_000_000_000,
        0u64..5_000_000_000,
    );
    (
        (
            id(16),
            id(8),
            prop_oneof![Just(vec![]), id(8)],
            "[A-Za-z /]{0,20}",
            0i32..7,
        ),
        (times, key_values(SPAN_KEYS, 10), 0i32..3, any::<bool>()),
    )
        .prop_map(
            |((t, s, p, name, kind), ((start, dur), attributes, code, events))| Span {
                trace_id: t,
                span_id: s,
                parent_span_id: p,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: if code == 1 && dur % 7 == 0 {
                    start - 1
                } else {
                    start + dur
                },
                attributes,
                events: if events {
                    vec![span::Event {
                        name: "exception".into(),
                        ..Default::default()
                    }]
                } else {
                    vec![]
                },
                status: Some(Status {
                    code,
                    message: String::new(),
                }),
                ..Default::default()
            },
        )
}

fn gen_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let rs = (
        key_values(RESOURCE_KEYS, 8),
        proptest::collection::vec(proptest::collection::vec(gen_span(), 0..6), 0..3),
    )
        .prop_map(|(attributes, scopes)| ResourceSpans {
            resource: Some(PbResource {
                attributes,
                ..Default::default()
            }),
            scope_spans: scopes
                .into_iter()
                .map(|spans| ScopeSpans {
                    spans,
                    ..Default::default()
                })
                .collect(),
            schema_url: String::new(),
        });
    proptest::collection::vec(rs, 0..4)
        .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

fn agree(body: &[u8]) -> Result<(), TestCaseError> {
    let fast = decode_traces_proto(body, NOW);
    match reference(body, NOW) {
        Ok(slow) => {
            let fast =
                fast.map_err(|e| TestCaseError::fail(format!("wire decoder failed: {e}")))?;
            prop_assert_eq!(&fast.spans, &slow.spans);
            prop_assert_eq!(fast.rejected_spans, slow.rejected_spans);
            prop_assert_eq!(fast.stats.invalid_timing, slow.stats.invalid_timing);
            prop_assert_eq!(fast.stats.missing_service, slow.stats.missing_service);
        }
        // prost failed (corrupt input): the wire decoder may still accept what it reads,
        // but must not panic.
        Err(_) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn wire_decoder_matches_prost_reference(req in gen_request()) {
        agree(&req.encode_to_vec())?;
    }

    #[test]
    fn corrupted_requests_never_panic_and_agree_when_prost_accepts(
        req in gen_request(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut body = req.encode_to_vec();
        if body.is_empty() {
            return Ok(());
        }
        for (at, byte) in flips {
            let i = at.index(body.len());
            body[i] = byte;
        }
        agree(&body)?;
        let end = cut.index(body.len());
        agree(&body[..end])?;
    }

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        agree(&body)?;
    }
}
