//! The graph's `/metrics`: servicegraph series named as Grafana's service-graph view
//! expects (`traces_service_graph_*`, labels `client`, `server`, `connection_type`,
//! `failed`, plus both service versions and the environment) and self-metrics of the
//! pairing store and edge windows. Rendered from live state at scrape time; bounded by
//! the edge cap.

use super::cumulative::{Cumulative, PromHistogram, PROM_BUCKETS_SECONDS};
use super::edges::EdgeKey;
use super::pairing::Side;
use super::Graph;
use crate::telemetry::{label_set, ExportMetrics, PromType, PromWriter};
use std::sync::atomic::Ordering;

const REQUEST_TOTAL: &str = "traces_service_graph_request_total";
const FAILED_TOTAL: &str = "traces_service_graph_request_failed_total";
const SERVER_SECONDS: &str = "traces_service_graph_request_server_seconds";
const CLIENT_SECONDS: &str = "traces_service_graph_request_client_seconds";
const UNPAIRED_TOTAL: &str = "traces_service_graph_unpaired_spans_total";

/// Edges whose counters are copied at a time: the page is rendered from copies, with no
/// lock held while the writer waits, and a chunk's copies (a few hundred bytes an edge)
/// rather than every edge's are held at once.
const CHUNK: usize = 256;

impl ExportMetrics for Graph {
    fn export_metrics(&self, w: &mut PromWriter) {
        // The edges in label order, by key and id: about a hundred bytes an edge.
        let mut order: Vec<(EdgeKey, u32)> = Vec::new();
        let mut edge_bytes = 0;
        self.edges.for_each_with_id(|id, k, e| {
            order.push((k.clone(), id));
            edge_bytes += e.memory_bytes();
        });
        edge_bytes += self.edges.empty_room_bytes();
        order.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        counters(w, self, &order);
        histograms(
            w,
            self,
            &order,
            SERVER_SECONDS,
            "Server-side latency of calls between two nodes.",
            |c| &c.server,
        );
        histograms(
            w,
            self,
            &order,
            CLIENT_SECONDS,
            "Client-side latency of calls between two nodes.",
            |c| &c.client,
        );
        self.export_unpaired(w);
        self.export_self(w, edge_bytes);
    }
}

