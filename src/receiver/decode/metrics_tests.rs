//! Metric normalization: which metrics count, units, operations, errors, representative
//! buckets, malformed points.

use super::*;
use crate::receiver::decode::tests::{kv, s, NOW};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets as ExpBuckets, ExponentialHistogram, Histogram,
    ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::time::Duration;

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![s("service.name", "api"), s("service.version", "7")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

fn hist(name: &str, unit: &str, temporality: i32, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: temporality,
        })),
        ..Default::default()
    }
}

fn point(counts: &[u64], bounds: &[f64], attrs: Vec<KeyValue>) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: attrs,
        start_time_unix_nano: NOW - 10_000_000_000,
        time_unix_nano: NOW,
        count: counts.iter().sum(),
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        max: Some(9.0),
        ..Default::default()
    }
}

fn decode(req: &ExportMetricsServiceRequest) -> MetricsDecode {
    let conv = DeltaConverter::with_start(100, Duration::from_secs(60), 0);
    let pb = decode_metrics_proto(&req.encode_to_vec(), &conv, NOW).unwrap();
    let conv = DeltaConverter::with_start(100, Duration::from_secs(60), 0);
    let body = serde_json::to_vec(req).unwrap();
    let json = super::super::decode_metrics_json(&body, &conv, NOW).unwrap();
    assert_eq!(pb.batch.points, json.batch.points);
    pb
}

#[test]
fn delta_histogram_in_ms_with_route_and_error_type() {
    let attrs = vec![
        s("http.route", "/pay"),
        s("http.request.method", "POST"),
        s("error.type", "timeout"),
    ];
    let p = point(&[1, 2, 3], &[10.0, 20.0], attrs);
    let out = decode(&request(vec![hist(
        "http.server.duration",
        "ms",
        1,
        vec![p],
    )]));
    let m = &out.batch.points[0];
    assert_eq!(
        (m.operation.as_str(), m.kind, m.error, m.count),
        ("POST /pay", SpanKind::Server, true, 6)
    );
    // Midpoints 5 ms and 15 ms; the overflow bucket is represented by max (9 ms is below
    // its lower bound 20 ms, so the bound itself).
    assert_eq!(
        m.buckets,
        vec![(5_000_000, 1), (15_000_000, 2), (20_000_000, 3)]
    );
    assert_eq!(m.resource.service, "api");
}

#[test]
fn client_rpc_metric_with_grpc_failure_and_default_unit() {
    let attrs = vec![
        s("rpc.service", "Pay"),
        s("rpc.method", "Charge"),
        kv("rpc.grpc.status_code", Value::IntValue(5)),
    ];
    let p = point(&[4, 0], &[0.5], attrs);
    let out = decode(&request(vec![hist("rpc.client.duration", "", 1, vec![p])]));
    let m = &out.batch.points[0];
    assert_eq!(
        (m.operation.as_str(), m.kind, m.error),
        ("Pay/Charge", SpanKind::Client, true)
    );
    assert_eq!(m.buckets, vec![(250_000, 4)]); // old rpc metrics default to ms
}

#[test]
fn exponential_histograms_use_geometric_midpoints() {
    let p = ExponentialHistogramDataPoint {
        start_time_unix_nano: NOW - 1,
        time_unix_nano: NOW,
        count: 3,
        scale: 0,
        zero_count: 1,
        positive: Some(ExpBuckets {
            offset: 1,
            bucket_counts: vec![0, 2],
        }),
        ..Default::default()
    };
    let metric = Metric {
        name: "http.client.request.duration".into(),
        unit: "s".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![p],
            aggregation_temporality: 1,
        })),
        ..Default::default()
    };
    let out = decode(&request(vec![metric]));
    let m = &out.batch.points[0];
    // Index 2 at scale 0 covers (4, 8] s: geometric midpoint 2^2.5 s.
    let mid = (2f64.powf(2.5) * 1e9).round() as u64;
    assert_eq!(m.buckets, vec![(0, 1), (mid, 2)]);
    assert_eq!(m.operation, "http.client.request.duration");
}

#[test]
fn other_metrics_are_ignored_and_malformed_points_rejected() {
    let bad_len = point(&[1, 2], &[1.0, 2.0], vec![]);
    let mut bad_sum = point(&[1, 2], &[1.0], vec![]);
    bad_sum.count = 7;
    let unordered = point(&[1, 1, 1], &[2.0, 1.0], vec![]);
    let good = point(&[1, 1], &[1.0], vec![]);
    let out = decode(&request(vec![
        hist(
            "http.server.request.duration",
            "s",
            1,
            vec![bad_len, bad_sum, unordered, good],
        ),
        hist(
            "http.server.request.duration",
            "s",
            0,
            vec![point(&[1], &[], vec![])],
        ),
        hist(
            "http.server.request.duration",
            "By",
            1,
            vec![point(&[1], &[], vec![])],
        ),
        hist("queue.depth", "1", 1, vec![point(&[1], &[], vec![])]),
    ]));
    assert_eq!(out.batch.points.len(), 1);
    assert_eq!(out.rejected_points, 4);
    assert_eq!(
        out.rejection_message,
        "rejected 4 histogram data points (first: bucket_counts must have one more entry than explicit_bounds)"
    );
    assert_eq!(
        (out.metric.unsupported_unit, out.metric.ignored_metrics),
        (1, 1)
    );
}

#[test]
fn points_with_unusable_time_are_counted_not_emitted() {
    let mut p = point(&[1], &[], vec![]);
    p.time_unix_nano = NOW + 3_600_000_000_000;
    let out = decode(&request(vec![hist(
        "http.server.request.duration",
        "s",
        1,
        vec![p],
    )]));
    assert!(out.batch.points.is_empty());
    assert_eq!(out.stats.invalid_timing, 1);
}
