//! OTLP/gRPC: the `TraceService`, `MetricsService` and `LogsService` `Export` methods,
//! served as raw unary gRPC over hyper's HTTP/2. The request message reaches the decoder as
//! bytes (no prost decode of the whole request), and the receiver does the gRPC framing and
//! decompression itself, because tonic answers an oversized message with OUT_OF_RANGE
//! (retried by OTLP clients) and a corrupt compressed one with INTERNAL; here oversized is
//! RESOURCE_EXHAUSTED without RetryInfo and corrupt input INVALID_ARGUMENT (reliability.md).

use crate::receiver::export::{encode_response, Exporter, Format, Refusal};
use crate::receiver::limits::{self, Encoding};
use crate::receiver::metrics::{RefusalReason, SignalKind, Transport};
use crate::receiver::reply::{status_with_retry, ReplyBody};
use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::Arc;
use tonic::{Code, Status};

/// Full method paths of the OTLP export services.
pub const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
pub const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
pub const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

const T: Transport = Transport::Grpc;
const ACCEPT_ENCODING: &str = "identity,gzip,zstd";

fn route(path: &str) -> Option<SignalKind> {
    match path {
        TRACES_PATH => Some(SignalKind::Traces),
        METRICS_PATH => Some(SignalKind::Metrics),
        LOGS_PATH => Some(SignalKind::Logs),
        _ => None,
    }
}

/// Handles one gRPC request; every outcome is an HTTP 200 with a gRPC status, except a
/// content type that is not gRPC at all (HTTP 415, as the gRPC protocol asks).
pub async fn handle(
    ex: Arc<Exporter>,
    req: Request<Incoming>,
) -> Result<Response<ReplyBody>, Infallible> {
    let Some(s) = route(req.uri().path()) else {
        let msg = format!("unknown service or method {}", req.uri().path());
        let r = ex.refuse(T, None, Refusal::new(RefusalReason::NotFound, msg));
        return Ok(status_response(&ex, &r));
    };
    if !is_grpc(req.headers()) {
        ex.refuse(
            T,
            Some(s),
            Refusal::new(RefusalReason::UnsupportedMediaType, "not gRPC"),
        );
        let mut resp = Response::new(ReplyBody::default());
        *resp.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Ok(resp);
    }
    Ok(match export(&ex, s, req).await {
        Ok(body) => ok_response(body),
        Err(r) => status_response(&ex, &r),
    })
}

fn is_grpc(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v == "application/grpc"
                || v.starts_with("application/grpc+proto")
                || v.starts_with("application/grpc;")
        })
}

async fn export(ex: &Exporter, s: SignalKind, req: Request<Incoming>) -> Result<Bytes, Refusal> {
    let encoding = Encoding::parse(
        req.headers()
            .get("grpc-encoding")
            .map(HeaderValue::as_bytes),
    )
    .map_err(|e| {
        ex.refuse(
            T,
            Some(s),
            Refusal::new(
                RefusalReason::UnsupportedEncoding,
                format!("grpc-encoding {e:?} is not supported (use gzip, zstd or identity)"),
            ),
        )
    })?;
    let _slot = ex.admit(T, s)?;
    let limit = ex.limits.max_request_bytes;
    let body = limits::read_body(
        req.into_body(),
        limit.saturating_add(5),
        ex.limits.request_timeout,
    )
    .await
    .map_err(|e| ex.refuse(T, Some(s), e.into()))?;
    let message = unframe(body, encoding, limit).map_err(|r| ex.refuse(T, Some(s), r))?;
    let accepted = ex.export(T, s, Format::Protobuf, &message)?;
    Ok(encode_response(s, Format::Protobuf, &accepted))
}

