//! Path attribution: spans are held per trace for a short, bounded time (they arrive in any
//! order and across batches); then each server span is tagged with the deploying services
//! above it in its trace, so behaviour further along the path can be compared between
//! traces through the candidate and traces through the baseline.

use crate::model::{Name, Resource, SpanRecord, UnixNanos};
use ahash::AHashMap as HashMap;
use std::sync::Arc;

/// What is kept of a span for tagging (40 bytes: the resource is shared by the version).
#[derive(Debug, Clone)]
struct Held {
    span_id: [u8; 8],
    parent: [u8; 8],
    resource: Arc<Resource>,
    /// Duration, or [`NO_LATENCY`].
    latency_ns: u64,
    served: bool,
    error: bool,
}

/// `Held::latency_ns` of a span without valid timing.
const NO_LATENCY: u64 = u64::MAX;

#[derive(Debug, Default)]
struct HeldTrace {
    last: UnixNanos,
    first: UnixNanos,
    spans: Vec<Held>,
}

/// A downstream observation: `peer`'s server span below `service@version` in one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct PathObs {
    pub env: Name,
    pub service: Name,
    pub version: Name,
    pub peer: Name,
    pub latency_ns: Option<u64>,
    pub error: bool,
    pub trace_id: [u8; 16],
}

/// Most spans kept per trace.
const MAX_SPANS_PER_TRACE: usize = 512;
/// Deepest ancestor walk.
const MAX_DEPTH: usize = 64;

/// The bounded holding buffer.
#[derive(Debug, Default)]
pub struct PathBuffer {
    traces: HashMap<[u8; 16], HeldTrace>,
    held: usize,
    pub cap: usize,
    pub hold_ns: u64,
    pub dropped_spans: u64,
    pub last_drop: UnixNanos,
}

impl PathBuffer {
    pub fn new(cap: usize, hold_ns: u64) -> Self {
        Self {
            cap,
            hold_ns,
            ..Default::default()
        }
    }

    pub fn held_spans(&self) -> usize {
        self.held
    }

    /// Holds a span; drops (and counts) it when the buffer or its trace is full. `resource`
    /// names the span's environment, service and version (the judge passes one shared per
    /// version, so held spans do not keep their batches' resources alive).
    pub fn hold(&mut self, s: &SpanRecord, resource: Arc<Resource>, now: UnixNanos) {
        let full = self.held >= self.cap;
        let t = match self.traces.get_mut(&s.trace_id) {
            Some(t) => t,
            None if full => return self.drop_one(now),
            None => self.traces.entry(s.trace_id).or_insert_with(|| HeldTrace {
                first: now,
                ..Default::default()
            }),
        };
        if full || t.spans.len() >= MAX_SPANS_PER_TRACE {
            return self.drop_one(now);
        }
        t.last = now;
        if t.spans.len() == t.spans.capacity() {
            // Grow by half, from one: most traces are short, and a doubling `Vec` would
            // hold four spans' room for a two-span trace.
            t.spans.reserve_exact((t.spans.len() / 2).max(1));
        }
        t.spans.push(Held {
            span_id: s.span_id,
            parent: s.parent_span_id,
            resource,
            latency_ns: s.duration_ns().unwrap_or(NO_LATENCY),
            served: s.kind.is_served(),
            error: s.error,
        });
        self.held += 1;
    }

    fn drop_one(&mut self, now: UnixNanos) {
        self.dropped_spans += 1;
        self.last_drop = now;
    }

    /// Releases traces quiet for the hold time (or all with `all`) and tags them;
    /// `deploying(env, service)` says which services' versions matter.
    pub fn flush(
        &mut self,
        now: UnixNanos,
        all: bool,
        deploying: &dyn Fn(&str, &str) -> bool,
        out: &mut Vec<PathObs>,
    ) {
        let hold = self.hold_ns;
        let ready: Vec<[u8; 16]> = self
            .traces
            .iter()
            .filter(|(_, t)| {
                all || now.saturating_sub(t.last) >= hold || now.saturating_sub(t.first) >= 6 * hold
            })
            .map(|(k, _)| *k)
            .collect();
        for id in ready {
            if let Some(t) = self.traces.remove(&id) {
                self.held -= t.spans.len();
                tag(&id, &t.spans, deploying, out);
            }
        }
    }
}

