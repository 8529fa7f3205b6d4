//! Path attribution: spans are held per trace for a short, bounded time (they arrive in any
//! order and across batches); then each server span is tagged with the deploying services
//! above it in its trace, so behaviour further along the path can be compared between
//! traces through the candidate and traces through the baseline.

use crate::model::{Name, SpanRecord, UnixNanos};
use std::collections::HashMap;

/// What is kept of a span for tagging.
#[derive(Debug, Clone)]
struct Held {
    span_id: [u8; 8],
    parent: [u8; 8],
    env: Name,
    service: Name,
    version: Name,
    served: bool,
    error: bool,
    latency_ns: Option<u64>,
}

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

    /// Holds a span; drops (and counts) it when the buffer or its trace is full.
    pub fn hold(&mut self, s: &SpanRecord, now: UnixNanos) {
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
        t.spans.push(Held {
            span_id: s.span_id,
            parent: s.parent_span_id,
            env: s.resource.environment.clone(),
            service: s.resource.service.clone(),
            version: s.resource.version.clone(),
            served: s.kind.is_served(),
            error: s.error,
            latency_ns: s.duration_ns(),
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
            if a.served && a.service != s.service && !seen.contains(&&a.service) {
                seen.push(&a.service);
                if deploying(&a.env, &a.service) {
                    out.push(PathObs {
                        env: a.env.clone(),
                        service: a.service.clone(),
                        version: a.version.clone(),
                        peer: s.service.clone(),
                        latency_ns: s.latency_ns,
                        error: s.error,
                        trace_id: *trace_id,
                    });
                }
            }
            cur = by_id.get(&a.parent).copied();
        }
    }
}
