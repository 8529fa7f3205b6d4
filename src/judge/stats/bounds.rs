//! Confidence bounds on a proportion: exact Clopper-Pearson (one look, e.g. a fixed
//! history) and a time-uniform confidence sequence (Robbins' beta-binomial mixture with a
//! Jeffreys prior) for bounds that are looked at every second. Also "how many more
//! requests" until an upper bound would fall below a margin at the current rate.

use super::ln_gamma;

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// Regularized incomplete beta I_x(a, b) (continued fraction, Lentz).
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b)).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..400 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-14 {
            break;
        }
    }
    h
}

/// P(Binomial(n, p) <= k).
pub fn binom_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    beta_inc((n - k) as f64, k as f64 + 1.0, 1.0 - p)
}

/// Largest p in `[lo, 1]` with `pred(p)` true, assuming `pred` holds up to a point.
fn bisect_upper(lo: f64, pred: impl Fn(f64) -> bool) -> f64 {
    let (mut a, mut b) = (lo, 1.0);
    if pred(b) {
        return 1.0;
    }
    for _ in 0..60 {
        let m = 0.5 * (a + b);
        if pred(m) {
            a = m;
        } else {
            b = m;
        }
    }
    a
}

/// One-sided exact (Clopper-Pearson) upper bound at level `1 - alpha`.
pub fn clopper_pearson_upper(k: u64, n: u64, alpha: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    bisect_upper(k as f64 / n as f64, |p| binom_cdf(k, n, p) > alpha)
}

/// Upper end of a time-uniform `1 - alpha` confidence sequence for a Bernoulli rate after
/// `k` events in `n` trials: the largest p whose beta-binomial mixture martingale is still
/// below `1/alpha`. Valid simultaneously for every n.
pub fn cs_upper(k: u64, n: u64, alpha: f64) -> f64 {
    cs_upper_prior(k, n, alpha, JEFFREYS)
}

/// The Jeffreys prior Beta(1/2, 1/2): the mixing prior when no rate is singled out.
pub const JEFFREYS: (f64, f64) = (0.5, 0.5);

/// The mixing prior Beta(1, (1 - c) / c), whose mean is `c` (clamped to [1e-4, 0.5]): a
/// mixture centred on the rate one wants to rule out tightens the upper bound there
/// (about 12 % at a few hundred requests and a 3 % bound) and stays valid for every n.
pub fn prior_centred(c: f64) -> (f64, f64) {
    let c = c.clamp(1e-4, 0.5);
    (1.0, (1.0 - c) / c)
}

/// [`cs_upper`] with the beta mixing prior `(a, b)` (fixed before the data is seen).
pub fn cs_upper_prior(k: u64, n: u64, alpha: f64, prior: (f64, f64)) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let ln_m = ln_mixture(k, n, prior);
    let limit = (1.0 / alpha).ln();
    bisect_upper(k as f64 / n as f64, |p| ln_m(p) < limit)
}

/// ln of the beta-binomial mixture martingale against rate `p` after `k` events in `n`
/// trials: at most 0 at `k/n` and increasing above it.
fn ln_mixture(k: u64, n: u64, (a, b): (f64, f64)) -> impl Fn(f64) -> f64 {
    let (kf, nf) = (k as f64, n as f64);
    let mix = ln_beta(kf + a, nf - kf + b) - ln_beta(a, b);
    move |p: f64| mix - kf * p.ln() - (nf - kf) * (1.0 - p).ln()
}

/// Whether [`cs_upper_prior`] is at most `bound`, from one evaluation of the martingale
/// instead of a bisection: the bound is the crossing of `1/alpha` above `k/n`, where the
/// martingale increases, so it lies at or below `bound` exactly when the martingale has
/// crossed by `bound`.
pub fn cs_upper_within(k: u64, n: u64, alpha: f64, prior: (f64, f64), bound: f64) -> bool {
    if bound >= 1.0 {
        return true;
    }
    if n == 0 || k as f64 / n as f64 >= bound {
        return false;
    }
    ln_mixture(k, n, prior)(bound) >= (1.0 / alpha).ln()
}

/// Lower end of the same confidence sequence.
pub fn cs_lower(k: u64, n: u64, alpha: f64) -> f64 {
    1.0 - cs_upper(n.saturating_sub(k), n, alpha)
}

