//! Normalization rules (architecture.md section 1): borrowed attribute views in, compact
//! model values out. Shared by the wire decoder (traces) and the prost paths (metrics,
//! reference decoder), so every transport normalizes identically.

use super::attrs::{ResourceAttrs, SpanAttrs, Val};
use super::{DecodeError, NormalizeStats};
use crate::model::{Name, NodeKind, Peer, Resource, SpanKind, UnixNanos, UNKNOWN_SERVICE};

/// Keying values (service, version, operation, peer, ...) longer than this many bytes are
/// cut at a character boundary and counted in `truncated_keys`.
pub const MAX_KEY_BYTES: usize = 256;

/// Spans ending more than this far after `now` have unusable timing (clock skew allowance).
pub const MAX_FUTURE_NS: u64 = 15 * 60 * 1_000_000_000;

/// Spans starting more than this far before `now` have unusable timing.
pub const MAX_PAST_NS: u64 = 24 * 3600 * 1_000_000_000;

/// OTLP `Status.code` for ERROR.
const STATUS_ERROR: i32 = 2;

/// Checks UTF-8 of a string the receiver uses; `field` names it in the error.
#[inline]
pub(crate) fn utf8<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 {
        field: field.into(),
    })
}

/// Cuts `s` to at most [`MAX_KEY_BYTES`] at a character boundary, counting cuts.
#[inline]
pub(crate) fn truncate<'a>(s: &'a str, stats: &mut NormalizeStats) -> &'a str {
    if s.len() <= MAX_KEY_BYTES {
        return s;
    }
    stats.truncated_keys += 1;
    let mut end = MAX_KEY_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A checked, truncated name.
#[inline]
pub(crate) fn name(
    bytes: &[u8],
    field: &'static str,
    stats: &mut NormalizeStats,
) -> Result<Name, DecodeError> {
    Ok(Name::new(truncate(utf8(bytes, field)?, stats)))
}

fn opt_name(
    bytes: Option<&[u8]>,
    field: &'static str,
    stats: &mut NormalizeStats,
) -> Result<Name, DecodeError> {
    bytes.map_or(Ok(Name::default()), |b| name(b, field, stats))
}

/// A resource and whether it lacked `service.name` (counted per span/point by callers).
#[derive(Debug, Clone)]
pub(crate) struct NormalResource {
    pub resource: std::sync::Arc<Resource>,
    pub missing_service: bool,
}

/// Builds the resource identity: environment, service, version, instance, k8s deployment.
pub(crate) fn resource(
    a: &ResourceAttrs<'_>,
    stats: &mut NormalizeStats,
) -> Result<NormalResource, DecodeError> {
    let service = a.service.filter(|s| !s.is_empty());
    let environment = a.environment_name.or(a.environment);
    let instance = a.instance_id.or(a.pod_name);
    let resource = Resource {
        environment: opt_name(environment, "deployment.environment.name", stats)?,
        service: match service {
            Some(s) => name(s, "service.name", stats)?,
            None => Name::new_static(UNKNOWN_SERVICE),
        },
        version: opt_name(a.version, "service.version", stats)?,
        instance: opt_name(instance, "service.instance.id", stats)?,
        k8s_deployment: match a.k8s_deployment {
            Some(d) => Some(name(d, "k8s.deployment.name", stats)?),
            None => None,
        },
    };
    Ok(NormalResource {
        resource: std::sync::Arc::new(resource),
        missing_service: service.is_none(),
    })
}

/// Operation: `METHOD route` (or `route`), else `rpc.service/rpc.method`, else `fallback`
/// (the span name, or the metric name for metric points). `scratch` is reused to avoid an
/// allocation per span.
pub(crate) fn operation(
    a: &SpanAttrs<'_>,
    fallback: &[u8],
    scratch: &mut String,
    stats: &mut NormalizeStats,
) -> Result<Name, DecodeError> {
    if let Some(route) = a.http_route {
        let route = utf8(route, "http.route")?;
        let Some(method) = a.method() else {
            return Ok(Name::new(truncate(route, stats)));
        };
        return joined(
            utf8(method, "http.request.method")?,
            " ",
            route,
            scratch,
            stats,
        );
    }
    match (a.rpc_service, a.rpc_method) {
        (Some(svc), Some(m)) => {
            let (svc, m) = (utf8(svc, "rpc.service")?, utf8(m, "rpc.method")?);
            joined(svc, "/", m, scratch, stats)
        }
        (None, Some(m)) => name(m, "rpc.method", stats),
        _ => name(fallback, "name", stats),
    }
}

fn joined(
    a: &str,
    sep: &str,
    b: &str,
    scratch: &mut String,
    stats: &mut NormalizeStats,
) -> Result<Name, DecodeError> {
    scratch.clear();
    scratch.push_str(a);
    scratch.push_str(sep);
    scratch.push_str(b);
    Ok(Name::new(truncate(scratch, stats)))
}

