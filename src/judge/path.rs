//! Path attribution: spans are held per trace for a short, bounded time (they arrive in any
//! order and across batches); then each server span is tagged with the deploying services
//! above it in its trace, so behaviour further along the path can be compared between
//! traces through the candidate and traces through the baseline.

use crate::model::{Name, Resource, SpanRecord, UnixNanos};
use ahash::AHashMap as HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

/// What is kept of a span for tagging (56 bytes: the resource is shared by the version).
#[derive(Debug, Clone)]
struct Held {
    trace_id: [u8; 16],
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

/// When a held trace's first and last spans arrived, and how many it has.
#[derive(Debug, Clone, Copy)]
struct Times {
    first: UnixNanos,
    last: UnixNanos,
    spans: u32,
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
const MAX_SPANS_PER_TRACE: u32 = 512;
/// Deepest ancestor walk.
const MAX_DEPTH: usize = 64;

/// The bounded holding buffer: held spans in one vector (in arrival order, grown by half up
/// to the cap, never beyond) and, per held trace, when it was first and last added to and
/// how many spans it has. A per-trace vector of spans cost about 210 bytes per held span
/// under SDK-shaped load (a map entry and a small allocation per trace, mostly traces of one
/// or two spans held at a time); this layout costs about 56 bytes per span plus about 55 per
/// trace (a map of 33-byte buckets at most 7/8 full) (docs/benchmarks.md).
#[derive(Debug, Default)]
pub struct PathBuffer {
    spans: Vec<Held>,
    /// By a keyed hash of the trace id: two traces sharing one would only share their
    /// release time and span limit; each span keeps its own trace id.
    traces: HashMap<u64, Times>,
    keyer: ahash::RandomState,
    pub cap: usize,
    pub hold_ns: u64,
    /// Spans not held: of new traces past seven eighths of the cap, or cut from traces.
    pub dropped_spans: u64,
    /// Last time a span was dropped at the cap or a trace's limit (a held trace may be
    /// incomplete): the judge withholds promotion for a minute after it. Traces not taken
    /// at seven eighths only thin the sample and do not set it.
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
        self.spans.len()
    }

    /// Estimated heap bytes: the spans' vector and the trace map (its buckets and control
    /// bytes); the resources are shared with the judge's version tracks.
    pub fn memory_bytes(&self) -> usize {
        let bucket = std::mem::size_of::<(u64, Times)>();
        self.spans.capacity() * std::mem::size_of::<Held>()
            + crate::telemetry::memory::hash_table_bytes(self.traces.capacity(), bucket)
    }

    /// Holds a span; drops (and counts) it when the buffer or its trace is full. `resource`
    /// names the span's environment, service and version (the judge passes one shared per
    /// version, so held spans do not keep their batches' resources alive).
    pub fn hold(&mut self, s: &SpanRecord, resource: Arc<Resource>, now: UnixNanos) {
        if self.spans.len() >= self.cap {
            return self.drop_one(now);
        }
        let key = self.keyer.hash_one(s.trace_id);
        let times = match self.traces.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            // A new trace is taken only below seven eighths of the cap: the rest is room
            // for spans of traces already held, so that a full buffer holds traces whole
            // (or not at all) instead of cutting the last ones taken.
            Entry::Vacant(_) if self.spans.len() >= self.cap - self.cap / 8 => {
                self.dropped_spans += 1; // a trace not sampled, none cut
                return;
            }
            Entry::Vacant(v) => v.insert(Times {
                first: now,
                last: now,
                spans: 0,
            }),
        };
        if times.spans >= MAX_SPANS_PER_TRACE {
            return self.drop_one(now);
        }
        times.spans += 1;
        times.last = times.last.max(now);
        if self.spans.len() == self.spans.capacity() {
            // Grow by half, and never past the cap: the vector is the buffer's bulk.
            let room = (self.spans.len() / 2).max(1024);
            self.spans
                .reserve_exact(room.min(self.cap - self.spans.len()));
        }
        self.spans.push(Held {
            trace_id: s.trace_id,
            span_id: s.span_id,
            parent: s.parent_span_id,
            resource,
            latency_ns: s.duration_ns().unwrap_or(NO_LATENCY),
            served: s.kind.is_served(),
            error: s.error,
        });
    }