/// Total trials at which the confidence-sequence upper bound would fall to `bound` if the
/// rate stayed at `k/n` (at least `n`), for [`cs_upper_prior`] with `prior`. None when the
/// current rate is already at or above the bound.
pub fn trials_needed(k: u64, n: u64, bound: f64, alpha: f64, prior: (f64, f64)) -> Option<u64> {
    let rate = if n == 0 { 0.0 } else { k as f64 / n as f64 };
    if rate >= bound {
        return None;
    }
    let ok = |m: u64| cs_upper_within((rate * m as f64).round() as u64, m, alpha, prior, bound);
    let mut hi = n.max(1);
    while !ok(hi) {
        if hi > 1 << 40 {
            return None;
        }
        hi *= 2;
    }
    let mut lo = hi / 2;
    while hi - lo > 1.max(hi / 100) {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi.max(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Bernoulli, Distribution};

    #[test]
    fn clopper_pearson_matches_known_values() {
        // 0 of 10 at 95 %: 1 - 0.05^(1/10) = 0.2589.
        assert!((clopper_pearson_upper(0, 10, 0.05) - 0.258_87).abs() < 1e-4);
        // 3 of 10 at 95 % one-sided: 0.6066 (R: binom.test(3,10,alt="less")).
        assert!((clopper_pearson_upper(3, 10, 0.05) - 0.606_5).abs() < 1e-3);
    }

    #[test]
    fn binom_cdf_sums_the_pmf() {
        let (n, p) = (20u64, 0.3f64);
        let mut acc = 0.0;
        for k in 0..=n {
            acc += (super::super::ln_choose(n, k)
                + k as f64 * p.ln()
                + (n - k) as f64 * (1.0 - p).ln())
            .exp();
            assert!((binom_cdf(k, n, p) - acc).abs() < 1e-10, "k={k}");
        }
    }

    #[test]
    fn confidence_sequence_covers_uniformly_over_time() {
        // 500 runs of 2,000 Bernoulli(0.05) draws: the bound must hold at every n in at
        // least 1 - alpha of runs.
        let alpha = 0.05;
        let mut misses = 0;
        for seed in 0..500u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let d = Bernoulli::new(0.05).unwrap();
            let mut k = 0;
            for n in 1..=2000u64 {
                k += d.sample(&mut rng) as u64;
                if n % 10 == 0 && (cs_upper(k, n, alpha) < 0.05 || cs_lower(k, n, alpha) > 0.05) {
                    misses += 1;
                    break;
                }
            }
        }
        assert!((misses as f64) / 500.0 < alpha, "{misses}/500");
    }

    #[test]
    fn a_centred_prior_covers_uniformly_and_is_tighter_near_its_centre() {
        let (alpha, p) = (0.05, 0.015);
        let prior = prior_centred(0.035);
        let mut misses = 0;
        for seed in 0..500u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + seed);
            let d = Bernoulli::new(p).unwrap();
            let mut k = 0;
            for n in 1..=3000u64 {
                k += d.sample(&mut rng) as u64;
                if n % 10 == 0 && cs_upper_prior(k, n, alpha, prior) < p {
                    misses += 1;
                    break;
                }
            }
        }
        assert!((misses as f64) / 500.0 < alpha, "{misses}/500");
        assert!(cs_upper_prior(10, 700, 0.0167, prior) < cs_upper(10, 700, 0.0167) * 0.92);
    }

    #[test]
    fn the_one_step_check_agrees_with_the_bisected_bound() {
        use rand::Rng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut inside, mut outside) = (0, 0);
        for _ in 0..20_000 {
            let n = rng.random_range(0..5_000u64);
            let k = rng.random_range(0..=n / 4);
            let bound = rng.random_range(0.0005..0.6);
            let alpha = [0.0167, 0.05, 0.01][rng.random_range(0..3)];
            let prior = prior_centred(bound);
            let ub = cs_upper_prior(k, n, alpha, prior);
            let within = cs_upper_within(k, n, alpha, prior, bound);
            // Away from the crossing itself (where bisection's last bit decides), they agree.
            if (ub - bound).abs() > 1e-12 {
                assert_eq!(within, ub <= bound, "k={k} n={n} bound={bound} ub={ub}");
            }
            if within {
                inside += 1;
            } else {
                outside += 1;
            }
        }
        assert!(inside > 1_000 && outside > 1_000, "{inside} / {outside}");
        assert!(cs_upper_within(0, 0, 0.05, JEFFREYS, 1.0));
        assert!(!cs_upper_within(0, 0, 0.05, JEFFREYS, 0.5));
    }

    #[test]
    fn trials_needed_is_where_the_bound_crosses() {
        let n = trials_needed(1, 100, 0.03, 0.05, JEFFREYS).unwrap();
        assert!(n > 100);
        let k = (0.01 * n as f64).round() as u64;
        assert!(cs_upper(k, n, 0.05) <= 0.03);
        assert!(trials_needed(5, 100, 0.03, 0.05, JEFFREYS).is_none());
    }
}
