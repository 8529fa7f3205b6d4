//! Metrics path (cold): prost-decodes an `ExportMetricsServiceRequest`, keeps histogram
//! metrics that carry request durations, converts cumulative streams to deltas and emits
//! one [`DurationMetric`] per point with buckets as (representative ns, count).

use super::attrs::{resource_attrs_of, span_attrs_of};
use super::delta::{Buckets, DeltaConverter, Sample};
use super::normalize::{self, NormalResource};
use super::{DecodeError, MetricsDecode};
use crate::model::{DurationMetric, SpanKind, UnixNanos};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, ExponentialHistogramDataPoint, HistogramDataPoint, Metric,
};
use prost::Message;
use std::hash::{BuildHasher, Hash, Hasher};

/// Per-request counters specific to metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MetricStats {
    /// Metrics that are not request-duration histograms (accepted, not analysed).
    pub ignored_metrics: u64,
    /// Duration metrics skipped for a unit that is not a time unit.
    pub unsupported_unit: u64,
    /// First points of cumulative streams that began before verdict started: they only
    /// set the baseline for later deltas.
    pub first_points: u64,
    /// Cumulative streams seen restarting (new start time or counts going down).
    pub resets: u64,
    /// Repeated points (client retries), dropped.
    pub duplicates: u64,
    /// Points older than the stream's last point, dropped.
    pub out_of_order: u64,
    /// Points of new streams dropped because the converter's stream cap was reached.
    pub stream_overflow: u64,
}

/// OTLP `AggregationTemporality`.
const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

/// Decodes and normalizes an OTLP/protobuf `ExportMetricsServiceRequest`.
pub fn decode_metrics_proto(
    body: &[u8],
    conv: &DeltaConverter,
    now: UnixNanos,
) -> Result<MetricsDecode, DecodeError> {
    let req = ExportMetricsServiceRequest::decode(body).map_err(|e| DecodeError::from_prost(&e))?;
    normalize_metrics(&req, conv, now)
}

/// Normalizes a decoded request (shared by the protobuf and JSON paths).
pub(crate) fn normalize_metrics(
    req: &ExportMetricsServiceRequest,
    conv: &DeltaConverter,
    now: UnixNanos,
) -> Result<MetricsDecode, DecodeError> {
    let mut ctx = Ctx {
        conv,
        now,
        out: MetricsDecode::default(),
        scratch: String::new(),
        rejects: Vec::new(),
    };
    for rm in &req.resource_metrics {
        let attrs: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
        let resource = normalize::resource(&resource_attrs_of(attrs), &mut ctx.out.stats)?;
        let resource_hash = hash_kvs(conv.hasher(), attrs);
        for sm in &rm.scope_metrics {
            let scope = sm
                .scope
                .as_ref()
                .map_or(("", ""), |s| (&*s.name, &*s.version));
            for m in &sm.metrics {
                let id = StreamPrefix {
                    resource_hash,
                    scope,
                    metric: &m.name,
                };
                ctx.metric(m, &resource, &id)?;
            }
        }
    }
    ctx.finish();
    Ok(ctx.out)
}

struct Ctx<'c> {
    conv: &'c DeltaConverter,
    now: UnixNanos,
    out: MetricsDecode,
    scratch: String,
    rejects: Vec<&'static str>,
}

/// What identifies a stream besides the point's own attributes.
#[derive(Hash)]
struct StreamPrefix<'a> {
    resource_hash: u64,
    scope: (&'a str, &'a str),
    metric: &'a str,
}

/// How a duration metric is read: its span kind and the nanoseconds per unit.
struct Shape {
    kind: SpanKind,
    ns_per_unit: f64,
}

/// Request-duration metric names (current and older conventions) with their kind and
/// default unit (seconds for current names, milliseconds for the old ones).
fn duration_metric(name: &str) -> Option<(SpanKind, f64)> {
    const S: f64 = 1e9;
    const MS: f64 = 1e6;
    Some(match name {
        "http.server.request.duration" | "rpc.server.call.duration" => (SpanKind::Server, S),
        "http.client.request.duration" | "rpc.client.call.duration" => (SpanKind::Client, S),
        "http.server.duration" | "rpc.server.duration" => (SpanKind::Server, MS),
        "http.client.duration" | "rpc.client.duration" => (SpanKind::Client, MS),
        _ => return None,
    })
}

