//! Logs path: verdict accepts OTLP logs (so a Collector pipeline exporting all signals
//! keeps working) and counts their records, but does not analyse them.

use super::DecodeError;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

/// Decodes an OTLP/protobuf `ExportLogsServiceRequest` and returns its log record count.
pub fn decode_logs_proto(body: &[u8]) -> Result<u64, DecodeError> {
    let req = ExportLogsServiceRequest::decode(body).map_err(|e| DecodeError::from_prost(&e))?;
    Ok(count_records(&req))
}

/// Log records in a request.
pub(crate) fn count_records(req: &ExportLogsServiceRequest) -> u64 {
    req.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len() as u64)
        .sum()
}