/// gRPC status codes a server reports as its own failure (semantic conventions):
/// UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
fn grpc_server_failure(code: i64) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// gRPC status code from its canonical name (`rpc.response.status_code` in newer
/// conventions), or from a decimal string.
fn grpc_code(v: Val<'_>) -> Option<i64> {
    const NAMES: [&[u8]; 17] = [
        b"OK",
        b"CANCELLED",
        b"UNKNOWN",
        b"INVALID_ARGUMENT",
        b"DEADLINE_EXCEEDED",
        b"NOT_FOUND",
        b"ALREADY_EXISTS",
        b"PERMISSION_DENIED",
        b"RESOURCE_EXHAUSTED",
        b"FAILED_PRECONDITION",
        b"ABORTED",
        b"OUT_OF_RANGE",
        b"UNIMPLEMENTED",
        b"INTERNAL",
        b"UNAVAILABLE",
        b"DATA_LOSS",
        b"UNAUTHENTICATED",
    ];
    if let Some(s) = v.str() {
        if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Some(i as i64);
        }
    }
    v.int()
}

/// Error rules: status ERROR; HTTP 5xx on any span, 4xx on CLIENT spans; gRPC server
/// failure codes on non-client spans, any non-OK code on CLIENT spans.
pub(crate) fn is_error(kind: SpanKind, status_code: i32, a: &SpanAttrs<'_>) -> bool {
    if status_code == STATUS_ERROR {
        return true;
    }
    let client = kind == SpanKind::Client;
    if let Some(code) = a.http_status() {
        if code >= 500 || (client && (400..500).contains(&code)) {
            return true;
        }
    }
    let grpc = a
        .rpc_grpc_status_code
        .or_else(|| a.rpc_response_status_code.and_then(grpc_code));
    match grpc {
        Some(code) if client => code != 0,
        Some(code) => grpc_server_failure(code),
        None => false,
    }
}

/// The far end of an outgoing (CLIENT/PRODUCER) span, `None` for other kinds.
pub(crate) fn peer(
    kind: SpanKind,
    a: &SpanAttrs<'_>,
    scratch: &mut String,
    stats: &mut NormalizeStats,
) -> Result<Option<Peer>, DecodeError> {
    if !kind.is_outgoing() {
        return Ok(None);
    }
    let address = a.server_address.or(a.net_peer_name);
    let (kind, name) = if let Some(svc) = a.service_peer_name.or(a.peer_service) {
        (NodeKind::Service, name(svc, "service.peer.name", stats)?)
    } else if let Some(system) = a.db_system_name.or(a.db_system) {
        let detail = a.db_namespace.or(a.db_name).or(address);
        (
            NodeKind::Database,
            qualified(system, detail, "db.system.name", scratch, stats)?,
        )
    } else if let Some(system) = a.messaging_system {
        let dest = a.messaging_destination_name.or(a.messaging_destination);
        (
            NodeKind::Messaging,
            qualified(system, dest, "messaging.system", scratch, stats)?,
        )
    } else if let Some(addr) = address {
        (NodeKind::External, name(addr, "server.address", stats)?)
    } else {
        return Ok(None);
    };
    Ok(Some(Peer { kind, name }))
}

/// `system/detail`, or `system` alone.
fn qualified(
    system: &[u8],
    detail: Option<&[u8]>,
    field: &'static str,
    scratch: &mut String,
    stats: &mut NormalizeStats,
) -> Result<Name, DecodeError> {
    let system = utf8(system, field)?;
    match detail {
        Some(d) => joined(system, "/", utf8(d, field)?, scratch, stats),
        None => Ok(Name::new(truncate(system, stats))),
    }
}

