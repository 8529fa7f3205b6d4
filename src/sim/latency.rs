//! Latency distributions of the topology (self time of an operation, database and
//! network time), sampled with the simulator's seeded generator.

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal, StandardNormal};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// z-score of the 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326_347_874;

/// A latency distribution as written in YAML, told apart by its fields: lognormal from its
/// median and 99th percentile (`{p50: 5ms, p99: 40ms}`), exponential (`{mean: 5ms}`) or
/// fixed (`{value: 1ms}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum LatencySpec {
    /// Lognormal with the given median and 99th percentile (p99 >= p50).
    Lognormal {
        #[serde(with = "humantime_serde")]
        p50: Duration,
        #[serde(with = "humantime_serde")]
        p99: Duration,
    },
    /// Exponential with the given mean.
    Exponential {
        #[serde(with = "humantime_serde")]
        mean: Duration,
    },
    /// Always the same value.
    Fixed {
        #[serde(with = "humantime_serde")]
        value: Duration,
    },
}

impl Default for LatencySpec {
    fn default() -> Self {
        Self::Lognormal {
            p50: Duration::from_millis(2),
            p99: Duration::from_millis(10),
        }
    }
}

impl LatencySpec {
    /// Checks the parameters; returns what is wrong.
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::Lognormal { p50, p99 } if p50.is_zero() || p99 < p50 => Some(format!(
                "lognormal needs 0 < p50 <= p99 (got p50 {p50:?}, p99 {p99:?})"
            )),
            Self::Exponential { mean } if mean.is_zero() => {
                Some("exponential needs mean > 0".into())
            }
            _ => None,
        }
    }

    /// Draws one value in nanoseconds (at least 1 µs, at most 10 minutes).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let nanos = match self {
            Self::Lognormal { p50, p99 } => {
                let mu = (p50.as_nanos() as f64).ln();
                let sigma = ((p99.as_nanos() as f64) / (p50.as_nanos() as f64)).ln() / Z99;
                match LogNormal::new(mu, sigma.max(1e-9)) {
                    Ok(d) => d.sample(rng),
                    Err(_) => p50.as_nanos() as f64,
                }
            }
            Self::Exponential { mean } => match Exp::new(1.0 / mean.as_nanos() as f64) {
                Ok(d) => d.sample(rng),
                Err(_) => mean.as_nanos() as f64,
            },
            Self::Fixed { value } => {
                // Draw anyway so that the random stream does not depend on the shape.
                let _: f64 = StandardNormal.sample(rng);
                value.as_nanos() as f64
            }
        };
        nanos.clamp(1_000.0, 600e9) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn lognormal_hits_its_median_and_p99() {
        let spec = LatencySpec::Lognormal {
            p50: Duration::from_millis(10),
            p99: Duration::from_millis(100),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut v: Vec<u64> = (0..20_000).map(|_| spec.sample(&mut rng)).collect();
        v.sort_unstable();
        let p50 = v[10_000] as f64 / 1e6;
        let p99 = v[19_800] as f64 / 1e6;
        assert!((p50 - 10.0).abs() < 0.6, "p50 {p50}");
        assert!((p99 - 100.0).abs() < 12.0, "p99 {p99}");
    }

    #[test]
    fn bad_parameters_are_reported() {
        let spec = LatencySpec::Lognormal {
            p50: Duration::from_millis(10),
            p99: Duration::from_millis(1),
        };
        assert!(spec.problem().is_some());
        assert!(LatencySpec::default().problem().is_none());
    }
}
