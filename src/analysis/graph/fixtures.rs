//! Span builders shared by the graph's unit tests, integration tests and benchmarks:
//! synthetic client/server spans with chosen ids, durations and errors.

use crate::model::{Name, NodeKind, Peer, Resource, SpanKind, SpanRecord, UnixNanos};
use std::sync::Arc;

/// A resource for `(environment, service, version)`.
pub fn resource(env: &str, service: &str, version: &str) -> Arc<Resource> {
    Arc::new(Resource {
        environment: Name::new(env),
        service: Name::new(service),
        version: Name::new(version),
        ..Resource::default()
    })
}

/// A trace id from a number (high and low halves both set, like a random W3C id).
pub fn trace_id(n: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&n.to_be_bytes());
    t[8..].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    t
}

/// A span id from a number (0 means "no parent").
pub fn span_id(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// A span of `kind` lasting `duration_ns` from `start`.
#[allow(clippy::too_many_arguments)]
pub fn span(
    res: &Arc<Resource>,
    kind: SpanKind,
    trace: u64,
    id: u64,
    parent: u64,
    start: UnixNanos,
    duration_ns: u64,
    error: bool,
) -> SpanRecord {
    SpanRecord {
        resource: res.clone(),
        trace_id: trace_id(trace),
        span_id: span_id(id),
        parent_span_id: span_id(parent),
        operation: Name::new_static("op"),
        kind,
        start_unix_nano: start,
        end_unix_nano: start + duration_ns,
        error,
        timing_valid: true,
        peer: None,
    }
}

/// The same span naming its far end.
pub fn with_peer(mut s: SpanRecord, kind: NodeKind, name: &str) -> SpanRecord {
    s.peer = Some(Peer {
        kind,
        name: Name::new(name),
    });
    s
}