/// Whether timestamps can be used for latency: both set, end not before start, end not far
/// in the future and start not far in the past relative to `now`.
#[inline]
pub(crate) fn timing_valid(start: UnixNanos, end: UnixNanos, now: UnixNanos) -> bool {
    start != 0
        && end >= start
        && end <= now.saturating_add(MAX_FUTURE_NS)
        && start >= now.saturating_sub(MAX_PAST_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> NormalizeStats {
        NormalizeStats::default()
    }

    #[test]
    fn truncation_respects_char_boundaries_and_counts() {
        let mut st = stats();
        let long = "é".repeat(200); // 400 bytes, 2 per char
        let cut = truncate(&long, &mut st);
        assert_eq!(cut.len(), 256);
        assert_eq!(st.truncated_keys, 1);
        let odd = format!("a{}", "é".repeat(200));
        assert_eq!(truncate(&odd, &mut st).len(), 255);
        assert_eq!(st.truncated_keys, 2);
        assert_eq!(truncate("short", &mut st), "short");
        assert_eq!(st.truncated_keys, 2);
    }

    #[test]
    fn operation_prefers_route_then_rpc_then_name() {
        let mut s = String::new();
        let mut st = stats();
        let mut a = SpanAttrs {
            http_route: Some(b"/api/cart"),
            http_method: Some(b"GET"),
            rpc_service: Some(b"Cart"),
            rpc_method: Some(b"Get"),
            ..Default::default()
        };
        assert_eq!(
            operation(&a, b"n", &mut s, &mut st).unwrap(),
            "GET /api/cart"
        );
        a.http_request_method = Some(b"POST");
        assert_eq!(
            operation(&a, b"n", &mut s, &mut st).unwrap(),
            "POST /api/cart"
        );
        a.http_route = None;
        assert_eq!(operation(&a, b"n", &mut s, &mut st).unwrap(), "Cart/Get");
        a.rpc_service = None;
        assert_eq!(operation(&a, b"n", &mut s, &mut st).unwrap(), "Get");
        a.rpc_method = None;
        assert_eq!(operation(&a, b"span", &mut s, &mut st).unwrap(), "span");
    }

    #[test]
    fn error_rules_follow_kind() {
        let http = |c| SpanAttrs {
            http_status_code: Some(c),
            ..Default::default()
        };
        assert!(is_error(SpanKind::Server, 2, &SpanAttrs::default()));
        assert!(!is_error(SpanKind::Server, 1, &SpanAttrs::default()));
        assert!(is_error(SpanKind::Server, 0, &http(503)));
        assert!(!is_error(SpanKind::Server, 0, &http(404)));
        assert!(is_error(SpanKind::Client, 0, &http(404)));
        let grpc = |c| SpanAttrs {
            rpc_grpc_status_code: Some(c),
            ..Default::default()
        };
        for code in [2, 4, 12, 13, 14, 15] {
            assert!(is_error(SpanKind::Server, 0, &grpc(code)), "{code}");
        }
        for code in [0, 1, 3, 5, 6, 7, 8, 9, 10, 11, 16] {
            assert!(!is_error(SpanKind::Server, 0, &grpc(code)), "{code}");
        }
        assert!(is_error(SpanKind::Client, 0, &grpc(5)));
        assert!(!is_error(SpanKind::Client, 0, &grpc(0)));
        let named = SpanAttrs {
            rpc_response_status_code: Some(Val::Str(b"UNAVAILABLE")),
            ..Default::default()
        };
        assert!(is_error(SpanKind::Server, 0, &named));
    }

    #[test]
    fn peer_precedence_service_db_messaging_external() {
        let mut s = String::new();
        let mut st = stats();
        let mut a = SpanAttrs {
            server_address: Some(b"db-host"),
            db_system: Some(b"postgresql"),
            ..Default::default()
        };
        let p = peer(SpanKind::Client, &a, &mut s, &mut st)
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.kind, p.name.as_str()),
            (NodeKind::Database, "postgresql/db-host")
        );
        a.db_name = Some(b"orders");
        let p = peer(SpanKind::Client, &a, &mut s, &mut st)
            .unwrap()
            .unwrap();
        assert_eq!(p.name, "postgresql/orders");
        a.peer_service = Some(b"billing");
        let p = peer(SpanKind::Client, &a, &mut s, &mut st)
            .unwrap()
            .unwrap();
        assert_eq!((p.kind, p.name.as_str()), (NodeKind::Service, "billing"));
        assert_eq!(peer(SpanKind::Server, &a, &mut s, &mut st).unwrap(), None);
        let m = SpanAttrs {
            messaging_system: Some(b"kafka"),
            messaging_destination_name: Some(b"orders"),
            net_peer_name: Some(b"broker"),
            ..Default::default()
        };
        let p = peer(SpanKind::Producer, &m, &mut s, &mut st)
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.kind, p.name.as_str()),
            (NodeKind::Messaging, "kafka/orders")
        );
        let e = SpanAttrs {
            net_peer_name: Some(b"api.example.com"),
            ..Default::default()
        };
        let p = peer(SpanKind::Client, &e, &mut s, &mut st)
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.kind, p.name.as_str()),
            (NodeKind::External, "api.example.com")
        );
    }

    #[test]
    fn timing_rules() {
        let now = 1_800_000_000_000_000_000;
        assert!(timing_valid(now - 10, now - 5, now));
        assert!(!timing_valid(now - 5, now - 10, now));
        assert!(!timing_valid(0, now, now));
        assert!(!timing_valid(now, now + MAX_FUTURE_NS + 1, now));
        assert!(!timing_valid(now - MAX_PAST_NS - 1, now, now));
        assert!(timing_valid(now - MAX_PAST_NS, now + MAX_FUTURE_NS, now));
    }
}