/// The one message of a unary request, decompressed under the limit.
fn unframe(body: Bytes, encoding: Encoding, limit: usize) -> Result<Bytes, Refusal> {
    let framing = |m: String| Refusal::new(RefusalReason::BadFraming, m);
    if body.len() < 5 {
        return Err(framing(format!(
            "a unary request carries exactly one length-prefixed message; got {} bytes",
            body.len()
        )));
    }
    let compressed = body[0];
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if len > limit {
        let msg = format!("message of {len} bytes exceeds the limit of {limit} bytes");
        return Err(Refusal::new(RefusalReason::TooLarge, msg));
    }
    if body.len() != 5 + len {
        return Err(framing(format!(
            "message length prefix says {len} bytes but the request carries {}",
            body.len() - 5
        )));
    }
    let message = body.slice(5..);
    match (compressed, encoding) {
        (0, _) => Ok(message),
        (1, Encoding::Identity) => Err(framing("compressed flag set without grpc-encoding".into())),
        (1, enc) => limits::decompress(enc, message, limit).map_err(Refusal::from),
        (f, _) => Err(framing(format!("invalid compressed flag {f}"))),
    }
}

/// The gRPC code of a refusal.
pub fn code(r: RefusalReason) -> Code {
    match r {
        RefusalReason::InvalidProtobuf
        | RefusalReason::InvalidJson
        | RefusalReason::InvalidUtf8
        | RefusalReason::CorruptCompression
        | RefusalReason::BadFraming => Code::InvalidArgument,
        RefusalReason::UnsupportedMediaType
        | RefusalReason::MethodNotAllowed
        | RefusalReason::NotFound
        | RefusalReason::UnsupportedEncoding => Code::Unimplemented,
        RefusalReason::TooLarge => Code::ResourceExhausted,
        RefusalReason::QueueFull | RefusalReason::Overloaded | RefusalReason::ShuttingDown => {
            Code::Unavailable
        }
        RefusalReason::BodyTimeout => Code::DeadlineExceeded,
    }
}

fn status_response(ex: &Exporter, r: &Refusal) -> Response<ReplyBody> {
    let c = code(r.reason);
    let status = if r.reason.retryable() && c == Code::Unavailable {
        Status::with_details(
            c,
            r.message.clone(),
            status_with_retry(c as i32, &r.message, ex.limits.retry_after),
        )
    } else {
        Status::new(c, r.message.clone())
    };
    let mut resp: Response<ReplyBody> = status.into_http();
    if r.reason == RefusalReason::UnsupportedEncoding {
        resp.headers_mut().insert(
            "grpc-accept-encoding",
            HeaderValue::from_static(ACCEPT_ENCODING),
        );
    }
    resp
}

fn ok_response(message: Bytes) -> Response<ReplyBody> {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.extend_from_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut resp = Response::new(ReplyBody::with_trailers(framed.freeze(), trailers));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(
        "grpc-accept-encoding",
        HeaderValue::from_static(ACCEPT_ENCODING),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, msg: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_u8(flag);
        b.put_u32(msg.len() as u32);
        b.extend_from_slice(msg);
        b.freeze()
    }

    #[test]
    fn unframes_one_message_and_refuses_bad_framing() {
        assert_eq!(
            unframe(frame(0, b"abc"), Encoding::Identity, 10).unwrap(),
            &b"abc"[..]
        );
        let r = unframe(frame(0, b"abcdef"), Encoding::Identity, 3).unwrap_err();
        assert_eq!(r.reason, RefusalReason::TooLarge);
        let mut two = frame(0, b"a").to_vec();
        two.extend_from_slice(&frame(0, b"b"));
        assert_eq!(
            unframe(Bytes::from(two), Encoding::Identity, 10)
                .unwrap_err()
                .reason,
            RefusalReason::BadFraming
        );
        assert_eq!(
            unframe(Bytes::new(), Encoding::Identity, 10)
                .unwrap_err()
                .reason,
            RefusalReason::BadFraming
        );
        assert_eq!(
            unframe(frame(1, b"x"), Encoding::Identity, 10)
                .unwrap_err()
                .reason,
            RefusalReason::BadFraming
        );
    }

    #[test]
    fn codes_follow_the_reliability_table() {
        assert_eq!(code(RefusalReason::TooLarge), Code::ResourceExhausted);
        assert_eq!(code(RefusalReason::QueueFull), Code::Unavailable);
        assert_eq!(
            code(RefusalReason::CorruptCompression),
            Code::InvalidArgument
        );
        assert_eq!(
            code(RefusalReason::UnsupportedEncoding),
            Code::Unimplemented
        );
    }
}
