//! Two-sample same-window e-process on event counts (errors, or latency exceedances).
//!
//! Each tick and stratum contributes a table: candidate `k_c` events of `n_c` trials,
//! baseline `k_b` of `n_b`. Conditional on `K = k_c + k_b`, `k_c` follows Fisher's
//! noncentral hypergeometric law with the odds ratio of the two rates. Under
//! H0: odds(candidate) <= omega0 * odds(baseline), `k_c` is stochastically no larger than
//! under `omega0`, so for a bet `l >= 0` the factor `exp(l k_c) / E_omega0[exp(l k_c)]`
//! has expectation at most 1. Products over strata and ticks form test supermartingales,
//! their average over bets too, and Ville's inequality bounds the chance that it ever
//! reaches `1/alpha` by `alpha`, however often it is looked at. Rates that move over time
//! (global incidents, load) change both groups and cancel in the conditioning.

use super::{ln_choose, log_sum_exp, Mixture};

/// One stratum's counts in one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Table {
    pub n_c: u64,
    pub k_c: u64,
    pub n_b: u64,
    pub k_b: u64,
}

/// Supports wider than this are evaluated on the central part only (+-40 standard
/// deviations around the mean), which changes the sums by far less than 1e-100.
const MAX_SUPPORT: u64 = 4096;

/// ln of the bet-`l` factor for each bet, for one table under null odds ratio `omega0`.
/// Empty where the table carries no information (no events, or one side empty).
pub fn log_factors(t: &Table, omega0: f64, bets: &[f64]) -> Option<Vec<f64>> {
    let big_k = t.k_c + t.k_b;
    if big_k == 0 || t.n_c == 0 || t.n_b == 0 || t.k_c > t.n_c || t.k_b > t.n_b {
        return None;
    }
    let lo = big_k.saturating_sub(t.n_b);
    let hi = big_k.min(t.n_c);
    if lo == hi {
        return None;
    }
    let (lo, hi) = narrow_support(t, lo, hi);
    let ln_w0 = omega0.ln();
    let terms: Vec<(f64, f64)> = (lo..=hi)
        .map(|k| (k as f64, ln_choose(t.n_c, k) + ln_choose(t.n_b, big_k - k)))
        .collect();
    let ln_z = |ln_w: f64| log_sum_exp(terms.iter().map(|(k, c)| c + k * ln_w));
    let z0 = ln_z(ln_w0);
    Some(
        bets.iter()
            .map(|l| l * t.k_c as f64 + z0 - ln_z(ln_w0 + l))
            .collect(),
    )
}

/// Central part of a very wide support (keeps every term that matters for the sums).
fn narrow_support(t: &Table, lo: u64, hi: u64) -> (u64, u64) {
    if hi - lo <= MAX_SUPPORT {
        return (lo, hi);
    }
    let big_k = (t.k_c + t.k_b) as f64;
    let n = (t.n_c + t.n_b) as f64;
    let share = t.n_c as f64 / n;
    let mean = big_k * share;
    let sd = (big_k * share * (1.0 - share)).sqrt().max(1.0);
    // Up to 20x odds shift the mean by at most the support itself; keep the observed k_c.
    let from = (mean - 40.0 * sd).min(t.k_c as f64).max(lo as f64) as u64;
    let to = (mean + 40.0 * sd)
        .max(t.k_c as f64 + 40.0 * sd)
        .min(hi as f64) as u64;
    (from, to)
}

/// A running two-sample e-process with the tick's strata multiplied together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionalEProcess {
    mix: Mixture,
    /// Ticks that carried information.
    pub steps: u64,
}

impl ConditionalEProcess {
    /// Adds one tick: every stratum's table with the same bets (a stratified product).
    pub fn update(&mut self, tables: &[Table], omega0: f64) {
        let bets = super::BET_GRID;
        let mut sum = vec![0.0; bets.len()];
        let mut any = false;
        for t in tables {
            if let Some(f) = log_factors(t, omega0, &bets) {
                any = true;
                for (s, x) in sum.iter_mut().zip(f) {
                    *s += x;
                }
            }
        }
        if any {
            self.steps += 1;
            self.mix.add(&sum);
        }
    }

    /// ln of the current e-value.
    pub fn log_e(&self) -> f64 {
        self.mix.log_e()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Binomial, Distribution};

