//! The graph as the API and dashboard see it: nodes with their kinds and versions, and
//! edges with requests, errors and client/server latency quantiles over a time range.

use super::calls::USER_NODE;
use super::edges::{EdgeKey, EdgeState, EdgeStore, EdgeTotals};
use crate::analysis::histogram::LatencyHistogram;
use crate::model::{Name, NodeKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// `GET /api/v1/graph`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GraphSnapshot {
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
    /// Fraction of traces the graph keeps now: 1 unless the analysis fell behind its input
    /// (then requests and errors are estimates: each kept call counts for `1 / sample_rate`).
    pub sample_rate: f64,
}

/// One node (a service, database, queue, external host or `user`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    pub name: Name,
    pub kind: NodeKind,
    /// Versions seen at this node in the range, sorted; empty for virtual nodes.
    pub versions: Vec<Name>,
    pub environment: Name,
}

/// One edge over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeView {
    pub caller: Name,
    pub caller_version: Name,
    pub callee: Name,
    pub callee_version: Name,
    /// `""`, `messaging_system`, `database` or `virtual_node` (the Collector's values).
    pub connection_type: &'static str,
    pub requests: u64,
    pub errors: u64,
    pub client_latency_ms: Quantiles,
    pub server_latency_ms: Quantiles,
    pub environment: Name,
}

/// Latency quantiles in milliseconds; null when the side has no timed samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl Quantiles {
    pub fn of(h: &LatencyHistogram) -> Self {
        let q = |p: f64| h.quantile(p).map(|ns| (ns as f64 / 1e3).round() / 1e3);
        Self {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
        }
    }
}

/// Builds the snapshot of `[from, to)`, optionally for one environment.
pub fn build(store: &EdgeStore, env: Option<&str>, from: u64, to: u64) -> GraphSnapshot {
    let mut edges = Vec::new();
    let mut nodes: BTreeMap<(Name, Name), (NodeKind, BTreeSet<Name>)> = BTreeMap::new();
    store.for_each(|k, e| {
        if env.is_some_and(|env| env != k.environment) {
            return;
        }
        let t = e.totals(from, to, store.slot_ns());
        if t.requests == 0 {
            return;
        }
        add_nodes(&mut nodes, k, e);
        edges.push((k.clone(), t));
    });
    edges.sort_by(|a, b| a.0.cmp(&b.0));
    GraphSnapshot {
        nodes: nodes
            .into_iter()
            .map(|((environment, name), (kind, versions))| NodeView {
                name,
                kind,
                versions: versions.into_iter().filter(|v| !v.is_empty()).collect(),
                environment,
            })
            .collect(),
        edges: edges.into_iter().map(|(k, t)| view(k, t)).collect(),
        sample_rate: 1.0,
    }
}

fn add_nodes(
    nodes: &mut BTreeMap<(Name, Name), (NodeKind, BTreeSet<Name>)>,
    k: &EdgeKey,
    e: &EdgeState,
) {
    let caller_kind = if k.caller == USER_NODE && k.caller_version.is_empty() {
        NodeKind::External
    } else {
        NodeKind::Service
    };
    for (name, version, kind) in [
        (&k.caller, &k.caller_version, caller_kind),
        (&k.callee, &k.callee_version, e.callee_kind),
    ] {
        let entry = nodes
            .entry((k.environment.clone(), name.clone()))
            .or_insert_with(|| (kind, BTreeSet::new()));
        // A name that is a service anywhere is a service (its virtual-node edges too).
        if kind == NodeKind::Service {
            entry.0 = NodeKind::Service;
        }
        entry.1.insert(version.clone());
    }
}

fn view(k: EdgeKey, t: EdgeTotals) -> EdgeView {
    EdgeView {
        caller: k.caller,
        caller_version: k.caller_version,
        callee: k.callee,
        callee_version: k.callee_version,
        connection_type: k.connection_type.get().as_str(),
        requests: t.requests,
        errors: t.errors,
        client_latency_ms: Quantiles::of(&t.client),
        server_latency_ms: Quantiles::of(&t.server),
        environment: k.environment,
    }
}
