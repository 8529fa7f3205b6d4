//! One export request, whatever its transport: decode the (decompressed) body as protobuf
//! or OTLP/JSON, count it, queue the records for analysis, and say what to answer (partial
//! success, or a refusal with its reason). gRPC and HTTP only map this to their statuses.

use crate::clock::Clock;
use crate::model::{IngestItem, SpanBatch};
use crate::receiver::decode::{self, DecodeError, DeltaConverter};
use crate::receiver::limits::BodyError;
use crate::receiver::metrics::{ReceiverMetrics, RefusalReason, SignalKind, Transport};
use crate::receiver::queue::{IngestQueue, QueueError};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::{
    logs::v1 as logs, metrics::v1 as metrics, trace::v1 as trace,
};
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

/// An accepted request: how many of its items were rejected as malformed, and why.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    pub rejected: u64,
    pub message: String,
}

/// A request refused as a whole.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RefusalReason,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: RefusalReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

impl From<BodyError> for Refusal {
    fn from(e: BodyError) -> Self {
        let reason = match e {
            BodyError::TooLarge { .. } => RefusalReason::TooLarge,
            BodyError::Corrupt { .. } => RefusalReason::CorruptCompression,
            BodyError::Timeout(_) => RefusalReason::BodyTimeout,
            BodyError::Read(_) => RefusalReason::BadFraming,
        };
        Self::new(reason, e.to_string())
    }
}

fn decode_refusal(e: DecodeError) -> Refusal {
    let reason = match e {
        DecodeError::InvalidUtf8 { .. } => RefusalReason::InvalidUtf8,
        DecodeError::InvalidJson(_) => RefusalReason::InvalidJson,
        DecodeError::InvalidProtobuf { .. } | DecodeError::Protobuf(_) => {
            RefusalReason::InvalidProtobuf
        }
    };
    Refusal::new(reason, e.to_string())
}

/// Limits shared by both transports.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub request_timeout: Duration,
    pub retry_after: Duration,
}

/// Everything a request handler needs. Cheap to share (`Arc`).
pub struct Exporter {
    pub queue: Arc<IngestQueue>,
    pub metrics: Arc<ReceiverMetrics>,
    pub deltas: Arc<DeltaConverter>,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    /// Requests being read or decoded, across both transports.
    pub inflight: Arc<Semaphore>,
}

impl Exporter {
    /// A slot for one request, or an `overloaded` refusal when every slot is taken.
    pub fn admit(&self, t: Transport, s: SignalKind) -> Result<OwnedSemaphorePermit, Refusal> {
        self.inflight.clone().try_acquire_owned().map_err(|_| {
            self.refuse(
                t,
                Some(s),
                Refusal::new(
                    RefusalReason::Overloaded,
                    "too many requests in flight; retry later",
                ),
            )
        })
    }

    /// Counts a refusal and hands it back.
    pub fn refuse(&self, t: Transport, s: Option<SignalKind>, r: Refusal) -> Refusal {
        self.metrics.record_refusal(t, s, r.reason);
        let signal = s.map_or("unknown", SignalKind::as_str);
        tracing::debug!(transport = t.as_str(), signal, reason = r.reason.as_str(), message = %r.message, "request refused");
        r
    }

    /// Decodes, counts and queues one request body.
    pub fn export(
        &self,
        t: Transport,
        s: SignalKind,
        f: Format,
        body: &[u8],
    ) -> Result<Accepted, Refusal> {
        let result = match s {
            SignalKind::Traces => self.traces(t, f, body),
            SignalKind::Metrics => self.metrics(t, f, body),
            SignalKind::Logs => self.logs(t, f, body),
        };
        result.map_err(|r| self.refuse(t, Some(s), r))
    }

    fn traces(&self, t: Transport, f: Format, body: &[u8]) -> Result<Accepted, Refusal> {
        let now = self.clock.now();
        let d = match f {
            Format::Protobuf => decode::decode_traces_proto(body, now),
            Format::Json => decode::decode_traces_json(body, now),
        }
        .map_err(decode_refusal)?;
        let s = SignalKind::Traces;
        let n = d.spans.len() as u64;
        self.metrics
            .record_decoded(t, s, n + d.rejected_spans, d.rejected_spans);
        self.metrics.record_normalize(s, &d.stats);
        if n > 0 {
            self.push(t, s, IngestItem::Spans(SpanBatch { spans: d.spans }), n)?;
        }
        Ok(Accepted {
            rejected: d.rejected_spans,
            message: d.rejection_message,
        })
    }

