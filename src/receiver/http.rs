//! OTLP/HTTP: `POST /v1/traces`, `/v1/metrics`, `/v1/logs` with protobuf or JSON bodies,
//! gzip/zstd `Content-Encoding`, limits checked after decompression, and answers in the
//! request's content type (the `Export*ServiceResponse`, or a `google.rpc.Status` on error).

use crate::receiver::export::{encode_response, Exporter, Format, Refusal};
use crate::receiver::limits::{self, Encoding};
use crate::receiver::metrics::{RefusalReason, SignalKind, Transport};
use crate::receiver::reply::{ReplyBody, RpcStatus};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use prost::Message;
use std::convert::Infallible;
use std::sync::Arc;

const T: Transport = Transport::Http;
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn route(path: &str) -> Option<SignalKind> {
    match path {
        "/v1/traces" => Some(SignalKind::Traces),
        "/v1/metrics" => Some(SignalKind::Metrics),
        "/v1/logs" => Some(SignalKind::Logs),
        _ => None,
    }
}

/// Handles one OTLP/HTTP request.
pub async fn handle(
    ex: Arc<Exporter>,
    req: Request<Incoming>,
) -> Result<Response<ReplyBody>, Infallible> {
    let Some(s) = route(req.uri().path()) else {
        let msg = format!(
            "no OTLP endpoint at {} (use /v1/traces, /v1/metrics or /v1/logs)",
            req.uri().path()
        );
        let r = ex.refuse(T, None, Refusal::new(RefusalReason::NotFound, msg));
        return Ok(error_response(&ex, None, &r));
    };
    if req.method() != Method::POST {
        let r = ex.refuse(
            T,
            Some(s),
            Refusal::new(
                RefusalReason::MethodNotAllowed,
                format!("{} is not allowed; use POST", req.method()),
            ),
        );
        let mut resp = error_response(&ex, None, &r);
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Ok(resp);
    }
    let Some(format) = content_format(&req) else {
        let msg = format!(
            "unsupported Content-Type {:?} (use {PROTOBUF} or {JSON})",
            req.headers().get(header::CONTENT_TYPE)
        );
        let r = ex.refuse(
            T,
            Some(s),
            Refusal::new(RefusalReason::UnsupportedMediaType, msg),
        );
        return Ok(error_response(&ex, None, &r));
    };
    Ok(match export(&ex, s, format, req).await {
        Ok(body) => reply(StatusCode::OK, format, body),
        Err(r) => error_response(&ex, Some(format), &r),
    })
}

fn content_format(req: &Request<Incoming>) -> Option<Format> {
    let v = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = v.split(';').next()?.trim().to_ascii_lowercase();
    match mime.as_str() {
        PROTOBUF => Some(Format::Protobuf),
        JSON => Some(Format::Json),
        _ => None,
    }
}

async fn export(
    ex: &Exporter,
    s: SignalKind,
    f: Format,
    req: Request<Incoming>,
) -> Result<Bytes, Refusal> {
    let refuse = |r: Refusal| ex.refuse(T, Some(s), r);
    let encoding = Encoding::parse(
        req.headers()
            .get(header::CONTENT_ENCODING)
            .map(HeaderValue::as_bytes),
    )
    .map_err(|e| {
        refuse(Refusal::new(
            RefusalReason::UnsupportedEncoding,
            format!("Content-Encoding {e:?} is not supported (use gzip, zstd or none)"),
        ))
    })?;
    let limit = ex.limits.max_request_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(refuse(Refusal::new(
            RefusalReason::TooLarge,
            format!("Content-Length exceeds the limit of {limit} bytes"),
        )));
    }
    let _slot = ex.admit(T, s)?;
    let body = limits::read_body(req.into_body(), limit, ex.limits.request_timeout)
        .await
        .map_err(|e| refuse(e.into()))?;
    let body = limits::decompress(encoding, body, limit).map_err(|e| refuse(e.into()))?;
    let accepted = ex.export(T, s, f, &body)?;
    Ok(encode_response(s, f, &accepted))
}

/// The HTTP status of a refusal.
pub fn status(r: RefusalReason) -> StatusCode {
    match r {
        RefusalReason::InvalidProtobuf
        | RefusalReason::InvalidJson
        | RefusalReason::InvalidUtf8
        | RefusalReason::CorruptCompression
        | RefusalReason::BadFraming => StatusCode::BAD_REQUEST,
        RefusalReason::UnsupportedMediaType | RefusalReason::UnsupportedEncoding => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        RefusalReason::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        RefusalReason::NotFound => StatusCode::NOT_FOUND,
        RefusalReason::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RefusalReason::QueueFull | RefusalReason::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        RefusalReason::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        RefusalReason::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
    }
}

/// An error answer: a `google.rpc.Status` in the request's format, plain text when the
/// format is unknown; `Retry-After` on retryable refusals.
fn error_response(ex: &Exporter, f: Option<Format>, r: &Refusal) -> Response<ReplyBody> {
    let code = crate::receiver::grpc::code(r.reason) as i32;
    let rpc = RpcStatus {
        code,
        message: r.message.clone(),
        details: Vec::new(),
    };
    let http_status = status(r.reason);
    let mut resp = match f {
        Some(Format::Protobuf) => reply(
            http_status,
            Format::Protobuf,
            Bytes::from(rpc.encode_to_vec()),
        ),
        Some(Format::Json) => {
            let body = serde_json::json!({ "code": code, "message": r.message });
            reply(http_status, Format::Json, Bytes::from(body.to_string()))
        }
        None => {
            let mut resp = Response::new(ReplyBody::data(Bytes::from(format!("{}\n", r.message))));
            *resp.status_mut() = http_status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            resp
        }
    };
    if r.reason.retryable() {
        let secs = ex.limits.retry_after.as_secs().max(1);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn reply(code: StatusCode, f: Format, body: Bytes) -> Response<ReplyBody> {
    let mut resp = Response::new(ReplyBody::data(body));
    *resp.status_mut() = code;
    let ct = match f {
        Format::Protobuf => PROTOBUF,
        Format::Json => JSON,
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_reliability_table() {
        assert_eq!(
            status(RefusalReason::TooLarge),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status(RefusalReason::UnsupportedEncoding),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            status(RefusalReason::QueueFull),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(status(RefusalReason::InvalidUtf8), StatusCode::BAD_REQUEST);
    }
}
