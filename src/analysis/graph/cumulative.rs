//! What one edge keeps cumulatively for `/metrics`: the servicegraph connector's request
//! counters and Prometheus latency histograms (its windows are rings, in `edges`).

use super::runs::EdgeSample;

/// Upper bounds (seconds) of the Prometheus `le` buckets: the Collector servicegraph
/// connector's defaults.
pub const PROM_BUCKETS_SECONDS: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

/// Buckets of a [`PromHistogram`], the last one `+Inf`.
const BUCKETS: usize = PROM_BUCKETS_SECONDS.len() + 1;

/// A cumulative Prometheus histogram with [`PROM_BUCKETS_SECONDS`] bounds.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PromHistogram {
    buckets: Buckets,
    pub sum_seconds: f64,
    pub count: u64,
}

/// Non-cumulative bucket counts: 32-bit until one would pass `u32::MAX`, then 64-bit and
/// boxed. Every edge holds four of these histograms, for the process's life: 72 bytes
/// each instead of 136, and a count of one bucket reaches `u32::MAX` only after about a
/// day at 50,000 calls a second.
#[derive(Debug, Clone, PartialEq)]
enum Buckets {
    Narrow([u32; BUCKETS]),
    Wide(Box<[u64; BUCKETS]>),
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::Narrow([0; BUCKETS])
    }
}

impl PromHistogram {
    /// Records `n` calls of `ns` nanoseconds.
    pub fn record(&mut self, ns: u64, n: u64) {
        let s = ns as f64 / 1e9;
        let i = PROM_BUCKETS_SECONDS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(PROM_BUCKETS_SECONDS.len());
        self.add(i, n);
        self.sum_seconds += s * n as f64;
        self.count += n;
    }

    fn add(&mut self, i: usize, n: u64) {
        if let Buckets::Narrow(b) = &mut self.buckets {
            let sum = u64::from(b[i]) + n;
            if let Ok(v) = u32::try_from(sum) {
                b[i] = v;
                return;
            }
            let mut wide = Box::new([0u64; BUCKETS]);
            for (w, c) in wide.iter_mut().zip(b.iter()) {
                *w = u64::from(*c);
            }
            self.buckets = Buckets::Wide(wide);
        }
        if let Buckets::Wide(b) = &mut self.buckets {
            b[i] = b[i].saturating_add(n);
        }
    }

    /// Non-cumulative counts per bucket, the last one `+Inf`.
    pub fn buckets(&self) -> impl Iterator<Item = u64> + '_ {
        (0..BUCKETS).map(|i| match &self.buckets {
            Buckets::Narrow(b) => u64::from(b[i]),
            Buckets::Wide(b) => b[i],
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_widen_before_a_count_passes_32_bits_and_keep_every_count() {
        let mut h = PromHistogram::default();
        h.record(1_000_000, 3); // 1 ms: the first bucket (2 ms)
        h.record(20_000_000_000, 1); // 20 s: +Inf
        h.record(3_000_000, u64::from(u32::MAX) - 1); // 3 ms: the second bucket
        assert!(matches!(h.buckets, Buckets::Narrow(_)), "still fits");
        h.record(3_000_000, 2);
        assert!(matches!(h.buckets, Buckets::Wide(_)));
        let counts: Vec<u64> = h.buckets().collect();
        assert_eq!(counts.len(), PROM_BUCKETS_SECONDS.len() + 1);
        assert_eq!(counts[0], 3);
        assert_eq!(counts[1], u64::from(u32::MAX) + 1);
        assert_eq!(counts[BUCKETS - 1], 1);
        assert_eq!(counts.iter().sum::<u64>(), h.count);
        h.record(3_000_000, 5);
        assert_eq!(h.buckets().nth(1), Some(u64::from(u32::MAX) + 6));
        assert!(std::mem::size_of::<PromHistogram>() <= 88);
    }
}