/// Nanoseconds per unit for a UCUM time unit; `""` takes the name's default.
fn unit_ns(unit: &str, default: f64) -> Option<f64> {
    Some(match unit {
        "" => default,
        "s" => 1e9,
        "ms" => 1e6,
        "us" | "µs" | "μs" => 1e3,
        "ns" => 1.0,
        "min" => 60e9,
        _ => return None,
    })
}

impl Ctx<'_> {
    fn metric(
        &mut self,
        m: &Metric,
        resource: &NormalResource,
        id: &StreamPrefix<'_>,
    ) -> Result<(), DecodeError> {
        let (hist, exp) = match &m.data {
            Some(Data::Histogram(h)) => (Some(h), None),
            Some(Data::ExponentialHistogram(h)) => (None, Some(h)),
            _ => (None, None),
        };
        let Some((kind, default_unit)) =
            duration_metric(&m.name).filter(|_| hist.is_some() || exp.is_some())
        else {
            self.out.metric.ignored_metrics += 1;
            return Ok(());
        };
        let Some(ns_per_unit) = unit_ns(&m.unit, default_unit) else {
            self.out.metric.unsupported_unit += 1;
            return Ok(());
        };
        let shape = Shape { kind, ns_per_unit };
        if let Some(h) = hist {
            for p in &h.data_points {
                let sample = explicit_sample(p);
                self.point(
                    sample,
                    h.aggregation_temporality,
                    &p.attributes,
                    m,
                    resource,
                    id,
                    &shape,
                )?;
            }
        }
        if let Some(h) = exp {
            for p in &h.data_points {
                let sample = exponential_sample(p);
                self.point(
                    sample,
                    h.aggregation_temporality,
                    &p.attributes,
                    m,
                    resource,
                    id,
                    &shape,
                )?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn point(
        &mut self,
        sample: Result<Sample, &'static str>,
        temporality: i32,
        attributes: &[KeyValue],
        m: &Metric,
        resource: &NormalResource,
        id: &StreamPrefix<'_>,
        shape: &Shape,
    ) -> Result<(), DecodeError> {
        let sample = match sample {
            Ok(s) if temporality == DELTA || temporality == CUMULATIVE => s,
            Ok(_) => {
                self.rejects.push("aggregation temporality is unspecified");
                return Ok(());
            }
            Err(why) => {
                self.rejects.push(why);
                return Ok(());
            }
        };
        if !normalize::timing_valid(sample.time, sample.time, self.now) {
            self.out.stats.invalid_timing += 1;
            return Ok(());
        }
        let key = stream_key(self.conv.hasher(), id, attributes);
        let stats = &mut self.out.metric;
        let delta = if temporality == DELTA {
            self.conv.delta(key, sample, self.now, stats)
        } else {
            self.conv.cumulative(key, sample, self.now, stats)
        };
        let Some(delta) = delta else { return Ok(()) };
        let attrs = span_attrs_of(attributes);
        let stats = &mut self.out.stats;
        let operation = normalize::operation(&attrs, m.name.as_bytes(), &mut self.scratch, stats)?;
        stats.missing_service += u64::from(resource.missing_service);
        let error = normalize::is_error(shape.kind, 0, &attrs)
            || attrs.error_type.is_some_and(|e| !e.is_empty());
        self.out.batch.points.push(DurationMetric {
            resource: resource.resource.clone(),
            operation,
            kind: shape.kind,
            error,
            time_unix_nano: delta.time,
            count: delta.count,
            buckets: representative_buckets(&delta, shape.ns_per_unit),
        });
        Ok(())
    }

    fn finish(&mut self) {
        self.out.rejected_points = self.rejects.len() as u64;
        if let Some(first) = self.rejects.first() {
            self.out.rejection_message = format!(
                "rejected {} histogram data points (first: {first})",
                self.rejects.len()
            );
        }
    }
}

/// Stream identity: resource attributes, scope, metric name and the point's attributes
/// (order-insensitive), hashed with the converter's per-process key.
fn stream_key(h: &ahash::RandomState, id: &StreamPrefix<'_>, attrs: &[KeyValue]) -> u64 {
    let mut hasher = h.build_hasher();
    id.hash(&mut hasher);
    hash_kvs(h, attrs).hash(&mut hasher);
    hasher.finish()
}

/// Order-insensitive hash of key-values (sum of per-attribute hashes).
fn hash_kvs(h: &ahash::RandomState, kvs: &[KeyValue]) -> u64 {
    kvs.iter().fold(0u64, |acc, kv| {
        let value = kv
            .value
            .as_ref()
            .map(|v| v.encode_to_vec())
            .unwrap_or_default();
        acc.wrapping_add(h.hash_one((&kv.key, value)))
    })
}

fn explicit_sample(p: &HistogramDataPoint) -> Result<Sample, &'static str> {
    let (bounds, counts) = (&p.explicit_bounds, &p.bucket_counts);
    if !(counts.is_empty() && bounds.is_empty()) && counts.len() != bounds.len() + 1 {
        return Err("bucket_counts must have one more entry than explicit_bounds");
    }
    if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err("explicit_bounds must be finite and strictly increasing");
    }
    if !counts.is_empty() && counts.iter().try_fold(0u64, |a, c| a.checked_add(*c)) != Some(p.count)
    {
        return Err("bucket_counts do not add up to count");
    }
    Ok(Sample {
        start: p.start_time_unix_nano,
        time: p.time_unix_nano,
        count: p.count,
        max: p.max,
        buckets: Buckets::Explicit {
            bounds: bounds.clone(),
            counts: counts.clone(),
        },
    })
}

