//! The simulator's own span and resource records: what the traffic generator produces
//! and the emitter hands to the OpenTelemetry SDK. Plain data, fully determined by the
//! seed, so tests compare runs exactly.

use crate::model::SpanKind;

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
}

/// A process that emits spans: one SDK provider each.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SimResource {
    pub environment: String,
    pub service: String,
    pub version: String,
    pub instance: String,
}

impl SimResource {
    /// The Kubernetes-style pod name used as `service.instance.id`: service, a hash of
    /// the version (like a pod-template hash) and the instance index.
    pub fn new(environment: &str, service: &str, version: &str, index: u32) -> Self {
        let hash = crate::sim::span::version_hash(version);
        Self {
            environment: environment.into(),
            service: service.into(),
            version: version.into(),
            instance: format!("{service}-{hash}-{index}"),
        }
    }
}

/// Eight hex digits derived from a version string (FNV-1a), stable across runs.
pub fn version_hash(version: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in version.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// One simulated span with its explicit timing.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSpan {
    pub resource: SimResource,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// All zero for the root.
    pub parent_span_id: [u8; 8],
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub error: bool,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// What the request-duration metric records for a served span (None otherwise).
    pub metric: Option<MetricPoint>,
}

/// A request-duration observation that goes with a SERVER/CONSUMER span.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Instrument name (`http.server.request.duration`, `rpc.server.duration`, ...).
    pub instrument: &'static str,
    /// Value in the instrument's unit (seconds for HTTP and messaging, ms for RPC).
    pub value: f64,
    pub attributes: Vec<(&'static str, AttrValue)>,
}

/// One generated request: every span of its trace.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTrace {
    /// Offset of the request in the run (nanoseconds after the run's start).
    pub offset_nanos: u64,
    pub spans: Vec<SimSpan>,
}

impl SimSpan {
    /// A string attribute by key (tests and the runner's summaries).
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| match v {
                AttrValue::Str(s) => Some(s.as_str()),
                AttrValue::Int(_) => None,
            })
    }
}
