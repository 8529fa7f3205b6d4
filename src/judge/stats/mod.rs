//! Statistics for the judge: always-valid sequential tests (e-processes) on counts, and
//! confidence bounds, all exact at low counts. Pure functions and small state; no I/O.
//!
//! - [`conditional`]: two-sample, same-window test. Per tick and stratum, conditional on the
//!   total number of events (errors, or latency exceedances), the candidate's share follows
//!   Fisher's noncentral hypergeometric law; a mixture of betting martingales over that law
//!   is an e-process under "candidate no worse than baseline (up to a margin)", valid
//!   whatever the rates do over time (global incidents cancel out).
//! - [`history`]: candidate counts against the replaced version's history (replacement
//!   deploys), with neither rate known: a mixture-over-maximum-likelihood e-value.
//! - [`bounds`]: Clopper-Pearson bounds and a time-uniform beta-binomial confidence
//!   sequence, used for promotion and for "how many more requests".

pub mod bounds;
pub mod conditional;
pub mod history;

/// Bets (log odds-ratio multipliers) mixed with equal weight by both e-processes.
/// exp(l) spans alternatives from 1.3x to 20x the null odds.
pub const BET_GRID: [f64; 6] = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0];

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error below 1e-13).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps accuracy near zero.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// ln C(n, k).
pub fn ln_choose(n: u64, k: u64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// ln(sum(exp(x))) without overflow.
pub fn log_sum_exp(xs: impl IntoIterator<Item = f64> + Clone) -> f64 {
    let m = xs.clone().into_iter().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.into_iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// A mixture of betting martingales over [`BET_GRID`]: each component keeps its own log
/// wealth; the e-value is their average.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    log_wealth: [f64; BET_GRID.len()],
}

impl Default for Mixture {
    fn default() -> Self {
        Self {
            log_wealth: [0.0; BET_GRID.len()],
        }
    }
}

impl Mixture {
    /// Adds one step: `factor(l)` is the log of the wealth multiplier of bet `l`.
    pub fn update(&mut self, factor: impl Fn(f64) -> f64) {
        let f: Vec<f64> = BET_GRID.iter().map(|l| factor(*l)).collect();
        self.add(&f);
    }

    /// Adds one step given each bet's log multiplier, in [`BET_GRID`] order.
    pub fn add(&mut self, log_factors: &[f64]) {
        for (w, f) in self.log_wealth.iter_mut().zip(log_factors) {
            if f.is_finite() {
                *w += f;
            }
        }
    }

    /// ln of the e-value (average wealth).
    pub fn log_e(&self) -> f64 {
        log_sum_exp(self.log_wealth) - (BET_GRID.len() as f64).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..30u32 {
            f *= n as f64;
            let got = ln_gamma(n as f64 + 1.0);
            assert!((got - f.ln()).abs() < 1e-9 * f.ln().max(1.0), "n={n}");
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let v = log_sum_exp([1000.0, 1000.0]);
        assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-9);
        assert_eq!(log_sum_exp([f64::NEG_INFINITY]), f64::NEG_INFINITY);
    }
}
