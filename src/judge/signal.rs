//! One judged stream group of a deployment (a scope and peer): its e-processes for the
//! error rate and each latency quantile, fed every tick with candidate and baseline counts
//! (same window) or candidate counts against the replaced version's history, plus the
//! cumulative and windowed counts that give effect sizes, gates and promotion bounds.

use super::stats::{bounds, conditional, conditional::Table, Mixture, BET_GRID};
use super::track::{Counts, MAXQ};
use crate::model::{Name, Scope};
use std::collections::VecDeque;

/// Ticks kept for the practical-significance window.
const WINDOW_TICKS: usize = 30;

/// Which signal group this is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TestKey {
    pub scope: Scope,
    pub peer: Name,
}

/// The sequential state of one signal group.
#[derive(Debug, Clone, Default)]
pub struct SignalTest {
    pub errors: Mixture,
    pub latency: [Mixture; MAXQ],
    pub cand: Counts,
    pub base: Counts,
    pub window: VecDeque<(Counts, Counts)>,
    pub exemplars: Vec<[u8; 16]>,
    /// Whether the last evidence came from history (replacement) rather than a live baseline.
    pub from_history: bool,
    pub history: Counts,
}

/// One tick's input for one stratum.
pub struct StratumTick<'a> {
    pub cand: &'a Counts,
    pub base: Option<&'a Counts>,
    /// Replaced version's history for this stratum when there is no live baseline.
    pub history: Option<&'a Counts>,
}

impl SignalTest {
    /// Feeds one tick (all strata of this group). `omega0` is the error odds margin,
    /// `hist_alpha` the level of the bound taken on a history baseline.
    pub fn update(&mut self, strata: &[StratumTick<'_>], omega0: f64, nq: usize, hist_alpha: f64) {
        let mut err_f = vec![0.0; BET_GRID.len()];
        let mut lat_f = vec![vec![0.0; BET_GRID.len()]; nq];
        let (mut wc, mut wb) = (Counts::default(), Counts::default());
        for s in strata {
            wc.add(s.cand);
            if let Some(b) = s.base {
                wb.add(b);
                self.from_history = false;
                let t = Table {
                    n_c: s.cand.n,
                    k_c: s.cand.err,
                    n_b: b.n,
                    k_b: b.err,
                };
                add_into(&mut err_f, conditional::log_factors(&t, omega0, &BET_GRID));
                for (i, f) in lat_f.iter_mut().enumerate() {
                    let t = Table {
                        n_c: s.cand.n_lat,
                        k_c: s.cand.exc_cand[i],
                        n_b: b.n_lat,
                        k_b: b.exc_base[i],
                    };
                    add_into(f, conditional::log_factors(&t, 1.0, &BET_GRID));
                }
            } else if let Some(h) = s.history {
                self.from_history = true;
                self.history = h.clone();
                let p0 =
                    (bounds::clopper_pearson_upper(h.err, h.n, hist_alpha) * omega0).min(0.999);
                add_into(&mut err_f, one_sample(s.cand.n, s.cand.err, p0));
                for (i, f) in lat_f.iter_mut().enumerate() {
                    let p0 = bounds::clopper_pearson_upper(h.exc_base[i], h.n_lat, hist_alpha)
                        .min(0.999);
                    add_into(f, one_sample(s.cand.n_lat, s.cand.exc_cand[i], p0));
                }
            }
        }
        self.errors.add(&err_f);
        for (m, f) in self.latency.iter_mut().zip(&lat_f) {
            m.add(f);
        }
        self.cand.add(&wc);
        self.base.add(&wb);
        self.window.push_back((wc, wb));
        if self.window.len() > WINDOW_TICKS {
            self.window.pop_front();
        }
    }

    /// Candidate and baseline counts over the recent window (baseline: history when the
    /// live baseline is gone).
    pub fn windowed(&self) -> (Counts, Counts) {
        let (mut c, mut b) = (Counts::default(), Counts::default());
        for (x, y) in &self.window {
            c.add(x);
            b.add(y);
        }
        if self.from_history || b.n == 0 {
            b = self.history.clone();
        }
        (c, b)
    }

    /// Cumulative baseline (or history).
    pub fn baseline_total(&self) -> &Counts {
        if self.base.n == 0 {
            &self.history
        } else {
            &self.base
        }
    }
}

fn add_into(acc: &mut [f64], f: Option<Vec<f64>>) {
    if let Some(f) = f {
        for (a, x) in acc.iter_mut().zip(f) {
            *a += x;
        }
    }
}

fn one_sample(n: u64, k: u64, p0: f64) -> Option<Vec<f64>> {
    if n == 0 || !(p0 > 0.0 && p0 < 1.0) {
        return None;
    }
    Some(
        BET_GRID
            .iter()
            .map(|l| l * k as f64 - n as f64 * (1.0 - p0 + p0 * l.exp()).ln())
            .collect(),
    )
}
