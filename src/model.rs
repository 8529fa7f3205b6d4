//! Plain data shared by every stage of the flow: normalized spans and metric samples
//! (receiver -> analysis), completed call edges (graph -> judge), verdicts (judge -> API,
//! alerting). No logic beyond small accessors lives here.

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use std::sync::Arc;

/// Interned-or-inline string used for names (inline up to 23 bytes, no allocation).
pub type Name = SmolStr;

/// Unix time in nanoseconds. The analysis core never reads the wall clock itself; it is
/// handed `now` by its caller (see [`crate::clock`]).
pub type UnixNanos = u64;

/// Service name used when a resource carries no `service.name` (as the SDKs do).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Identity of the process that emitted telemetry: one per OTLP `Resource`, shared by all
/// of its spans through an `Arc`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Resource {
    /// `deployment.environment.name`, else `deployment.environment`, else "".
    pub environment: Name,
    /// `service.name`, else [`UNKNOWN_SERVICE`].
    pub service: Name,
    /// `service.version`, else "".
    pub version: Name,
    /// `service.instance.id`, else `k8s.pod.name`, else "".
    pub instance: Name,
    /// `k8s.deployment.name`: an alias of the service for matching (Flagger's `X-primary`).
    pub k8s_deployment: Option<Name>,
}

impl Resource {
    /// The deployment this resource belongs to.
    pub fn deployment(&self) -> DeploymentKey {
        DeploymentKey {
            environment: self.environment.clone(),
            service: self.service.clone(),
            version: self.version.clone(),
        }
    }
}

/// OTLP span kind, with the protobuf numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum SpanKind {
    #[default]
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    /// From the OTLP enum number; unknown numbers map to `Unspecified`.
    pub fn from_i32(v: i32) -> Self {
        match v {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// Spans that measure a request the service served (SERVER, CONSUMER).
    pub fn is_served(self) -> bool {
        matches!(self, Self::Server | Self::Consumer)
    }

    /// Spans that measure a call the service made (CLIENT, PRODUCER).
    pub fn is_outgoing(self) -> bool {
        matches!(self, Self::Client | Self::Producer)
    }

    /// Lower-case name as used in labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// What kind of node the far end of an outgoing call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Service,
    Database,
    Messaging,
    External,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Database => "database",
            Self::Messaging => "messaging",
            Self::External => "external",
        }
    }
}

/// The far end of a CLIENT/PRODUCER span as named by its attributes, used when the span
/// never meets a server span (virtual node) and for database/messaging edges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Peer {
    pub kind: NodeKind,
    /// Node name: `service.peer.name`/`peer.service`; `db.system.name` (with namespace or
    /// host where known); `messaging.system` with destination; or `server.address`.
    pub name: Name,
}

/// One span reduced to what analysis needs. Built once by the receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub resource: Arc<Resource>,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// All zero for a root span.
    pub parent_span_id: [u8; 8],
    /// `http.route`, else `rpc.service/rpc.method`, else the span name (truncated).
    pub operation: Name,
    pub kind: SpanKind,
    pub start_unix_nano: UnixNanos,
    pub end_unix_nano: UnixNanos,
    /// Error per the rules in architecture.md: status ERROR; HTTP 5xx on any span, 4xx on
    /// CLIENT spans; gRPC server-failure codes.
    pub error: bool,
    /// False when the timestamps are unusable (end before start, far future/past): the
    /// span still counts as a request but is excluded from latency.
    pub timing_valid: bool,
    pub peer: Option<Peer>,
}

impl SpanRecord {
    /// Duration in nanoseconds when the timing is valid.
    pub fn duration_ns(&self) -> Option<u64> {
        if self.timing_valid {
            Some(self.end_unix_nano.saturating_sub(self.start_unix_nano))
        } else {
            None
        }
    }

    pub fn is_root(&self) -> bool {
        self.parent_span_id == [0u8; 8]
    }
}

/// A decoded export request's spans, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct SpanBatch {
    pub spans: Vec<SpanRecord>,
}

/// Splits items into maximal runs sharing one resource (the same `Arc`), in order: OTLP
/// groups spans and points by resource, so per-resource work is done once per run.
pub fn resource_runs<T>(
    items: &[T],
    resource: impl Fn(&T) -> &Arc<Resource>,
) -> impl Iterator<Item = &[T]> {
    items.chunk_by(move |a, b| Arc::ptr_eq(resource(a), resource(b)))
}

/// One request-duration metric data point, already converted to a delta for its stream.
/// Comes from histograms such as `http.server.request.duration` or `rpc.server.duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationMetric {
    pub resource: Arc<Resource>,
    /// `http.route`, `rpc.method`, ... from the point's attributes, else the metric name.
    pub operation: Name,
    /// Server for `*.server.*` metrics, Client for `*.client.*`.
    pub kind: SpanKind,
    /// Whether the point's attributes mark these requests as failed (5xx, `error.type`).
    pub error: bool,
    /// End of the delta interval.
    pub time_unix_nano: UnixNanos,
    /// Requests in the interval.
    pub count: u64,
    /// (representative duration in ns, requests) per populated bucket of the interval.
    pub buckets: Vec<(u64, u64)>,
}

/// A decoded metrics export request reduced to request-duration deltas.
#[derive(Debug, Clone, Default)]
pub struct MetricBatch {
    pub points: Vec<DurationMetric>,
}

/// What the ingest queue carries from receivers to analysis.
#[derive(Debug, Clone)]
pub enum IngestItem {
    Spans(SpanBatch),
    Metrics(MetricBatch),
}

