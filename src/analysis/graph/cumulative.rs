//! What one edge keeps cumulatively for `/metrics`: the servicegraph connector's request
//! counters and Prometheus latency histograms (its windows are rings, in `edges`).

use super::runs::EdgeSample;

/// Upper bounds (seconds) of the Prometheus `le` buckets: the Collector servicegraph
/// connector's defaults.
pub const PROM_BUCKETS_SECONDS: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

/// A cumulative Prometheus histogram with [`PROM_BUCKETS_SECONDS`] bounds.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PromHistogram {
    /// Non-cumulative counts per bucket; the last one is `+Inf`.
    pub buckets: [u64; PROM_BUCKETS_SECONDS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl PromHistogram {
    /// Records `n` calls of `ns` nanoseconds.
    pub fn record(&mut self, ns: u64, n: u64) {
        let s = ns as f64 / 1e9;
        let i = PROM_BUCKETS_SECONDS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(PROM_BUCKETS_SECONDS.len());
        self.buckets[i] += n;
        self.sum_seconds += s * n as f64;
        self.count += n;
    }
}

/// Cumulative counters of one edge, split by `failed` for the latency histograms.
#[derive(Debug, Default, Clone)]
pub struct Cumulative {
    pub requests: u64,
    pub failed: u64,
    /// Index 0: succeeded calls, 1: failed calls.
    pub client: [PromHistogram; 2],
    pub server: [PromHistogram; 2],
}

impl Cumulative {
    pub fn record(&mut self, c: &EdgeSample) {
        let w = u64::from(c.weight);
        self.requests += w;
        self.failed += c.failed as u64 * w;
        let i = c.failed as usize;
        if let Some(ns) = c.client_ns() {
            self.client[i].record(ns, w);
        }
        if let Some(ns) = c.server_ns() {
            self.server[i].record(ns, w);
        }
    }
}
