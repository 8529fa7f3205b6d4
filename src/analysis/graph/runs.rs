//! Calls handed on by a flush of the edge store: the compact [`EdgeSample`] of each call
//! (the edge's names are kept once per edge, not per call) grouped into one run per edge,
//! in the order the edge received them ([`EdgeRuns`]). The judge consumes these.

use super::edges::EdgeKey;
use crate::model::{EdgeCall, NodeKind, UnixNanos};

/// Marks a latency the call did not have.
const NONE: u64 = u64::MAX;

/// One call of an edge, without the edge's names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeSample {
    client_ns: u64,
    server_ns: u64,
    pub trace_id: [u8; 16],
    /// When the call was recorded (the analysis clock, which places it in a time slot).
    pub at: UnixNanos,
    /// Either side in error.
    pub failed: bool,
    /// Calls this one stands for in the edge's counts (`2^level` while the graph is thinned,
    /// see [`super::thinning`]); the judge tests the kept calls themselves.
    pub weight: u32,
}

// The weight lives in what was padding: a sample stays 48 bytes.
const _: () = assert!(std::mem::size_of::<EdgeSample>() == 48);

impl EdgeSample {
    /// A placeholder (no latencies, time zero).
    pub const EMPTY: Self = Self {
        client_ns: NONE,
        server_ns: NONE,
        trace_id: [0; 16],
        at: 0,
        failed: false,
        weight: 1,
    };

    pub fn of(c: &EdgeCall, at: UnixNanos, weight: u32) -> Self {
        Self {
            client_ns: c.client_ns.map_or(NONE, |v| v.min(NONE - 1)),
            server_ns: c.server_ns.map_or(NONE, |v| v.min(NONE - 1)),
            trace_id: c.trace_id,
            at,
            failed: c.failed,
            weight,
        }
    }

    /// Latency seen by the caller, when there was a client span with valid timing.
    pub fn client_ns(&self) -> Option<u64> {
        (self.client_ns != NONE).then_some(self.client_ns)
    }

    /// Latency seen by the callee, when there was a server span with valid timing.
    pub fn server_ns(&self) -> Option<u64> {
        (self.server_ns != NONE).then_some(self.server_ns)
    }
}

/// One edge's calls of a flush.
#[derive(Debug, Clone, Copy)]
pub struct EdgeRun<'a> {
    pub key: &'a EdgeKey,
    pub callee_kind: NodeKind,
    pub calls: &'a [EdgeSample],
}

/// The calls of one flush, grouped by edge.
#[derive(Debug, Default)]
pub struct EdgeRuns {
    heads: Vec<(EdgeKey, NodeKind, std::ops::Range<usize>)>,
    samples: Vec<EdgeSample>,
}

impl EdgeRuns {
    /// Groups calls by edge (first appearance order), all recorded at `at`: for callers
    /// that hold [`EdgeCall`]s rather than a graph (tests, benches).
    pub fn from_calls(calls: &[EdgeCall], at: UnixNanos) -> Self {
        let mut groups: Vec<(EdgeKey, NodeKind, Vec<EdgeSample>)> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for c in calls {
            let key = EdgeKey::of(c);
            let i = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, c.callee_kind, Vec::new()));
                groups.len() - 1
            });
            groups[i].2.push(EdgeSample::of(c, at, 1));
        }
        let mut runs = Self::default();
        for (key, kind, samples) in groups {
            runs.push(key, kind, &samples);
        }
        runs
    }

    /// Appends one edge's run.
    pub(super) fn push(&mut self, key: EdgeKey, kind: NodeKind, calls: &[EdgeSample]) {
        let start = self.samples.len();
        self.samples.extend_from_slice(calls);
        self.heads.push((key, kind, start..self.samples.len()));
    }

    /// Appends a run whose calls are `range` of the samples (pushed with
    /// [`extend_samples`](Self::extend_samples)).
    pub(super) fn push_range(
        &mut self,
        key: EdgeKey,
        kind: NodeKind,
        range: std::ops::Range<usize>,
    ) {
        self.heads.push((key, kind, range));
    }

    /// Appends calls that runs pushed with [`push_range`](Self::push_range) refer to.
    pub(super) fn extend_samples(&mut self, samples: Vec<EdgeSample>) {
        if self.samples.is_empty() {
            self.samples = samples;
        } else {
            self.samples.extend(samples);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = EdgeRun<'_>> {
        self.heads.iter().map(|(key, callee_kind, r)| EdgeRun {
            key,
            callee_kind: *callee_kind,
            calls: &self.samples[r.clone()],
        })
    }

    /// Number of edges with calls.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Number of calls over all edges.
    pub fn calls(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConnectionType, Name};

    fn call(caller: &str, callee: &str, client: Option<u64>, failed: bool) -> EdgeCall {
        EdgeCall {
            environment: Name::new("e"),
            caller: Name::new(caller),
            caller_version: Name::new("1"),
            callee: Name::new(callee),
            callee_version: Name::new("2"),
            callee_kind: NodeKind::Service,
            connection_type: ConnectionType::Direct,
            client_ns: client,
            server_ns: Some(7),
            failed,
            trace_id: [3; 16],
            time_unix_nano: 1,
        }
    }

    #[test]
    fn groups_calls_by_edge_in_arrival_order() {
        let calls = [
            call("a", "b", Some(1), false),
            call("a", "c", None, true),
            call("a", "b", Some(0), true),
        ];
        let runs = EdgeRuns::from_calls(&calls, 9);
        let got: Vec<_> = runs
            .iter()
            .map(|r| {
                let lat: Vec<_> = r.calls.iter().map(|s| (s.client_ns(), s.failed)).collect();
                (r.key.callee.to_string(), lat)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("b".into(), vec![(Some(1), false), (Some(0), true)]),
                ("c".into(), vec![(None, true)]),
            ]
        );
        assert_eq!((runs.len(), runs.calls()), (2, 3));
        assert!(runs.iter().all(|r| r.calls.iter().all(|s| s.at == 9)));
        assert_eq!(runs.iter().next().unwrap().calls[0].server_ns(), Some(7));
    }
}