impl IngestItem {
    /// Number of items (spans or metric points) for queue accounting.
    pub fn len(&self) -> usize {
        match self {
            Self::Spans(b) => b.spans.len(),
            Self::Metrics(b) => b.points.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `(environment, service, version)`: the identity of a deployment (architecture.md 2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeploymentKey {
    pub environment: Name,
    pub service: Name,
    pub version: Name,
}

impl std::fmt::Display for DeploymentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.environment, self.service, self.version)
    }
}

/// A call from one service version to another (or to a virtual node), as produced by the
/// graph's pairing of client and server spans.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeCall {
    pub environment: Name,
    pub caller: Name,
    pub caller_version: Name,
    pub callee: Name,
    /// Empty for virtual nodes (databases, queues, external hosts).
    pub callee_version: Name,
    pub callee_kind: NodeKind,
    /// Collector servicegraph values: "" (direct), "messaging_system", "database",
    /// "virtual_node".
    pub connection_type: ConnectionType,
    /// Latency seen by the caller (client span), when there was one with valid timing.
    pub client_ns: Option<u64>,
    /// Latency seen by the callee (server span), when there was one with valid timing.
    pub server_ns: Option<u64>,
    /// Either side in error.
    pub failed: bool,
    pub trace_id: [u8; 16],
    /// When the call ended (client end, else server end).
    pub time_unix_nano: UnixNanos,
}

/// Edge type labels as the Collector's servicegraph connector names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionType {
    #[default]
    Direct,
    MessagingSystem,
    Database,
    VirtualNode,
}

impl ConnectionType {
    /// The label value (`""` for direct calls, as the Collector does).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "",
            Self::MessagingSystem => "messaging_system",
            Self::Database => "database",
            Self::VirtualNode => "virtual_node",
        }
    }
}

/// The judge's answer for a deployment (architecture.md 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Promote,
    Inconclusive,
    Rollback,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Inconclusive => "inconclusive",
            Self::Rollback => "rollback",
        }
    }
}

/// Which signal a reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    ErrorRate,
    Latency,
    /// Not enough data, data shed, or telemetry missing.
    Coverage,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::Latency => "latency",
            Self::Coverage => "coverage",
        }
    }
}

/// Where in the graph the evidence was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The deployment's own server spans.
    #[serde(rename = "self")]
    SelfScope,
    /// Calls the deployment makes.
    Outgoing,
    /// Calls made to the deployment, seen from callers' client spans.
    Incoming,
    /// Further along the request path (traces through candidate vs baseline).
    Path,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfScope => "self",
            Self::Outgoing => "outgoing",
            Self::Incoming => "incoming",
            Self::Path => "path",
        }
    }
}

/// Numbers behind one reason: enough for a human to check the claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Evidence {
    /// Baseline value (error rate as a fraction, or latency in ms at `quantile`).
    pub baseline_value: f64,
    /// Candidate value, same unit.
    pub candidate_value: f64,
    /// Latency quantile the values refer to (e.g. 0.99), when the signal is latency.
    pub quantile: Option<f64>,
    /// Effect size: candidate - baseline for error rates, candidate / baseline for latency.
    pub effect: f64,
    pub baseline_samples: u64,
    pub candidate_samples: u64,
    /// Name of the test that decided (e.g. "bernoulli mixture e-process").
    pub test: String,
    /// Evidence strength: the e-value, or 1/p, as the test defines.
    pub statistic: f64,
    /// Confidence of the claim (1 - alpha at which it holds).
    pub confidence: f64,
    /// A few trace ids (hex) that show the problem.
    pub exemplar_trace_ids: Vec<String>,
}

/// One reason for a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub signal: Signal,
    pub scope: Scope,
    /// Operation the evidence is about, when narrower than the whole service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Name>,
    /// For edge and path evidence: the two services at the ends of the edge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<Name>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callee: Option<Name>,
    /// Whether this reason, on its own, demands a rollback.
    pub regression: bool,
    pub summary: String,
    pub evidence: Evidence,
}

/// The judge's current view of one deployment (architecture.md 2: `/api/v1/deployments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentVerdict {
    pub environment: Name,
    pub service: Name,
    pub version: Name,
    pub baseline_version: Option<Name>,
    pub verdict: Decision,
    /// RFC 3339.
    pub started_at: String,
    /// Candidate requests since the deployment started.
    pub requests: u64,
    pub reasons: Vec<Reason>,
}

impl DeploymentVerdict {
    pub fn key(&self) -> DeploymentKey {
        DeploymentKey {
            environment: self.environment.clone(),
            service: self.service.clone(),
            version: self.version.clone(),
        }
    }
}

/// A change seen across versions and services alike (a slow shared database, a traffic
/// surge): reported separately and never blamed on a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub environment: Name,
    /// Where it shows (a service, or a database/queue node).
    pub node: Name,
    pub signal: Signal,
    pub summary: String,
    /// RFC 3339.
    pub started_at: String,
}

/// Formats a trace id as lower-case hex.
pub fn trace_id_hex(id: &[u8; 16]) -> String {
    hex::encode(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_serializes_as_contract_names() {
        let s = serde_json::to_string(&Scope::SelfScope).unwrap();
        assert_eq!(s, "\"self\"");
        assert_eq!(
            serde_json::to_string(&Signal::ErrorRate).unwrap(),
            "\"error_rate\""
        );
        assert_eq!(
            serde_json::to_string(&Decision::Rollback).unwrap(),
            "\"rollback\""
        );
    }

    #[test]
    fn span_kind_roundtrips_otlp_numbers() {
        for n in 0..6 {
            assert_eq!(SpanKind::from_i32(n) as i32, n);
        }
        assert_eq!(SpanKind::from_i32(42), SpanKind::Unspecified);
    }
}
