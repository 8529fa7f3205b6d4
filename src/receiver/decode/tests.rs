//! Bad-input classes owned by decoding (reliability.md 1, 2, 10, 11, 12, 13, 14, 16) over
//! the protobuf and JSON paths, built with the `opentelemetry-proto` types real clients use.

use super::*;
use crate::model::SpanKind;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

pub(crate) const NOW: u64 = 1_800_000_000_000_000_000;

pub(crate) fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        key_strindex: 0,
    }
}

pub(crate) fn s(key: &str, v: &str) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

fn span(i: u8) -> Span {
    Span {
        trace_id: vec![i; 16],
        span_id: vec![i; 8],
        name: format!("span-{i}"),
        kind: 2,
        start_time_unix_nano: NOW - 2_000_000,
        end_time_unix_nano: NOW - 1_000_000,
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(PbResource {
                attributes: resource,
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

fn svc() -> Vec<KeyValue> {
    vec![s("service.name", "checkout"), s("service.version", "1.2.3")]
}

/// Decodes over protobuf and over JSON and checks both agree.
fn both(req: &ExportTraceServiceRequest) -> TraceDecode {
    let pb = decode_traces_proto(&req.encode_to_vec(), NOW).unwrap();
    let json = decode_traces_json(&serde_json::to_vec(req).unwrap(), NOW).unwrap();
    assert_eq!(pb.spans, json.spans);
    assert_eq!(pb.stats, json.stats);
    assert_eq!(pb.rejected_spans, json.rejected_spans);
    pb
}

#[test]
fn class_1_not_protobuf() {
    let err = decode_traces_proto(b"\x0a\xff\xff\xff\xff\x0f", NOW).unwrap_err();
    assert_eq!(err.reason(), "invalid_protobuf");
    assert!(err.to_string().contains("runs past the end"), "{err}");
    let err = decode_traces_proto(b"{\"resourceSpans\":[]}", NOW).unwrap_err();
    assert_eq!(err.reason(), "invalid_protobuf");
    // A known field with the wrong wire type is an error, as with prost.
    let err = decode_traces_proto(&[0x08, 0x01], NOW).unwrap_err();
    assert!(err.to_string().contains("wrong wire type"), "{err}");
    let conv = DeltaConverter::new(10, std::time::Duration::from_secs(60));
    assert_eq!(
        decode_metrics_proto(b"\x0a\x05ab", &conv, NOW)
            .unwrap_err()
            .reason(),
        "invalid_protobuf"
    );
    assert_eq!(
        decode_logs_proto(b"\x0a\x05ab").unwrap_err().reason(),
        "invalid_protobuf"
    );
}

#[test]
fn class_2_invalid_json_base64_ids_and_enum_names() {
    let bad = |body: &str| decode_traces_json(body.as_bytes(), NOW).unwrap_err();
    assert_eq!(bad("{\"resourceSpans\": [").reason(), "invalid_json");
    let base64_id = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":"7uGbfsPBsXQ="}]}]}]}"#;
    assert!(bad(base64_id).to_string().contains("invalid OTLP/JSON"));
    let enum_name = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_SERVER"}]}]}]}"#;
    assert_eq!(bad(enum_name).reason(), "invalid_json");
    let conv = DeltaConverter::new(10, std::time::Duration::from_secs(60));
    // serde would read a JSON array as a message (its sequence form); OTLP/JSON does not.
    assert_eq!(
        decode_metrics_json(b"[]", &conv, NOW).unwrap_err().reason(),
        "invalid_json"
    );
    assert_eq!(bad(" [] ").reason(), "invalid_json");
    assert_eq!(
        decode_logs_json(b"{\"resourceLogs\": 5}")
            .unwrap_err()
            .reason(),
        "invalid_json"
    );
}

#[test]
fn class_10_invalid_utf8_rejects_the_request() {
    let mut req = request(svc(), vec![span(1)]);
    req.resource_spans[0].scope_spans[0].spans[0].name = "NAME".into();
    let mut body = req.encode_to_vec();
    let at = body.windows(4).position(|w| w == b"NAME").unwrap();
    body[at] = 0xff;
    let err = decode_traces_proto(&body, NOW).unwrap_err();
    assert_eq!(
        err,
        DecodeError::InvalidUtf8 {
            field: "name".into()
        }
    );
    // In a resource attribute the decoder uses.
    let req = request(vec![s("service.name", "SVCX")], vec![span(1)]);
    let mut body = req.encode_to_vec();
    let at = body.windows(4).position(|w| w == b"SVCX").unwrap();
    body[at + 1] = 0xc3; // a lone lead byte followed by ASCII
    let err = decode_traces_proto(&body, NOW).unwrap_err();
    assert_eq!(err.reason(), "invalid_utf8");
    assert!(err.to_string().contains("service.name"), "{err}");
    // JSON bodies must be UTF-8 throughout.
    let err = decode_traces_json(b"{\"resourceSpans\":[\xff]}", NOW).unwrap_err();
    assert_eq!(err.reason(), "invalid_utf8");
    // prost-decoded paths (logs, metrics) classify prost's UTF-8 error the same way.
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    severity_text: "SEVX".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut body = logs.encode_to_vec();
    assert_eq!(decode_logs_proto(&body).unwrap(), 1);
    let at = body.windows(4).position(|w| w == b"SEVX").unwrap();
    body[at] = 0xff;
    assert_eq!(
        decode_logs_proto(&body).unwrap_err().reason(),
        "invalid_utf8"
    );
}

#[test]
fn class_11_bad_ids_reject_only_those_spans() {
    let mut short_trace = span(2);
    short_trace.trace_id.truncate(8);
    let mut zero_trace = span(3);
    zero_trace.trace_id = vec![0; 16];
    let mut long_span = span(4);
    long_span.span_id.push(9);
    let mut bad_parent = span(5);
    bad_parent.parent_span_id = vec![1, 2, 3];
    let req = request(
        svc(),
        vec![
            span(1),
            short_trace,
            zero_trace,
            long_span,
            bad_parent,
            span(6),
        ],
    );
    let out = both(&req);
    assert_eq!(out.spans.len(), 2);
    assert_eq!(out.rejected_spans, 4);
    assert_eq!(
        (out.stats.invalid_trace_id, out.stats.invalid_span_id),
        (2, 2)
    );
    assert_eq!(
        out.rejection_message,
        "rejected 4 spans: 2 with a trace id that is not 16 bytes or is all zero, \
         1 with a span id that is not 8 bytes or is all zero, \
         1 with a parent span id that is neither empty nor 8 bytes"
    );
}

#[test]
fn class_12_bad_timing_is_kept_but_flagged() {
    let mut reversed = span(2);
    reversed.end_time_unix_nano = reversed.start_time_unix_nano - 1;
    let mut future = span(3);
    future.end_time_unix_nano = NOW + 3600 * 1_000_000_000;
    let mut ancient = span(4);
    ancient.start_time_unix_nano = 1_000_000_000;
    let out = both(&request(svc(), vec![span(1), reversed, future, ancient]));
    let valid: Vec<bool> = out.spans.iter().map(|s| s.timing_valid).collect();
    assert_eq!(valid, [true, false, false, false]);
    assert_eq!(out.stats.invalid_timing, 3);
    assert_eq!(out.spans[1].duration_ns(), None);
}

#[test]
fn class_13_missing_service_is_unknown_service() {
    let out = both(&request(
        vec![s("service.version", "2")],
        vec![span(1), span(2)],
    ));
    assert!(out
        .spans
        .iter()
        .all(|s| s.resource.service == crate::model::UNKNOWN_SERVICE));
    assert_eq!(out.stats.missing_service, 2);
    let empty = both(&request(vec![s("service.name", "")], vec![span(1)]));
    assert_eq!(empty.stats.missing_service, 1);
}

#[test]
fn class_14_huge_keying_values_are_truncated() {
    let huge = "x".repeat(10_000);
    let mut sp = span(1);
    sp.kind = 3;
    sp.attributes = vec![s("http.route", &huge), s("peer.service", &huge)];
    let out = both(&request(vec![s("service.name", &huge)], vec![sp]));
    let rec = &out.spans[0];
    assert_eq!(rec.resource.service.len(), MAX_KEY_BYTES);
    assert_eq!(rec.operation.len(), MAX_KEY_BYTES);
    assert_eq!(rec.peer.as_ref().unwrap().name.len(), MAX_KEY_BYTES);
    assert_eq!(out.stats.truncated_keys, 3);
}

#[test]
fn a_resource_is_normalized_once_and_counted_in_every_request() {
    let long = "x".repeat(MAX_KEY_BYTES + 44);
    let body = request(vec![s("service.name", &long)], vec![span(1)]).encode_to_vec();
    let first = decode_traces_proto(&body, NOW).unwrap();
    let again = decode_traces_proto(&body, NOW).unwrap();
    let (a, b) = (&first.spans[0].resource, &again.spans[0].resource);
    assert!(
        std::sync::Arc::ptr_eq(a, b),
        "one shared resource across requests"
    );
    assert_eq!(first.stats.truncated_keys, 1);
    assert_eq!(
        again.stats.truncated_keys, 1,
        "a cached resource still counts its cut"
    );
    assert_eq!(again.stats.missing_service, 0);
}

#[test]
fn huge_resources_are_not_cached() {
    use super::resource_cache::{cached, MAX_ENCODED_BYTES};
    let big = "x".repeat(MAX_ENCODED_BYTES);
    let body =
        request(vec![s("service.name", "a"), s("note", &big)], vec![span(1)]).encode_to_vec();
    let before = cached();
    let first = decode_traces_proto(&body, NOW).unwrap();
    let again = decode_traces_proto(&body, NOW).unwrap();
    assert_eq!(cached(), before, "nothing kept");
    assert!(!std::sync::Arc::ptr_eq(
        &first.spans[0].resource,
        &again.spans[0].resource
    ));
    assert_eq!(again.spans[0].resource.service.as_str(), "a");
}

#[test]
fn the_resource_cache_is_bounded() {
    use super::resource_cache::{cached, MAX_RESOURCES};
    for i in 0..MAX_RESOURCES + 100 {
        let name = format!("svc-{i}");
        let body = request(vec![s("service.name", &name)], vec![span(1)]).encode_to_vec();
        let out = decode_traces_proto(&body, NOW).unwrap();
        assert_eq!(out.spans[0].resource.service.as_str(), name);
        assert!(cached() <= MAX_RESOURCES, "{} cached", cached());
    }
}

#[test]
fn class_16_empty_requests_are_ok() {
    let conv = DeltaConverter::new(10, std::time::Duration::from_secs(60));
    for out in [
        decode_traces_proto(b"", NOW).unwrap(),
        decode_traces_json(b"", NOW).unwrap(),
        decode_traces_json(b"{}", NOW).unwrap(),
        decode_traces_json(b" {\"resourceSpans\": []} ", NOW).unwrap(),
    ] {
        assert!(out.spans.is_empty() && out.rejected_spans == 0);
    }
    assert!(decode_metrics_proto(b"", &conv, NOW)
        .unwrap()
        .batch
        .points
        .is_empty());
    assert!(decode_metrics_json(b"{}", &conv, NOW)
        .unwrap()
        .batch
        .points
        .is_empty());
    assert_eq!(decode_logs_proto(b"").unwrap(), 0);
    assert_eq!(decode_logs_json(b"").unwrap(), 0);
}

#[test]
fn normalizes_resource_identity_with_old_and_new_names() {
    let res = vec![
        s("service.name", "cart"),
        s("deployment.environment", "old-env"),
        s("k8s.pod.name", "cart-abc"),
        s("k8s.deployment.name", "cart-primary"),
    ];
    let out = both(&request(res.clone(), vec![span(1)]));
    let r = &out.spans[0].resource;
    assert_eq!(
        (r.environment.as_str(), r.instance.as_str()),
        ("old-env", "cart-abc")
    );
    assert_eq!(r.k8s_deployment.as_deref(), Some("cart-primary"));
    let mut newer = res;
    newer.push(s("deployment.environment.name", "prod"));
    newer.push(s("service.instance.id", "i-1"));
    let out = both(&request(newer, vec![span(1)]));
    let r = &out.spans[0].resource;
    assert_eq!(
        (r.environment.as_str(), r.instance.as_str()),
        ("prod", "i-1")
    );
}

#[test]
fn span_fields_status_and_attributes() {
    let mut sp = span(1);
    sp.kind = 3;
    sp.parent_span_id = vec![7; 8];
    sp.attributes = vec![
        s("http.method", "GET"),
        s("http.route", "/cart/{id}"),
        kv("http.status_code", Value::IntValue(404)),
        s("db.statement", "ignored"),
        kv("big", Value::BytesValue(vec![0xff; 100])),
    ];
    let mut ok = span(2);
    ok.status = Some(Status {
        code: status::StatusCode::Error as i32,
        message: "boom".into(),
    });
    let out = both(&request(svc(), vec![sp, ok]));
    let rec = &out.spans[0];
    assert_eq!(rec.operation, "GET /cart/{id}");
    assert_eq!(rec.kind, SpanKind::Client);
    assert!(rec.error, "404 on a client span is an error");
    assert_eq!(rec.parent_span_id, [7; 8]);
    assert!(!rec.is_root());
    assert!(out.spans[1].error, "status ERROR");
    assert!(out.spans[1].is_root());
    assert_eq!(out.spans[1].duration_ns(), Some(1_000_000));
}

#[test]
fn resource_after_spans_on_the_wire_and_repeated_resources() {
    // Encode ResourceSpans with field 2 (scope_spans) before field 1 (resource).
    let req = request(svc(), vec![span(1)]);
    let rs = &req.resource_spans[0];
    let mut inner = Vec::new();
    prost::encoding::message::encode(2, &rs.scope_spans[0], &mut inner);
    prost::encoding::message::encode(1, rs.resource.as_ref().unwrap(), &mut inner);
    let mut body = Vec::new();
    prost::encoding::bytes::encode(1, &inner, &mut body);
    body.extend_from_slice(&body.clone());
    let out = decode_traces_proto(&body, NOW).unwrap();
    assert_eq!(out.spans.len(), 2);
    assert_eq!(out.spans[0].resource.service, "checkout");
    assert!(std::sync::Arc::ptr_eq(
        &out.spans[0].resource,
        &out.spans[1].resource
    ));
}
