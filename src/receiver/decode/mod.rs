//! Decode + normalize: pure functions that turn OTLP request bodies (protobuf or JSON)
//! into the compact records of [`crate::model`]. The receivers (gRPC, HTTP) call these and
//! queue the result for analysis.
//!
//! Policies (reliability.md bad-input classes owned here):
//! - 1/2: a body that is not a valid protobuf / OTLP-JSON message is a [`DecodeError`].
//! - 10: invalid UTF-8 in any string the receiver uses (resource identity attributes, span
//!   name, keying span attributes; every string for metrics, logs and JSON, which are
//!   decoded in full) rejects the whole request with [`DecodeError::InvalidUtf8`]. Strings
//!   the trace decoder never reads (events, links, other attributes) are not inspected.
//! - 11: spans with a trace id that is not 16 bytes or all zero, a span id that is not 8
//!   bytes or all zero, or a parent span id that is neither empty nor 8 bytes are
//!   rejected one by one (partial success); the rest of the request is accepted.
//! - 12: unusable timestamps keep the span (it counts as a request) with
//!   `timing_valid = false`, counted in [`NormalizeStats::invalid_timing`].
//! - 13: a resource without `service.name` is accepted as `unknown_service`, counted.
//! - 14: keying values longer than [`MAX_KEY_BYTES`] are truncated, counted.
//! - 16: an empty request decodes to nothing, successfully.

mod attrs;
mod delta;
mod json;
mod logs;
mod metrics;
mod normalize;
mod resource_cache;
mod traces;
mod wire;

pub use delta::DeltaConverter;
pub use json::{decode_logs_json, decode_metrics_json, decode_traces_json};
pub use logs::decode_logs_proto;
pub use metrics::decode_metrics_proto;
pub use metrics::MetricStats;
pub use normalize::{MAX_FUTURE_NS, MAX_KEY_BYTES, MAX_PAST_NS};
pub use traces::decode_traces_proto;

use crate::model::{MetricBatch, SpanRecord};
use std::borrow::Cow;

/// Counters for accepted-but-imperfect input (bad-input classes 11-14). Spans and metric
/// points are counted one by one; truncations once per truncated value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NormalizeStats {
    /// Items whose resource has no (or an empty) `service.name` (class 13).
    pub missing_service: u64,
    /// Items whose timestamps are unusable for latency (class 12).
    pub invalid_timing: u64,
    /// Keying values cut to [`MAX_KEY_BYTES`] (class 14).
    pub truncated_keys: u64,
    /// Spans rejected for their trace id (class 11).
    pub invalid_trace_id: u64,
    /// Spans rejected for their span id or parent span id (class 11).
    pub invalid_span_id: u64,
}

impl NormalizeStats {
    /// Adds another request's counters.
    pub fn add(&mut self, other: &NormalizeStats) {
        self.missing_service += other.missing_service;
        self.invalid_timing += other.invalid_timing;
        self.truncated_keys += other.truncated_keys;
        self.invalid_trace_id += other.invalid_trace_id;
        self.invalid_span_id += other.invalid_span_id;
    }
}

/// Result of decoding one trace export request.
#[derive(Debug, Default)]
pub struct TraceDecode {
    /// Accepted spans, in request order.
    pub spans: Vec<SpanRecord>,
    /// Spans rejected (class 11): report as `partial_success.rejected_spans`.
    pub rejected_spans: u64,
    /// Why spans were rejected (empty when none were): `partial_success.error_message`.
    pub rejection_message: String,
    pub stats: NormalizeStats,
}

/// Result of decoding one metrics export request.
#[derive(Debug, Default)]
pub struct MetricsDecode {
    /// Request-duration deltas; other metrics are accepted and ignored.
    pub batch: MetricBatch,
    /// Data points rejected as malformed: `partial_success.rejected_data_points`.
    pub rejected_points: u64,
    /// Why points were rejected (empty when none were).
    pub rejection_message: String,
    pub stats: NormalizeStats,
    /// Metric-specific counters for this request (ignored metrics, cumulative-to-delta).
    pub metric: MetricStats,
}

/// Why a request body could not be decoded at all. Every variant is non-retryable
/// (gRPC `INVALID_ARGUMENT`, HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Class 1: the body is not a valid protobuf encoding of the export request.
    #[error("body is not a valid OTLP protobuf message: {reason} in {message} at byte {offset}")]
    InvalidProtobuf {
        /// The message type being read.
        message: &'static str,
        reason: &'static str,
        /// Offset within that message.
        offset: usize,
    },
    /// Class 1 for messages decoded with prost (metrics, logs).
    #[error("body is not a valid OTLP protobuf message: {0}")]
    Protobuf(String),
    /// Class 10: a string field is not valid UTF-8.
    #[error("invalid UTF-8 in string field `{field}`")]
    InvalidUtf8 { field: Cow<'static, str> },
    /// Class 2: the body is not valid OTLP/JSON (syntax, types, base64 instead of hex ids,
    /// enum names instead of integers, ...).
    #[error("invalid OTLP/JSON: {0} (ids are hex strings, enums integers, 64-bit integers decimal strings or numbers)")]
    InvalidJson(String),
}

impl DecodeError {
    /// Short reason label for counters (`invalid_protobuf`, `invalid_utf8`, `invalid_json`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidProtobuf { .. } | Self::Protobuf(_) => "invalid_protobuf",
            Self::InvalidUtf8 { .. } => "invalid_utf8",
            Self::InvalidJson(_) => "invalid_json",
        }
    }

    /// Classifies a prost error: prost reports invalid UTF-8 as a decode error with that
    /// description, which is class 10, not class 1.
    pub(crate) fn from_prost(e: &prost::DecodeError) -> Self {
        let text = e.to_string();
        if text.contains("UTF-8") {
            Self::InvalidUtf8 { field: text.into() }
        } else {
            Self::Protobuf(text)
        }
    }
}

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod tests;
