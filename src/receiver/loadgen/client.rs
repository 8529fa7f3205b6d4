//! A raw OTLP/gRPC client: sends already-encoded export requests through tonic with a
//! pass-through codec (no re-encoding per request), and reads partial success and
//! RetryInfo from the answers. Used by the load runner and the receiver tests.

use crate::receiver::grpc::{LOGS_PATH, METRICS_PATH, TRACES_PATH};
use crate::receiver::reply::{RetryInfo, RpcStatus, RETRY_INFO_TYPE};
use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use std::time::Duration;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// A codec whose messages are already-encoded protobuf bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// Writes bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

/// Reads a whole message as bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Why an export did not succeed.
#[derive(Debug)]
pub enum SendError {
    /// UNAVAILABLE, or RESOURCE_EXHAUSTED with RetryInfo: resend after the delay.
    Retryable(Duration),
    /// Anything else: do not resend.
    Failed(Status),
}

/// One HTTP/2 connection to an OTLP/gRPC receiver. Clones share the connection.
#[derive(Clone)]
pub struct RawOtlpClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl RawOtlpClient {
    /// Connects to `target` (e.g. `http://127.0.0.1:4317`).
    pub async fn connect(target: &str) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(target.to_string())?
            .tcp_nodelay(true)
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(16 << 20)
            .connect()
            .await?;
        Ok(Self {
            grpc: tonic::client::Grpc::new(channel).max_decoding_message_size(64 << 20),
        })
    }

    /// Compresses requests with `encoding` from now on.
    pub fn compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.grpc = self.grpc.send_compressed(encoding);
        self
    }

    /// Sends raw bytes to a full method path; the raw answer or the status.
    pub async fn call(&mut self, path: &'static str, body: Bytes) -> Result<Bytes, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let resp = self
            .grpc
            .unary(
                tonic::Request::new(body),
                PathAndQuery::from_static(path),
                RawCodec,
            )
            .await?;
        Ok(resp.into_inner())
    }

    /// Exports an encoded `ExportTraceServiceRequest`; the number of rejected spans.
    pub async fn export_traces(&mut self, body: Bytes) -> Result<u64, SendError> {
        match self.call(TRACES_PATH, body).await {
            Ok(resp) => {
                let r = ExportTraceServiceResponse::decode(resp)
                    .map_err(|e| SendError::Failed(Status::internal(e.to_string())))?;
                Ok(r.partial_success
                    .map_or(0, |p| p.rejected_spans.max(0) as u64))
            }
            Err(s) => Err(classify(s)),
        }
    }

    /// Sends to the metrics or logs service (tests).
    pub async fn export_raw(&mut self, signal: &str, body: Bytes) -> Result<Bytes, Status> {
        let path = match signal {
            "metrics" => METRICS_PATH,
            "logs" => LOGS_PATH,
            _ => TRACES_PATH,
        };
        self.call(path, body).await
    }
}

/// The delay a status asks for when it is retryable, as OTLP exporters decide it.
pub fn retry_delay(s: &Status) -> Option<Duration> {
    let hinted = RpcStatus::decode(s.details()).ok().and_then(|st| {
        st.details
            .iter()
            .find(|d| d.type_url == RETRY_INFO_TYPE)
            .and_then(|d| RetryInfo::decode(&d.value[..]).ok()?.retry_delay)
            .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
    });
    match s.code() {
        Code::Unavailable
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::DataLoss => Some(hinted.unwrap_or(Duration::from_millis(5))),
        Code::ResourceExhausted => hinted,
        _ => None,
    }
}

fn classify(s: Status) -> SendError {
    match retry_delay(&s) {
        Some(d) => SendError::Retryable(d),
        None => SendError::Failed(s),
    }
}
