//! Candidate against a fixed history (replacement deploys): an e-value for
//! "candidate rate <= omega x history rate" from both samples, with neither rate known.
//!
//! `E = M / sup_{H0} L`: `M` is the likelihood of the history and the candidate's counts
//! under independent Beta(1/5, 1) priors on both rates (a beta-binomial marginal each), `L` the
//! binomial likelihood maximised over the null `p_c <= omega p_h`. For every null pair of
//! rates, `M / L(p_h, p_c)` is a nonnegative martingale as candidate requests arrive (the
//! history enters as data at time zero, and the marginal of any history has mean one), and
//! `E` is below it, so `P(sup_t E_t >= 1/alpha) <= alpha` under continuous looking
//! (universal inference with a mixture numerator). Binomial coefficients cancel.
//!
//! Compared with testing the candidate against a fixed upper bound of the history rate,
//! this does not pay a separate confidence level for the bound, which matters when the
//! history is short or holds no errors at all.
//!
//! The prior: every stratum (operation) pays for its two unknown rates, and most strata
//! of a healthy service hold few or no events. Jeffreys' Beta(1/2, 1/2) loses about
//! `0.6 + ln(n)/2` nats on a stratum without events, per side; Beta(1/5, 1), whose mass
//! sits near zero as error and tail rates do, loses about a third of that, and as much as
//! Jeffreys at a 10 % rate (p90 exceedances). With three operations and an error-free
//! history, 5 % errors cross the self-scope threshold after about 250 candidate requests
//! instead of more than 600 (the scenario suite's replacement case).

use super::ln_gamma;

/// The prior Beta(A, B) of both rates.
const PRIOR: (f64, f64) = (0.2, 1.0);

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ln of the beta-binomial marginal of `k` events in `n` under the prior, without the
/// binomial coefficient.
fn ln_marginal(k: u64, n: u64) -> f64 {
    let (k, n) = (k as f64, n as f64);
    let (a, b) = PRIOR;
    ln_beta(k + a, n - k + b) - ln_beta(a, b)
}

/// `k ln p + (n - k) ln(1 - p)`, with `0 ln 0 = 0`.
fn ln_lik(k: u64, n: u64, p: f64) -> f64 {
    let (k, m) = (k as f64, (n.saturating_sub(k)) as f64);
    let a = if k > 0.0 { k * p.ln() } else { 0.0 };
    let b = if m > 0.0 { m * (1.0 - p).ln() } else { 0.0 };
    a + b
}

/// Largest joint log likelihood on the null's boundary `p_c = omega p_h`.
fn ln_sup_boundary(kc: u64, nc: u64, kh: u64, nh: u64, omega: f64) -> f64 {
    let hi = if omega > 1.0 { 1.0 / omega } else { 1.0 };
    let at = |p: f64| ln_lik(kh, nh, p) + ln_lik(kc, nc, omega * p);
    // The log likelihood is concave in p: bisect on the sign of its derivative.
    let events = (kh + kc) as f64;
    let (h_miss, c_miss) = ((nh - kh) as f64, (nc - kc) as f64);
    let slope = |p: f64| events / p - h_miss / (1.0 - p) - omega * c_miss / (1.0 - omega * p);
    let (mut lo, mut up) = (0.0f64, hi);
    for _ in 0..100 {
        let mid = 0.5 * (lo + up);
        if slope(mid) > 0.0 {
            lo = mid;
        } else {
            up = mid;
        }
    }
    at(0.5 * (lo + up))
}