    fn metrics(&self, t: Transport, f: Format, body: &[u8]) -> Result<Accepted, Refusal> {
        let now = self.clock.now();
        let d = match f {
            Format::Protobuf => decode::decode_metrics_proto(body, &self.deltas, now),
            Format::Json => decode::decode_metrics_json(body, &self.deltas, now),
        }
        .map_err(decode_refusal)?;
        let s = SignalKind::Metrics;
        let n = d.batch.points.len() as u64;
        self.metrics
            .record_decoded(t, s, n + d.rejected_points, d.rejected_points);
        self.metrics.record_normalize(s, &d.stats);
        self.metrics.record_metric_stats(t, &d.metric);
        if n > 0 {
            self.push(t, s, IngestItem::Metrics(d.batch), n)?;
        }
        Ok(Accepted {
            rejected: d.rejected_points,
            message: d.rejection_message,
        })
    }

    /// Logs are acknowledged and counted, never queued: verdict does not analyse them, and
    /// a Collector that fans every signal out to verdict must not retry them forever.
    fn logs(&self, t: Transport, f: Format, body: &[u8]) -> Result<Accepted, Refusal> {
        let n = match f {
            Format::Protobuf => decode::decode_logs_proto(body),
            Format::Json => decode::decode_logs_json(body),
        }
        .map_err(decode_refusal)?;
        let s = SignalKind::Logs;
        self.metrics.record_decoded(t, s, n, 0);
        self.metrics.record_accepted(t, s, n);
        self.metrics.record_not_analysed(t, s, n);
        Ok(Accepted::default())
    }

    fn push(&self, t: Transport, s: SignalKind, item: IngestItem, n: u64) -> Result<(), Refusal> {
        match self.queue.try_push(item) {
            Ok(()) => {
                self.metrics.record_accepted(t, s, n);
                Ok(())
            }
            Err(e) => {
                self.metrics.record_refused_items(t, s, n);
                let reason = match e {
                    QueueError::Full { .. } => RefusalReason::QueueFull,
                    QueueError::Closed => RefusalReason::ShuttingDown,
                };
                Err(Refusal::new(reason, format!("{e}; retry later")))
            }
        }
    }
}

/// Encodes the `Export*ServiceResponse` for an accepted request. `partial_success` is set
/// only when something was rejected, as the specification asks.
pub fn encode_response(s: SignalKind, f: Format, a: &Accepted) -> Bytes {
    let partial = a.rejected > 0 || !a.message.is_empty();
    match f {
        Format::Protobuf => Bytes::from(encode_proto(s, partial.then_some(a))),
        Format::Json => Bytes::from(encode_json(s, partial.then_some(a))),
    }
}

fn encode_proto(s: SignalKind, a: Option<&Accepted>) -> Vec<u8> {
    let msg = |a: &Accepted| a.message.clone();
    let rejected = |a: &Accepted| a.rejected as i64;
    match s {
        SignalKind::Traces => trace::ExportTraceServiceResponse {
            partial_success: a.map(|a| trace::ExportTracePartialSuccess {
                rejected_spans: rejected(a),
                error_message: msg(a),
            }),
        }
        .encode_to_vec(),
        SignalKind::Metrics => metrics::ExportMetricsServiceResponse {
            partial_success: a.map(|a| metrics::ExportMetricsPartialSuccess {
                rejected_data_points: rejected(a),
                error_message: msg(a),
            }),
        }
        .encode_to_vec(),
        SignalKind::Logs => logs::ExportLogsServiceResponse {
            partial_success: a.map(|a| logs::ExportLogsPartialSuccess {
                rejected_log_records: rejected(a),
                error_message: msg(a),
            }),
        }
        .encode_to_vec(),
    }
}

/// OTLP/JSON response: lowerCamelCase fields, int64 as a decimal string.
fn encode_json(s: SignalKind, a: Option<&Accepted>) -> Vec<u8> {
    let Some(a) = a else {
        return b"{}".to_vec();
    };
    let field = match s {
        SignalKind::Traces => "rejectedSpans",
        SignalKind::Metrics => "rejectedDataPoints",
        SignalKind::Logs => "rejectedLogRecords",
    };
    let body = serde_json::json!({
        "partialSuccess": { field: a.rejected.to_string(), "errorMessage": a.message }
    });
    body.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_carry_partial_success_only_when_rejecting() {
        let ok = Accepted::default();
        assert!(encode_response(SignalKind::Traces, Format::Protobuf, &ok).is_empty());
        assert_eq!(
            &encode_response(SignalKind::Traces, Format::Json, &ok)[..],
            b"{}"
        );
        let some = Accepted {
            rejected: 2,
            message: "bad ids".into(),
        };
        let pb = encode_response(SignalKind::Traces, Format::Protobuf, &some);
        let resp = trace::ExportTraceServiceResponse::decode(pb).unwrap();
        assert_eq!(resp.partial_success.unwrap().rejected_spans, 2);
        let js: serde_json::Value =
            serde_json::from_slice(&encode_response(SignalKind::Metrics, Format::Json, &some))
                .unwrap();
        assert_eq!(js["partialSuccess"]["rejectedDataPoints"], "2");
        assert_eq!(js["partialSuccess"]["errorMessage"], "bad ids");
    }
}