fn labels(k: &EdgeKey) -> [(&'static str, &str); 6] {
    [
        ("client", k.caller.as_str()),
        ("server", k.callee.as_str()),
        ("connection_type", k.connection_type.get().as_str()),
        ("client_service_version", k.caller_version.as_str()),
        ("server_service_version", k.callee_version.as_str()),
        ("environment", k.environment.as_str()),
    ]
}

/// Copies `pick` of each edge of `chunk` still held, as (position in `chunk`, value).
fn copy_chunk<T>(
    g: &Graph,
    chunk: &[(EdgeKey, u32)],
    pick: impl Fn(&Cumulative) -> T,
) -> Vec<(usize, T)> {
    let mut out = Vec::with_capacity(chunk.len());
    g.edges
        .visit(chunk, |i, e| out.push((i, pick(&e.cumulative))));
    out
}

/// A counter family: name, help and the edge's value.
type CounterFamily = (&'static str, &'static str, fn(&Cumulative) -> u64);

fn counters(w: &mut PromWriter, g: &Graph, order: &[(EdgeKey, u32)]) {
    let families: [CounterFamily; 2] = [
        (REQUEST_TOTAL, "Calls between two nodes.", |c| c.requests),
        (
            FAILED_TOTAL,
            "Failed calls between two nodes (either side in error).",
            |c| c.failed,
        ),
    ];
    for (name, help, value) in families {
        w.family(name, PromType::Counter, help);
        for chunk in order.chunks(CHUNK) {
            for (i, v) in copy_chunk(g, chunk, value) {
                w.sample_with(name, &label_set(&labels(&chunk[i].0)), &[], v as f64);
                w.boundary();
            }
        }
    }
}

fn histograms(
    w: &mut PromWriter,
    g: &Graph,
    order: &[(EdgeKey, u32)],
    name: &str,
    help: &str,
    side: impl Fn(&Cumulative) -> &[PromHistogram; 2],
) {
    w.family(name, PromType::Histogram, help);
    let (bucket, sum, count) = (
        format!("{name}_bucket"),
        format!("{name}_sum"),
        format!("{name}_count"),
    );
    let le: Vec<String> = PROM_BUCKETS_SECONDS
        .iter()
        .map(|b| b.to_string())
        .chain(["+Inf".to_string()])
        .collect();
    for chunk in order.chunks(CHUNK) {
        for (i, hs) in copy_chunk(g, chunk, |c| side(c).clone()) {
            let set = label_set(&labels(&chunk[i].0));
            for (failed, h) in hs.iter().enumerate() {
                if h.count == 0 {
                    continue;
                }
                let failed = [("failed", if failed == 1 { "true" } else { "false" })];
                let set = format!("{set},{}", label_set(&failed));
                let mut cumulative = 0;
                for (n, le) in h.buckets().zip(&le) {
                    cumulative += n;
                    w.sample_with(&bucket, &set, &[("le", le)], cumulative as f64);
                }
                w.sample_with(&sum, &set, &[], h.sum_seconds);
                w.sample_with(&count, &set, &[], h.count as f64);
            }
            w.boundary();
        }
    }
}

impl Graph {
    fn export_unpaired(&self, w: &mut PromWriter) {
        let mut rows: Vec<_> = self
            .unpaired
            .lock()
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        rows.sort_by(|a, b| {
            (&a.0 .0, &a.0 .1, a.0 .2 as u8).cmp(&(&b.0 .0, &b.0 .1, b.0 .2 as u8))
        });
        w.family(
            UNPAIRED_TOTAL,
            PromType::Counter,
            "Spans that expired without a partner or a node to attribute them to.",
        );
        for ((env, service, side), n) in rows {
            let role = match side {
                Side::Client => "client",
                Side::Server => "server",
            };
            w.sample(
                UNPAIRED_TOTAL,
                &[(role, service.as_str()), ("environment", env.as_str())],
                n as f64,
            );
        }
    }

    /// Self-metrics; `edge_bytes` is the edges' memory, summed during the edge walk.
    fn export_self(&self, w: &mut PromWriter, edge_bytes: usize) {
        let s = &self.pairing.stats;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        gauge(
            w,
            "verdict_graph_store_items",
            "Spans in the pairing store waiting for their partner.",
            self.pending() as f64,
        );
        gauge(
            w,
            "verdict_graph_store_tombstones",
            "Completed pairs remembered (as fingerprints) to recognise retried duplicates.",
            self.pairing.tombstones() as f64,
        );
        gauge(
            w,
            "verdict_graph_store_memory_bytes",
            "Estimated bytes held by the pairing store: waiting spans, expiry queue, tombstones.",
            self.pairing_memory_bytes() as f64,
        );
        gauge(
            w,
            "verdict_graph_store_capacity",
            "Most spans the pairing store holds waiting.",
            self.pending_capacity() as f64,
        );
        gauge(
            w,
            "verdict_graph_edges",
            "Edges held.",
            self.edge_count() as f64,
        );
        gauge(
            w,
            "verdict_graph_edges_memory_bytes",
            "Estimated bytes held by the edges (keys, windows, cumulative histograms).",
            edge_bytes as f64,
        );
        gauge(
            w,
            "verdict_graph_sample_rate",
            "Fraction of traces the graph keeps now (below 1 while analysis is behind its input).",
            self.sample_rate(),
        );
        counter(
            w,
            "verdict_graph_thinned_spans_total",
            "Spans left out of the graph because analysis was behind its input.",
            self.thinned_spans() as f64,
        );
        counter(
            w,
            "verdict_graph_paired_total",
            "Client and server spans paired into a call.",
            load(&s.paired),
        );
        counter(
            w,
            "verdict_graph_alone_total",
            "Database and messaging calls completed from the client span alone.",
            load(&s.alone),
        );
        counter(
            w,
            "verdict_graph_roots_total",
            "Root server spans recorded as calls from the user node.",
            load(&s.roots),
        );
        counter(
            w,
            "verdict_graph_expired_virtual_total",
            "Client spans expired into virtual-node edges.",
            load(&s.expired_to_virtual),
        );
        counter(
            w,
            "verdict_graph_expired_unpaired_total",
            "Spans expired with no partner and no node to attribute them to.",
            load(&s.expired_unpaired),
        );
        counter(
            w,
            "verdict_graph_evicted_total",
            "Store entries expired early because the store was full (dropped).",
            load(&s.evicted),
        );
        counter(
            w,
            "verdict_graph_duplicate_spans_total",
            "Spans ignored as copies of spans already seen.",
            load(&s.duplicates),
        );
        counter(
            w,
            "verdict_graph_edge_overflow_calls_total",
            "Calls recorded on the overflow edge because the edge cap was reached.",
            self.edges.overflow_calls.load(Ordering::Relaxed) as f64,
        );
        counter(
            w,
            "verdict_graph_edges_retired_total",
            "Edges retired after a horizon without calls.",
            self.edges.retired.load(Ordering::Relaxed) as f64,
        );
        counter(
            w,
            "verdict_graph_unpaired_overflow_total",
            "Unpaired spans not given their own series because the cap was reached.",
            self.unpaired_overflow.load(Ordering::Relaxed) as f64,
        );
        let ended = load(&s.paired) + load(&s.expired_to_virtual) + load(&s.expired_unpaired);
        let rate = if ended > 0.0 {
            load(&s.paired) / ended
        } else {
            0.0
        };
        gauge(
            w,
            "verdict_graph_pairing_ratio",
            "Share of client/server spans that met their partner, of all that finished waiting.",
            rate,
        );
    }
}

fn gauge(w: &mut PromWriter, name: &str, help: &str, v: f64) {
    w.family(name, PromType::Gauge, help);
    w.sample(name, &[], v);
}

fn counter(w: &mut PromWriter, name: &str, help: &str, v: f64) {
    w.family(name, PromType::Counter, help);
    w.sample(name, &[], v);
}

/// Renders the graph of a shared [`crate::analysis::Analyzer`] into `/metrics`, for the
/// `AppState::metrics` list (the graph itself lives inside the analyzer's `Arc`).
pub struct GraphMetrics(pub std::sync::Arc<crate::analysis::Analyzer>);

impl ExportMetrics for GraphMetrics {
    fn export_metrics(&self, w: &mut PromWriter) {
        self.0.graph.export_metrics(w);
    }
}