/// ln E for `kc` events in `nc` candidate requests against `kh` in `nh` of history, under
/// H0: candidate rate <= `omega` x history rate (`omega >= 1`).
pub fn log_e(kc: u64, nc: u64, kh: u64, nh: u64, omega: f64) -> f64 {
    let (kc, kh) = (kc.min(nc), kh.min(nh));
    if nc == 0 || nh == 0 {
        return 0.0;
    }
    let mixture = ln_marginal(kh, nh) + ln_marginal(kc, nc);
    let (ph, pc) = (kh as f64 / nh as f64, kc as f64 / nc as f64);
    let sup = if pc <= omega * ph {
        ln_lik(kh, nh, ph) + ln_lik(kc, nc, pc)
    } else {
        ln_sup_boundary(kc, nc, kh, nh, omega)
    };
    mixture - sup
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Binomial, Distribution};

    #[test]
    fn no_evidence_without_candidate_data_and_none_for_a_lower_rate() {
        assert_eq!(log_e(0, 0, 5, 500, 1.25), 0.0);
        assert!(log_e(1, 500, 10, 500, 1.25) < 0.0);
    }

    #[test]
    fn boundary_maximum_is_the_grid_maximum() {
        for &(kc, nc, kh, nh, w) in &[
            (20u64, 300u64, 0u64, 564u64, 1.25),
            (7, 100, 3, 900, 1.0),
            (50, 60, 1, 10, 1.25),
        ] {
            let b = ln_sup_boundary(kc, nc, kh, nh, w);
            let grid = (1..20_000)
                .map(|j| {
                    let p = j as f64 / 20_000.0 / w;
                    ln_lik(kh, nh, p) + ln_lik(kc, nc, w * p)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(b >= grid - 1e-6 && b - grid < 1e-2, "{b} vs {grid}");
        }
    }

    /// The replacement case of the scenario suite: 5 % errors against an error-free history
    /// of a few hundred requests is found within about 400 requests (30 s at 14 req/s).
    #[test]
    fn finds_errors_against_an_error_free_history() {
        let le = log_e(20, 400, 0, 564, 1.25);
        assert!(le > (2000f64).ln(), "{le}");
    }

    /// The same case spread over three operations (strata, whose e-values multiply) is
    /// found within 280 candidate requests; under Jeffreys' prior the three strata's
    /// costs kept the product below 1 at that point (ln E = 1.4, threshold 7.8).
    #[test]
    fn three_error_free_strata_do_not_drown_the_evidence() {
        let le = 3.0 * log_e(5, 93, 0, 293, 1.25);
        assert!(le > (2500f64).ln(), "{le}");
        // An operation with no events on either side costs little.
        assert!(log_e(0, 100, 0, 300, 1.25) > -2.5);
    }

    /// The marginal is a proper distribution: over every outcome of n trials (binomial
    /// coefficients included) it sums to one.
    #[test]
    fn marginal_sums_to_one() {
        for n in [1u64, 7, 60] {
            let total: f64 = (0..=n)
                .map(|k| (super::super::ln_choose(n, k) + ln_marginal(k, n)).exp())
                .sum();
            assert!((total - 1.0).abs() < 1e-9, "n={n}: {total}");
        }
    }

    /// Under the null (equal rates, and the rate at the margin) with a look after every
    /// batch, the false-alarm rate stays below alpha, histories drawn afresh per run.
    #[test]
    fn null_false_alarms_below_alpha_with_continuous_looking() {
        let alpha: f64 = 0.05;
        for &(p, omega) in &[(0.02, 1.0), (0.01, 1.25), (0.2, 1.0), (0.002, 1.0)] {
            let mut alarms = 0;
            for seed in 0..500u64 {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let nh = 400;
                let kh = Binomial::new(nh, p).unwrap().sample(&mut rng);
                let (mut kc, mut nc) = (0, 0);
                for _ in 0..200 {
                    kc += Binomial::new(10, (p * omega).min(1.0))
                        .unwrap()
                        .sample(&mut rng);
                    nc += 10;
                    if log_e(kc, nc, kh, nh, omega) >= (1.0 / alpha).ln() {
                        alarms += 1;
                        break;
                    }
                }
            }
            assert!(
                (alarms as f64) / 500.0 < alpha,
                "p={p} omega={omega}: {alarms}/500"
            );
        }
    }
}
