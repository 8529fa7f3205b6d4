//! One table over both transports for every bad-input class of reliability.md (1-14, 16):
//! the exact gRPC code / HTTP status, the counter that moved, and that a well-behaved
//! client is served normally afterwards. Class 15 (series caps) belongs to the per-version
//! state and is tested there; class 17 needs auth, which the receivers do not have.

mod receiver_support;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use receiver_support::*;
use tonic::Code;
use verdict::receiver::grpc::TRACES_PATH;
use verdict::receiver::loadgen::client::RawOtlpClient;
use verdict::receiver::metrics::{RefusalReason, SignalKind, Transport};

const LIMIT: usize = 64 << 10;

#[derive(Debug, Clone, Copy)]
enum Expect {
    Refused(RefusalReason),
    /// Accepted with this many spans rejected (partial success).
    Rejected(u64),
    /// Accepted; this normalization counter moved by one.
    Adjusted(&'static str),
    /// Accepted, nothing queued.
    Empty,
}

struct GrpcReq {
    path: &'static str,
    encoding: Option<&'static str>,
    compressed: bool,
    message: Vec<u8>,
    code: Code,
}

struct HttpReq {
    method: &'static str,
    path: &'static str,
    content_type: &'static str,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
}

struct Case {
    class: u8,
    name: &'static str,
    grpc: Option<GrpcReq>,
    http: Option<HttpReq>,
    expect: Expect,
}

fn grpc(code: Code, message: Vec<u8>) -> Option<GrpcReq> {
    Some(GrpcReq {
        path: TRACES_PATH,
        encoding: None,
        compressed: false,
        message,
        code,
    })
}

fn http(status: u16, content_type: &'static str, body: Vec<u8>) -> Option<HttpReq> {
    Some(HttpReq {
        method: "POST",
        path: "/v1/traces",
        content_type,
        encoding: None,
        body,
        status,
    })
}

const PB: &str = "application/x-protobuf";

fn valid() -> Vec<u8> {
    encode(&request(svc("checkout", "1.0"), vec![span(1)]))
}

/// A request whose service.name bytes are not UTF-8 (prost cannot build one directly).
fn invalid_utf8() -> Vec<u8> {
    let mut b = encode(&request(svc("BADUTF8!", "1.0"), vec![span(1)]));
    let at = b.windows(8).position(|w| w == b"BADUTF8!").unwrap();
    b[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    b
}

fn oversized() -> Vec<u8> {
    let spans = (0..400).map(|i| {
        let mut s = span(1);
        s.name = format!("GET /{i}/{}", "x".repeat(200));
        s
    });
    let b = encode(&request(svc("checkout", "1.0"), spans.collect()));
    assert!(b.len() > LIMIT);
    b
}

fn cases() -> Vec<Case> {
    let bad_pb = b"\x0a\x10abc".to_vec();
    let bomb = gzip(&vec![0u8; 32 << 20]);
    let corrupt = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage!".to_vec();
    let mut short_trace = span(3);
    short_trace.trace_id = vec![3; 15];
    let partial = encode(&request(svc("checkout", "1.0"), vec![span(2), short_trace]));
    let mut backwards = span(4);
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    let long_name = "s".repeat(1000);
    vec![
        Case { class: 1, name: "not protobuf", grpc: grpc(Code::InvalidArgument, bad_pb.clone()), http: http(400, PB, bad_pb), expect: Expect::Refused(RefusalReason::InvalidProtobuf) },
        Case { class: 2, name: "JSON syntax", grpc: None, http: http(400, "application/json", b"{\"resourceSpans\": [".to_vec()), expect: Expect::Refused(RefusalReason::InvalidJson) },
        Case { class: 2, name: "JSON base64 ids", grpc: None, http: http(400, "application/json", br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AAECAwQFBgcICQoLDA0ODw==","spanId":"AAECAwQFBgc=","name":"x","kind":2}]}]}]}"#.to_vec()), expect: Expect::Refused(RefusalReason::InvalidJson) },
        Case { class: 3, name: "text/plain", grpc: None, http: http(415, "text/plain", valid()), expect: Expect::Refused(RefusalReason::UnsupportedMediaType) },
        Case { class: 4, name: "GET", grpc: None, http: Some(HttpReq { method: "GET", path: "/v1/traces", content_type: PB, encoding: None, body: vec![], status: 405 }), expect: Expect::Refused(RefusalReason::MethodNotAllowed) },
        Case { class: 5, name: "unknown path", grpc: Some(GrpcReq { path: "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export", encoding: None, compressed: false, message: valid(), code: Code::Unimplemented }), http: Some(HttpReq { method: "POST", path: "/v1/profiles", content_type: PB, encoding: None, body: valid(), status: 404 }), expect: Expect::Refused(RefusalReason::NotFound) },
        Case { class: 6, name: "brotli", grpc: Some(GrpcReq { path: TRACES_PATH, encoding: Some("br"), compressed: true, message: valid(), code: Code::Unimplemented }), http: Some(HttpReq { method: "POST", path: "/v1/traces", content_type: PB, encoding: Some("br"), body: valid(), status: 415 }), expect: Expect::Refused(RefusalReason::UnsupportedEncoding) },
        Case { class: 7, name: "corrupt gzip", grpc: Some(GrpcReq { path: TRACES_PATH, encoding: Some("gzip"), compressed: true, message: corrupt.clone(), code: Code::InvalidArgument }), http: Some(HttpReq { method: "POST", path: "/v1/traces", content_type: PB, encoding: Some("gzip"), body: corrupt, status: 400 }), expect: Expect::Refused(RefusalReason::CorruptCompression) },
        Case { class: 8, name: "oversized", grpc: grpc(Code::ResourceExhausted, oversized()), http: http(413, PB, oversized()), expect: Expect::Refused(RefusalReason::TooLarge) },
        Case { class: 9, name: "gzip bomb", grpc: Some(GrpcReq { path: TRACES_PATH, encoding: Some("gzip"), compressed: true, message: bomb.clone(), code: Code::ResourceExhausted }), http: Some(HttpReq { method: "POST", path: "/v1/traces", content_type: PB, encoding: Some("gzip"), body: bomb, status: 413 }), expect: Expect::Refused(RefusalReason::TooLarge) },
        Case { class: 10, name: "invalid UTF-8", grpc: grpc(Code::InvalidArgument, invalid_utf8()), http: http(400, PB, invalid_utf8()), expect: Expect::Refused(RefusalReason::InvalidUtf8) },
        Case { class: 11, name: "15-byte trace id", grpc: grpc(Code::Ok, partial.clone()), http: http(200, PB, partial), expect: Expect::Rejected(1) },
        Case { class: 12, name: "end before start", grpc: grpc(Code::Ok, encode(&request(svc("checkout", "1.0"), vec![backwards.clone()]))), http: http(200, PB, encode(&request(svc("checkout", "1.0"), vec![backwards]))), expect: Expect::Adjusted("invalid_timing") },
        Case { class: 13, name: "no service.name", grpc: grpc(Code::Ok, encode(&request(vec![], vec![span(5)]))), http: http(200, PB, encode(&request(vec![], vec![span(5)]))), expect: Expect::Adjusted("missing_service") },
        Case { class: 14, name: "huge service.name", grpc: grpc(Code::Ok, encode(&request(svc(&long_name, "1.0"), vec![span(6)]))), http: http(200, PB, encode(&request(svc(&long_name, "1.0"), vec![span(6)]))), expect: Expect::Adjusted("truncated_key") },
        Case { class: 16, name: "empty request", grpc: grpc(Code::Ok, vec![]), http: http(200, PB, vec![]), expect: Expect::Empty },
    ]
}

/// Counter values a case is judged by.
fn counter(h: &Harness, t: Transport, e: Expect) -> u64 {
    match e {
        Expect::Refused(r) => h.metrics.refusals(t, r),
        Expect::Rejected(_) => h.metrics.items(t, SignalKind::Traces, "rejected"),
        Expect::Adjusted(reason) => h.metrics.adjusted(SignalKind::Traces, reason),
        Expect::Empty => h.metrics.items(t, SignalKind::Traces, "received"),
    }
}

fn expected_delta(e: Expect) -> u64 {
    match e {
        Expect::Rejected(n) => n,
        Expect::Empty => 0,
        _ => 1,
    }
}

/// Sends a gRPC case; the code answered and, for OK answers, the rejected spans.
async fn send_grpc(h: &Harness, r: &GrpcReq) -> (Code, u64, bool) {
    if r.code == Code::Ok {
        let mut c = RawOtlpClient::connect(&h.grpc_url()).await.unwrap();
        let resp = c
            .call(TRACES_PATH, Bytes::from(r.message.clone()))
            .await
            .expect("OK answer");
        let rejected = ExportTraceServiceResponse::decode(resp)
            .unwrap()
            .partial_success
            .map_or(0, |p| p.rejected_spans as u64);
        return (Code::Ok, rejected, false);
    }
    let a = grpc_raw(
        h.grpc,
        r.path,
        r.encoding,
        grpc_frame(r.compressed, &r.message),
    )
    .await;
    assert_eq!(a.http, 200, "gRPC errors travel as HTTP 200");
    (
        Code::from_i32(a.code.expect("trailers-only error answer")),
        0,
        a.details,
    )
}

async fn send_http(h: &Harness, r: &HttpReq) -> (u16, Option<serde_json::Value>, Vec<u8>) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
    let mut req = client
        .request(method, h.http_url(r.path))
        .header("content-type", r.content_type);
    if let Some(e) = r.encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.body(r.body.clone()).send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap().to_vec();
    (status, serde_json::from_slice(&body).ok(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_class_gets_its_answer_and_counter_on_both_transports() {
    let mut h = start(|c| c.max_request_bytes = LIMIT).await;
    for case in cases() {
        let label = format!("class {} ({})", case.class, case.name);
        if let Some(r) = &case.grpc {
            let before = counter(&h, Transport::Grpc, case.expect);
            let (code, rejected, details) = send_grpc(&h, r).await;
            assert_eq!(code, r.code, "gRPC {label}");
            assert!(
                !details,
                "gRPC {label}: no RetryInfo on a non-retryable answer"
            );
            if let Expect::Rejected(n) = case.expect {
                assert_eq!(rejected, n, "gRPC {label}: partial success");
            }
            assert_eq!(
                counter(&h, Transport::Grpc, case.expect) - before,
                expected_delta(case.expect),
                "gRPC {label}: counter"
            );
        }
        if let Some(r) = &case.http {
            let before = counter(&h, Transport::Http, case.expect);
            let (status, _, body) = send_http(&h, r).await;
            assert_eq!(
                status,
                r.status,
                "HTTP {label}: {}",
                String::from_utf8_lossy(&body)
            );
            if let Expect::Rejected(n) = case.expect {
                let resp = ExportTraceServiceResponse::decode(&body[..]).unwrap();
                assert_eq!(
                    resp.partial_success.unwrap().rejected_spans as u64,
                    n,
                    "HTTP {label}"
                );
            }
            assert_eq!(
                counter(&h, Transport::Http, case.expect) - before,
                expected_delta(case.expect),
                "HTTP {label}: counter"
            );
        }
    }
    // Only the accepted classes queued anything: 11 (one good span), 12, 13, 14, per transport.
    assert_eq!(h.drain_spans().len(), 8);
    // Nobody else was harmed: a valid request is served on both transports.
    let mut c = RawOtlpClient::connect(&h.grpc_url()).await.unwrap();
    assert_eq!(c.export_traces(Bytes::from(valid())).await.unwrap(), 0);
    let ok = send_http(
        &h,
        &HttpReq {
            method: "POST",
            path: "/v1/traces",
            content_type: PB,
            encoding: Some("gzip"),
            body: gzip(&valid()),
            status: 200,
        },
    )
    .await;
    assert_eq!(ok.0, 200);
    assert_eq!(h.drain_spans().len(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_requests_get_json_answers_with_partial_success() {
    let h = start(|_| {}).await;
    let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"a","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"},{"traceId":"00000000000000000000000000000000","spanId":"0102030405060709","name":"b","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
    let (status, json, _) = send_http(
        &h,
        &HttpReq {
            method: "POST",
            path: "/v1/traces",
            content_type: "application/json; charset=utf-8",
            encoding: None,
            body: body.to_vec(),
            status: 200,
        },
    )
    .await;
    assert_eq!(status, 200);
    let json = json.expect("JSON answer");
    assert_eq!(json["partialSuccess"]["rejectedSpans"], "1");
    assert!(!json["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .is_empty());
    let (status, json, _) = send_http(
        &h,
        &HttpReq {
            method: "POST",
            path: "/v1/traces",
            content_type: "application/json",
            encoding: None,
            body: b"{oops".to_vec(),
            status: 400,
        },
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(json.expect("JSON error")["code"], 3);
    h.stop().await;
}