    /// Counts a span dropped from a trace that may be held (cut short).
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
        let due = |t: &Times| {
            all || now.saturating_sub(t.last) >= hold || now.saturating_sub(t.first) >= 6 * hold
        };
        if !self.traces.values().any(due) {
            return;
        }
        // Spans of due traces move to the end of the vector (no second vector: the buffer
        // is often full), where they are grouped by trace and tagged.
        let mut end = self.spans.len();
        let mut i = 0;
        while i < end {
            let key = self.keyer.hash_one(self.spans[i].trace_id);
            if self.traces.get(&key).is_none_or(due) {
                end -= 1;
                self.spans.swap(i, end);
            } else {
                i += 1;
            }
        }
        // The traces still held move to a new map sized for them: removing entries in place
        // leaves markers that make a nearly full map double its room though it holds no
        // more traces (about 40 % more bytes per held span, measured).
        let kept = self.traces.values().filter(|t| !due(t)).count();
        let mut traces = HashMap::with_capacity_and_hasher(kept, self.traces.hasher().clone());
        traces.extend(self.traces.drain().filter(|(_, t)| !due(t)));
        self.traces = traces;
        let ready = &mut self.spans[end..];
        ready.sort_unstable_by_key(|s| s.trace_id);
        for trace in ready.chunk_by(|a, b| a.trace_id == b.trace_id) {
            tag(&trace[0].trace_id, trace, deploying, out);
        }
        self.spans.truncate(end);
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
    fn a_held_span_costs_about_a_hundred_bytes_and_the_vector_stops_at_the_cap() {
        let cap = 20_000;
        let mut buf = PathBuffer::new(cap, 10);
        let r = sp("a", "1", 1, 0, SpanKind::Server, false).resource;
        // Traces of one span, the costliest shape per span (one map entry each), up to
        // seven eighths of the cap; then second spans of held traces fill the rest.
        let span = |i: u32, id: u8| {
            let mut s = sp("a", "1", id, 0, SpanKind::Server, false);
            s.trace_id[..4].copy_from_slice(&i.to_le_bytes());
            s
        };
        for i in 0..cap as u32 + 5 {
            buf.hold(&span(i, 1), r.clone(), 0);
        }
        assert_eq!(buf.held_spans(), cap - cap / 8);
        assert_eq!(buf.dropped_spans, cap as u64 / 8 + 5);
        for i in 0..cap as u32 / 8 + 5 {
            buf.hold(&span(i, 2), r.clone(), 0);
        }
        assert_eq!(buf.held_spans(), cap);
        assert_eq!(buf.dropped_spans, cap as u64 / 8 + 10);
        assert!(
            buf.spans.capacity() <= cap,
            "room for {}",
            buf.spans.capacity()
        );
        let per_span = buf.memory_bytes() as f64 / cap as f64;
        assert!(
            (56.0..120.0).contains(&per_span),
            "{per_span} bytes per span"
        );
        let mut out = Vec::new();
        buf.flush(10, false, &|_: &str, _: &str| true, &mut out);
        assert_eq!((buf.held_spans(), buf.traces.len()), (0, 0));
    }

    #[test]
    fn a_full_buffer_with_traces_coming_and_going_keeps_its_size() {
        // One-span traces, a new one every tick (hold 10 ticks); the full buffer releases
        // the oldest as it takes new ones, round after round.
        let cap = 28_000; // near a power-of-two map's room (28,672): the worst case
        let mut buf = PathBuffer::new(cap, 10);
        let r = sp("a", "1", 1, 0, SpanKind::Server, false).resource;
        let mut out = Vec::new();
        let mut most = 0;
        for round in 0..40u64 {
            for i in 0..cap as u64 / 8 {
                let mut s = sp("a", "1", 1, 0, SpanKind::Server, false);
                s.trace_id[..8].copy_from_slice(&(round * cap as u64 + i).to_le_bytes());
                buf.hold(&s, r.clone(), round);
            }
            buf.flush(round, false, &|_: &str, _: &str| true, &mut out);
            most = most.max(buf.memory_bytes());
        }
        assert!(buf.held_spans() >= cap / 2, "{} held", buf.held_spans());
        let per_span = most as f64 / cap as f64;
        assert!(per_span < 120.0, "{per_span} bytes per span at the most");
    }

    #[test]
    fn a_trace_stops_taking_spans_at_its_limit() {
        let mut buf = PathBuffer::new(10_000, 10);
        for k in 0..MAX_SPANS_PER_TRACE + 3 {
            let mut s = sp("a", "1", 0, 0, SpanKind::Server, false);
            s.span_id[..4].copy_from_slice(&k.to_le_bytes());
            buf.hold(&s, s.resource.clone(), 0);
        }
        assert_eq!(buf.held_spans(), MAX_SPANS_PER_TRACE as usize);
        assert_eq!(buf.dropped_spans, 3);
    }

    #[test]
    fn only_quiet_traces_are_released_and_the_rest_stay_whole() {
        // Trace 1: a caller and its callee, quiet since 0. Trace 2: the same shape, its
        // callee's span arriving at 8, so it is not quiet yet at 12.
        let mut buf = PathBuffer::new(100, 10);
        let deploying = |_: &str, s: &str| s == "checkout";
        for (trace, at_callee) in [(1u8, 0u64), (2, 8)] {
            let mut caller = sp("checkout", "2", 1, 0, SpanKind::Server, false);
            let mut callee = sp("payment", "1", 2, 1, SpanKind::Server, true);
            caller.trace_id = [trace; 16];
            callee.trace_id = [trace; 16];
            buf.hold(&caller, caller.resource.clone(), 0);
            buf.hold(&callee, callee.resource.clone(), at_callee);
        }
        let mut out = Vec::new();
        buf.flush(12, false, &deploying, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].trace_id, [1; 16]);
        assert_eq!(buf.held_spans(), 2);
        buf.flush(18, false, &deploying, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[1].trace_id, [2; 16]);
        assert_eq!((out[1].peer.as_str(), out[1].error), ("payment", true));
        assert_eq!(buf.held_spans(), 0);
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

    #[test]
    fn a_nearly_full_buffer_takes_spans_of_held_traces_only() {
        // Cap 80: new traces stop at 70 held spans (seven eighths), their later spans are
        // still taken up to the cap, so no held trace is cut off by newer ones.
        let mut buf = PathBuffer::new(80, 10);
        let r = sp("a", "1", 1, 0, SpanKind::Server, false).resource;
        let span = |trace: u64, id: u8| {
            let mut s = sp("a", "1", id, 0, SpanKind::Server, false);
            s.trace_id[..8].copy_from_slice(&trace.to_le_bytes());
            s
        };
        for t in 0..71 {
            buf.hold(&span(t, 1), r.clone(), 5);
        }
        assert_eq!((buf.held_spans(), buf.dropped_spans), (70, 1));
        assert_eq!(buf.last_drop, 0, "a trace not taken cuts none");
        for t in 0..12 {
            buf.hold(&span(t, 2), r.clone(), 6);
        }
        assert_eq!((buf.held_spans(), buf.dropped_spans), (80, 3));
        assert_eq!(buf.last_drop, 6, "spans cut from held traces");
        assert_eq!(buf.traces.len(), 70);
    }
}