    fn expected_factor(n_c: u64, n_b: u64, big_k: u64, omega0: f64, l: f64) -> f64 {
        // E under the null law of exp(factor) must be exactly 1.
        let lo = big_k.saturating_sub(n_b);
        let hi = big_k.min(n_c);
        let lnz: Vec<f64> = (lo..=hi)
            .map(|k| ln_choose(n_c, k) + ln_choose(n_b, big_k - k) + k as f64 * omega0.ln())
            .collect();
        let z = log_sum_exp(lnz.clone());
        (lo..=hi)
            .map(|k| {
                let t = Table {
                    n_c,
                    k_c: k,
                    n_b,
                    k_b: big_k - k,
                };
                let f = log_factors(&t, omega0, &[l]).unwrap()[0];
                (lnz[(k - lo) as usize] - z + f).exp()
            })
            .sum()
    }

    #[test]
    fn factors_have_unit_mean_under_the_null() {
        for (n_c, n_b, k, w) in [
            (5, 45, 3, 1.0),
            (20, 20, 7, 1.25),
            (1, 100, 2, 1.0),
            (50, 60, 80, 2.0),
        ] {
            for l in super::super::BET_GRID {
                let e = expected_factor(n_c, n_b, k, w, l);
                assert!(
                    (e - 1.0).abs() < 1e-9,
                    "n_c={n_c} n_b={n_b} k={k} w={w} l={l}: {e}"
                );
            }
        }
    }

    #[test]
    fn uninformative_tables_change_nothing() {
        let mut e = ConditionalEProcess::default();
        e.update(
            &[
                Table {
                    n_c: 10,
                    k_c: 0,
                    n_b: 0,
                    k_b: 0,
                },
                Table {
                    n_c: 10,
                    k_c: 0,
                    n_b: 10,
                    k_b: 0,
                },
            ],
            1.0,
        );
        assert_eq!(e.steps, 0);
        assert_eq!(e.log_e(), 0.0);
    }

    #[test]
    fn all_events_on_a_small_candidate_share_is_strong_evidence() {
        let mut e = ConditionalEProcess::default();
        for _ in 0..4 {
            e.update(
                &[Table {
                    n_c: 10,
                    k_c: 2,
                    n_b: 90,
                    k_b: 0,
                }],
                1.0,
            );
        }
        assert!(e.log_e() > (1000f64).ln(), "{}", e.log_e());
    }

    /// Simulated rates for the null/power studies: per tick binomial counts.
    #[allow(clippy::too_many_arguments)] // a test driver: each argument is one knob of the study
    fn run(
        seed: u64,
        ticks: usize,
        n_c: u64,
        n_b: u64,
        p_b: f64,
        p_c: f64,
        omega0: f64,
        threshold: f64,
    ) -> Option<usize> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut e = ConditionalEProcess::default();
        for t in 0..ticks {
            // Rates drift over time (a global incident halfway), equally for both groups.
            let drift = if t > ticks / 2 { 5.0 } else { 1.0 };
            let pb = (p_b * drift).min(0.9);
            let pc = (p_c * drift).min(0.95);
            let k_c = Binomial::new(n_c, pc).unwrap().sample(&mut rng);
            let k_b = Binomial::new(n_b, pb).unwrap().sample(&mut rng);
            e.update(&[Table { n_c, k_c, n_b, k_b }], omega0);
            if e.log_e() >= threshold {
                return Some(t + 1);
            }
            let _ = rng.random::<u8>();
        }
        None
    }

    #[test]
    fn false_alarm_rate_under_continuous_looking_is_below_alpha() {
        // 1,000 seeded null runs of 300 ticks, looked at every tick, alpha = 0.05.
        let alpha: f64 = 0.05;
        let alarms = (0..1000u64)
            .filter(|s| run(*s, 300, 5, 45, 0.02, 0.02, 1.0, (1.0 / alpha).ln()).is_some())
            .count();
        assert!(
            (alarms as f64) / 1000.0 < alpha,
            "false alarms {alarms}/1000"
        );
    }

    #[test]
    fn power_at_five_times_the_error_rate() {
        // 5 candidate and 45 baseline requests per tick, 1 % vs 5 % errors, alpha = 0.001:
        // at least 90 % of runs reject within 60 ticks.
        let hits = (0..200u64)
            .filter(|s| run(*s, 60, 5, 45, 0.01, 0.05, 1.25, (1000f64).ln()).is_some())
            .count();
        assert!(hits >= 180, "power {hits}/200");
    }
}