fn exponential_sample(p: &ExponentialHistogramDataPoint) -> Result<Sample, &'static str> {
    if !(-10..=20).contains(&p.scale) {
        return Err("exponential histogram scale outside [-10, 20]");
    }
    let positive = p.positive.clone().unwrap_or_default();
    let negative: u64 = p
        .negative
        .as_ref()
        .map_or(0, |n| n.bucket_counts.iter().sum());
    // Durations are never negative; negative buckets count towards the zero bucket.
    let zero = p.zero_count.saturating_add(negative);
    let total = positive
        .bucket_counts
        .iter()
        .try_fold(zero, |a, c| a.checked_add(*c));
    if total != Some(p.count) {
        return Err("exponential bucket counts do not add up to count");
    }
    Ok(Sample {
        start: p.start_time_unix_nano,
        time: p.time_unix_nano,
        count: p.count,
        max: p.max,
        buckets: Buckets::Exponential {
            scale: p.scale,
            zero,
            offset: positive.offset,
            counts: positive.bucket_counts,
        },
    })
}

/// (representative duration in ns, count) for every populated bucket: the midpoint of an
/// explicit bucket (the first starts at 0; the overflow bucket is represented by the
/// point's max when known, else its lower bound); the geometric midpoint of an
/// exponential bucket; 0 for the zero bucket.
fn representative_buckets(s: &Sample, ns_per_unit: f64) -> Vec<(u64, u64)> {
    let to_ns = |v: f64| (v.max(0.0) * ns_per_unit).round() as u64;
    let mut out = Vec::new();
    match &s.buckets {
        Buckets::Explicit { bounds, counts } => {
            for (i, &c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
                let lower = if i == 0 { 0.0 } else { bounds[i - 1].max(0.0) };
                let value = match bounds.get(i) {
                    Some(upper) => (lower + upper.max(lower)) / 2.0,
                    None => s.max.filter(|m| *m > lower).unwrap_or(lower),
                };
                out.push((to_ns(value), c));
            }
        }
        Buckets::Exponential {
            scale,
            zero,
            offset,
            counts,
        } => {
            if *zero > 0 {
                out.push((0, *zero));
            }
            let step = (-f64::from(*scale)).exp2();
            for (k, &c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
                let idx = f64::from(*offset) + k as f64;
                out.push((to_ns(((idx + 0.5) * step).exp2()), c));
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
