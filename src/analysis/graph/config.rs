//! Configuration of the dependency graph (section `graph`): pairing store bounds, edge
//! windows and caps.

use crate::config::Validate;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Section `graph`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GraphConfig {
    /// Build the dependency graph. Off: no edges, no service-graph metrics, and the judge
    /// loses its outgoing and incoming signals (own requests and trace paths remain). For
    /// measuring the graph's cost, or where another component builds the service graph.
    /// Default `true`.
    pub enabled: bool,
    /// How long a client or server span waits for its partner, and how long a completed
    /// pair is remembered to recognise duplicates. Default `10s` (the Collector uses 2 s;
    /// verdict is the sink, so late spans from slow exporters still pair).
    #[serde(with = "humantime_serde")]
    pub pairing_ttl: Duration,
    /// Most entries (waiting spans plus remembered pairs) in the pairing store. When full,
    /// the oldest entry is expired early (as at its TTL) and counted as evicted.
    /// Default `200000`.
    pub max_pending: usize,
    /// Lock shards of the pairing store (power of two). Default `16`.
    pub shards: usize,
    /// Most edges kept; calls on new edges beyond it go to one `__overflow__` edge and are
    /// counted. Default `10000`.
    pub max_edges: usize,
    /// Width of one rolling time slot of an edge; windows round out to whole slots. Default
    /// `30s` (the judge keeps its own 10 s histories; the graph's windows serve the API).
    #[serde(with = "humantime_serde")]
    pub slot: Duration,
    /// How far back edge windows reach; edges idle this long are retired. Default `5m`, the
    /// API's default window (each edge keeps one pair of histograms per slot of it).
    #[serde(with = "humantime_serde")]
    pub horizon: Duration,
    /// Window of `GET /api/v1/graph` when the request names none. Default `5m`.
    #[serde(with = "humantime_serde")]
    pub default_window: Duration,
    /// Smallest fraction of traces the graph keeps when the analysis falls behind its input
    /// (ingest queue more than half full, or refusing data): it halves the fraction each
    /// such second down to this, counts each kept call for the traces it stands for, and
    /// doubles it again after 30 s with the queue nearly empty. Traces are chosen by trace
    /// id (both halves of a call stay together; every version is thinned alike). The series
    /// and the judge's own signals are never thinned. `1` never thins (data is refused
    /// instead). An inverse power of two from `1/1024` to `1`. Default `0.0625`.
    pub min_sample_rate: f64,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            pairing_ttl: Duration::from_secs(10),
            max_pending: 200_000,
            shards: 16,
            max_edges: 10_000,
            slot: Duration::from_secs(30),
            horizon: Duration::from_secs(5 * 60),
            default_window: Duration::from_secs(5 * 60),
            min_sample_rate: 0.0625,
        }
    }
}

impl Validate for GraphConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        if self.pairing_ttl.is_zero() {
            problems.push(format!("{path}.pairing_ttl: must be greater than zero"));
        }
        if self.shards == 0 || !self.shards.is_power_of_two() || self.shards > 1024 {
            problems.push(format!(
                "{path}.shards: {} is not a power of two between 1 and 1024",
                self.shards
            ));
        }
        if self.max_pending < self.shards.max(1) {
            problems.push(format!(
                "{path}.max_pending: {} is smaller than the number of shards",
                self.max_pending
            ));
        }
        if self.max_edges == 0 {
            problems.push(format!("{path}.max_edges: must be at least 1"));
        }
        if self.slot < Duration::from_secs(1) {
            problems.push(format!("{path}.slot: must be at least 1s"));
        }
        if self.horizon < self.slot || self.horizon > self.slot * 10_000 {
            problems.push(format!(
                "{path}.horizon: must be between one slot and 10000 slots"
            ));
        }
        let inverse = 1.0 / self.min_sample_rate;
        let power_of_two = inverse.is_finite()
            && inverse.fract() == 0.0
            && (1.0..=1024.0).contains(&inverse)
            && (inverse as u32).is_power_of_two();
        if !power_of_two {
            problems.push(format!(
                "{path}.min_sample_rate: {} is not 1, 0.5, 0.25, ... down to 1/1024",
                self.min_sample_rate
            ));
        }
        if self.default_window.is_zero() || self.default_window > self.horizon {
            problems.push(format!(
                "{path}.default_window: must be greater than zero and at most the horizon"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let mut p = Vec::new();
        GraphConfig::default().validate("graph", &mut p);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn reports_every_bad_field() {
        let c = GraphConfig {
            pairing_ttl: Duration::ZERO,
            shards: 3,
            max_edges: 0,
            slot: Duration::from_millis(10),
            min_sample_rate: 0.3,
            ..GraphConfig::default()
        };
        let mut p = Vec::new();
        c.validate("graph", &mut p);
        let all = p.join("\n");
        for f in [
            "pairing_ttl",
            "shards",
            "max_edges",
            "slot",
            "min_sample_rate",
        ] {
            assert!(all.contains(&format!("graph.{f}:")), "{all}");
        }
    }
}