fn tag(
    trace_id: &[u8; 16],
    spans: &[Held],
    deploying: &dyn Fn(&str, &str) -> bool,
    out: &mut Vec<PathObs>,
) {
    let by_id: HashMap<[u8; 8], usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    for s in spans.iter().filter(|s| s.served) {
        let mut seen: Vec<&Name> = Vec::new();
        let mut cur = by_id.get(&s.parent).copied();
        for _ in 0..MAX_DEPTH {
            let Some(i) = cur else { break };
            let a = &spans[i];
            let (ar, sr) = (&*a.resource, &*s.resource);
            if a.served && ar.service != sr.service && !seen.contains(&&ar.service) {
                seen.push(&ar.service);
                if deploying(&ar.environment, &ar.service) {
                    out.push(PathObs {
                        env: ar.environment.clone(),
                        service: ar.service.clone(),
                        version: ar.version.clone(),
                        peer: sr.service.clone(),
                        latency_ns: (s.latency_ns != NO_LATENCY).then_some(s.latency_ns),
                        error: s.error,
                        trace_id: *trace_id,
                    });
                }
            }
            cur = by_id.get(&a.parent).copied();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Resource, SpanKind};
    use std::sync::Arc;

    fn sp(svc: &str, ver: &str, id: u8, parent: u8, kind: SpanKind, error: bool) -> SpanRecord {
        SpanRecord {
            resource: Arc::new(Resource {
                environment: "e".into(),
                service: svc.into(),
                version: ver.into(),
                ..Default::default()
            }),
            trace_id: [7; 16],
            span_id: [id; 8],
            parent_span_id: [parent; 8],
            operation: "op".into(),
            kind,
            start_unix_nano: 0,
            end_unix_nano: 1_000,
            error,
            timing_valid: true,
            peer: None,
        }
    }

    #[test]
    fn callee_failures_are_tagged_with_the_deploying_caller_in_any_arrival_order() {
        // frontend -> checkout@2 -> payment (fails); only checkout is deploying.
        let spans = [
            sp("payment", "1", 5, 4, SpanKind::Server, true),
            sp("checkout", "2", 4, 3, SpanKind::Client, true),
            sp("frontend", "1", 1, 0, SpanKind::Server, true),
            sp("checkout", "2", 3, 2, SpanKind::Server, true),
            sp("frontend", "1", 2, 1, SpanKind::Client, true),
        ];
        let mut buf = PathBuffer::new(100, 10);
        for s in &spans[..2] {
            buf.hold(s, s.resource.clone(), 0);
        }
        let mut out = Vec::new();
        let deploying = |_: &str, s: &str| s == "checkout";
        buf.flush(5, false, &deploying, &mut out);
        assert!(out.is_empty(), "held until quiet");
        for s in &spans[2..] {
            buf.hold(s, s.resource.clone(), 6);
        }
        buf.flush(20, false, &deploying, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            (
                out[0].service.as_str(),
                out[0].version.as_str(),
                out[0].peer.as_str()
            ),
            ("checkout", "2", "payment")
        );
        assert!(out[0].error);
        assert_eq!(buf.held_spans(), 0);
    }

    #[test]
    fn a_trace_holds_room_for_about_its_spans() {
        let mut buf = PathBuffer::new(1_000, 10);
        for (i, n) in [(1u8, 2usize), (2, 1), (3, 100)] {
            for k in 0..n {
                let mut s = sp("a", "1", k as u8, 0, SpanKind::Server, false);
                s.trace_id = [i; 16];
                buf.hold(&s, s.resource.clone(), 0);
            }
            let t = &buf.traces[&[i; 16]];
            assert_eq!(t.spans.len(), n);
            assert!(
                t.spans.capacity() <= n + n / 2,
                "{n} spans, room for {}",
                t.spans.capacity()
            );
        }
    }

    #[test]
    fn a_full_buffer_drops_and_counts() {
        let mut buf = PathBuffer::new(1, 10);
        for id in [1, 2] {
            let s = sp("a", "1", id, id - 1, SpanKind::Server, false);
            buf.hold(&s, s.resource.clone(), 0);
        }
        assert_eq!(buf.dropped_spans, 1);
        assert_eq!(buf.held_spans(), 1);
    }
}
