//! Every shared OTLP example and SDK capture decodes, and the protobuf and JSON forms of
//! the same capture normalize to identical records.

mod shared_data;

use std::path::PathBuf;
use std::time::Duration;
use verdict::model::{NodeKind, SpanKind};
use verdict::receiver::decode::{
    decode_logs_json, decode_metrics_json, decode_metrics_proto, decode_traces_json,
    decode_traces_proto, DeltaConverter,
};

fn files(sub: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(shared_data::dir("").join(sub))
        .unwrap_or_else(|e| panic!("reading {sub}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {suffix} files in {sub}");
    out
}

/// `now` just after the captures were taken (their spans end around 1795710140 s).
const CAPTURE_NOW: u64 = 1_795_710_600_000_000_000;

#[test]
fn sdk_trace_captures_decode_identically_from_proto_and_json() {
    let mut spans = 0;
    for pb in files("sdk-captures/traces", ".pb") {
        let json = PathBuf::from(pb.to_string_lossy().replace(".pb", ".otlp.json"));
        let from_pb = decode_traces_proto(&std::fs::read(&pb).unwrap(), CAPTURE_NOW).unwrap();
        let from_json = decode_traces_json(&std::fs::read(&json).unwrap(), CAPTURE_NOW).unwrap();
        assert!(!from_pb.spans.is_empty(), "{}", pb.display());
        assert_eq!(from_pb.spans, from_json.spans, "{}", pb.display());
        assert_eq!(from_pb.stats, from_json.stats, "{}", pb.display());
        assert_eq!(from_pb.rejected_spans, 0);
        for s in &from_pb.spans {
            assert!(s.timing_valid, "{}: {s:?}", pb.display());
            assert_ne!(s.resource.service, "unknown_service");
            assert!(!s.resource.version.is_empty());
        }
        spans += from_pb.spans.len();
    }
    assert!(spans >= 16);
}

#[test]
fn grpc_client_capture_normalizes_rpc_operation_and_peer() {
    let pb = shared_data::dir("").join("sdk-captures/traces/grpc-003.pb");
    let out = decode_traces_proto(&std::fs::read(pb).unwrap(), CAPTURE_NOW).unwrap();
    let s = &out.spans[0];
    assert_eq!(s.kind, SpanKind::Client);
    assert_eq!(s.operation, "oteldemo.CartService/GetCart");
    assert_eq!(s.resource.service, "frontend");
    assert_eq!(s.resource.version, "1.4.0");
    assert_eq!(s.resource.environment, "staging");
    assert_eq!(s.resource.instance, "frontend-7d9f-abc12");
    assert_eq!(s.resource.k8s_deployment.as_deref(), Some("frontend"));
    let peer = s.peer.as_ref().unwrap();
    assert_eq!(
        (peer.kind, peer.name.as_str()),
        (NodeKind::External, "cart")
    );
    assert!(!s.error);
    assert_eq!(hex::encode(s.trace_id), "14af90d1812984c9be8e061b72f89c2f");
    assert_eq!(hex::encode(s.parent_span_id), "44a54eb71f3f7fed");
}

#[test]
fn official_trace_example_decodes() {
    let body = std::fs::read(shared_data::dir("").join("otlp-examples/trace.json")).unwrap();
    let now = 1_544_712_661_000_000_000;
    let out = decode_traces_json(&body, now).unwrap();
    assert_eq!(out.spans.len(), 1);
    let s = &out.spans[0];
    assert_eq!(s.resource.service, "my.service");
    assert_eq!(s.operation, "I'm a server span");
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!(s.duration_ns(), Some(1_000_000_000));
    assert_eq!(
        hex::encode_upper(s.trace_id),
        "5B8EFFF798038103D269B633813FC60C"
    );
}

#[test]
fn official_metrics_and_logs_examples_decode() {
    let conv = DeltaConverter::new(1000, Duration::from_secs(600));
    let body = std::fs::read(shared_data::dir("").join("otlp-examples/metrics.json")).unwrap();
    let out = decode_metrics_json(&body, &conv, 1_544_712_661_000_000_000).unwrap();
    // None of the example metrics is a request duration: accepted, nothing to analyse.
    assert!(out.batch.points.is_empty());
    assert_eq!(out.metric.ignored_metrics, 4);
    assert_eq!(out.rejected_points, 0);
    let logs = std::fs::read(shared_data::dir("").join("otlp-examples/logs.json")).unwrap();
    assert_eq!(decode_logs_json(&logs).unwrap(), 1);
    let events = std::fs::read(shared_data::dir("").join("otlp-examples/events.json")).unwrap();
    assert_eq!(decode_logs_json(&events).unwrap(), 1);
}

/// Converter that started before the captured SDK processes did.
fn converter() -> DeltaConverter {
    DeltaConverter::with_start(
        100,
        Duration::from_secs(600),
        CAPTURE_NOW - 3_600_000_000_000,
    )
}

#[test]
fn sdk_metric_captures_decode_identically_from_proto_and_json() {
    for pb in files("sdk-captures/metrics", ".pb") {
        let json = PathBuf::from(pb.to_string_lossy().replace(".pb", ".otlp.json"));
        // Each form gets its own converter so both see the stream for the first time.
        let (c1, c2) = (converter(), converter());
        let from_pb = decode_metrics_proto(&std::fs::read(&pb).unwrap(), &c1, CAPTURE_NOW).unwrap();
        let from_json =
            decode_metrics_json(&std::fs::read(&json).unwrap(), &c2, CAPTURE_NOW).unwrap();
        assert_eq!(
            from_pb.batch.points,
            from_json.batch.points,
            "{}",
            pb.display()
        );
        assert_eq!(from_pb.metric, from_json.metric, "{}", pb.display());
        assert_eq!(from_pb.rejected_points, 0, "{}", from_pb.rejection_message);
        assert!(!from_pb.batch.points.is_empty(), "{}", pb.display());
        // `demo.requests` is a sum, not a duration histogram.
        assert_eq!(from_pb.metric.ignored_metrics, 1);
        for p in &from_pb.batch.points {
            assert_eq!(p.operation, "GET /api/cart");
            assert_eq!(p.kind, SpanKind::Server);
            assert_eq!(p.buckets.iter().map(|b| b.1).sum::<u64>(), p.count);
        }
    }
}

#[test]
fn python_cumulative_exports_become_deltas_per_version() {
    let conv = converter();
    let read =
        |f: &str| std::fs::read(shared_data::dir("").join("sdk-captures/metrics").join(f)).unwrap();
    // Two consecutive cumulative exports of the same stream with no requests in between.
    let first = decode_metrics_proto(&read("grpc-metrics-001.pb"), &conv, CAPTURE_NOW).unwrap();
    assert_eq!(first.batch.points.len(), 1);
    let p = &first.batch.points[0];
    assert_eq!(
        (p.resource.version.as_str(), p.count, p.error),
        ("2.0.0", 200, false)
    );
    let second = decode_metrics_proto(&read("grpc-metrics-002.pb"), &conv, CAPTURE_NOW).unwrap();
    assert!(second.batch.points.is_empty(), "{:?}", second.batch.points);
    // A retry of the first export is a duplicate.
    let retry = decode_metrics_proto(&read("grpc-metrics-001.pb"), &conv, CAPTURE_NOW).unwrap();
    assert!(retry.batch.points.is_empty());
    assert_eq!(retry.metric.out_of_order, 1);
    // The canary: 188 good and 12 failed (HTTP 500) requests.
    let canary = decode_metrics_proto(&read("grpc-metrics-003.pb"), &conv, CAPTURE_NOW).unwrap();
    let summary: Vec<_> = canary
        .batch
        .points
        .iter()
        .map(|p| (p.resource.version.as_str(), p.count, p.error))
        .collect();
    assert_eq!(
        summary,
        [("2.1.0-canary", 188, false), ("2.1.0-canary", 12, true)]
    );
    assert_eq!(conv.streams(), 3);
}
