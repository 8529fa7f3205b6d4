//! OTLP/JSON (cold path): parsed with `opentelemetry-proto`'s serde types (hex ids,
//! integer enums, 64-bit integers as strings or numbers), then normalized by the same code
//! as protobuf: traces are re-encoded and run through the wire decoder, metrics go through
//! the shared metric normalization.

use super::logs::count_records;
use super::metrics::normalize_metrics;
use super::{decode_traces_proto, DecodeError, DeltaConverter, MetricsDecode, TraceDecode};
use crate::model::UnixNanos;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::de::DeserializeOwned;

/// Parses an OTLP/JSON body. An empty (or all-whitespace) body is an empty request.
fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| DecodeError::InvalidUtf8 {
        field: format!("request body (byte {})", e.valid_up_to()).into(),
    })?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Ok(T::default());
    }
    // serde's derived structs also accept a JSON array (their sequence form); an OTLP/JSON
    // request is always an object.
    if !trimmed.starts_with('{') {
        return Err(DecodeError::InvalidJson(
            "the request must be a JSON object".into(),
        ));
    }
    serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson(e.to_string()))
}

/// Decodes and normalizes an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode_traces_json(body: &[u8], now: UnixNanos) -> Result<TraceDecode, DecodeError> {
    let req: ExportTraceServiceRequest = parse(body)?;
    decode_traces_proto(&req.encode_to_vec(), now)
}

/// Decodes and normalizes an OTLP/JSON `ExportMetricsServiceRequest`.
pub fn decode_metrics_json(
    body: &[u8],
    conv: &DeltaConverter,
    now: UnixNanos,
) -> Result<MetricsDecode, DecodeError> {
    let req: ExportMetricsServiceRequest = parse(body)?;
    normalize_metrics(&req, conv, now)
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest` and returns its log record count.
pub fn decode_logs_json(body: &[u8]) -> Result<u64, DecodeError> {
    let req: ExportLogsServiceRequest = parse(body)?;
    Ok(count_records(&req))
}
