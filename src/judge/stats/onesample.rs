//! One-sample e-process: candidate event counts against a fixed bound `p0` (used when the
//! baseline is a replaced version's history). Under H0: p <= p0 the binomial factor
//! `exp(l k) / (1 - p0 + p0 e^l)^n` has expectation at most 1 for `l >= 0`.

use super::Mixture;

/// A running one-sample e-process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OneSampleEProcess {
    mix: Mixture,
    pub steps: u64,
}

impl OneSampleEProcess {
    /// Adds one tick: `(n, k, p0)` per stratum, multiplied together.
    pub fn update(&mut self, strata: &[(u64, u64, f64)]) {
        let informative: Vec<_> = strata
            .iter()
            .filter(|(n, k, p0)| *n > 0 && k <= n && *p0 > 0.0 && *p0 < 1.0)
            .copied()
            .collect();
        if informative.is_empty() {
            return;
        }
        self.steps += 1;
        self.mix.update(|l| {
            informative
                .iter()
                .map(|(n, k, p0)| l * *k as f64 - *n as f64 * (1.0 - p0 + p0 * l.exp()).ln())
                .sum()
        });
    }

    pub fn log_e(&self) -> f64 {
        self.mix.log_e()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Binomial, Distribution};

    #[test]
    fn null_false_alarms_below_alpha_with_continuous_looking() {
        let alpha: f64 = 0.05;
        let mut alarms = 0;
        for seed in 0..1000u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut e = OneSampleEProcess::default();
            for _ in 0..300 {
                let k = Binomial::new(5, 0.02).unwrap().sample(&mut rng);
                e.update(&[(5, k, 0.02)]);
                if e.log_e() >= (1.0 / alpha).ln() {
                    alarms += 1;
                    break;
                }
            }
        }
        assert!((alarms as f64) / 1000.0 < alpha, "{alarms}/1000");
    }

    #[test]
    fn detects_a_fivefold_rate_quickly() {
        let mut detected = 0;
        for seed in 0..200u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut e = OneSampleEProcess::default();
            for _ in 0..30 {
                let k = Binomial::new(10, 0.10).unwrap().sample(&mut rng);
                e.update(&[(10, k, 0.02)]);
                if e.log_e() >= (1000f64).ln() {
                    detected += 1;
                    break;
                }
            }
        }
        assert!(detected >= 180, "{detected}/200");
    }
}
