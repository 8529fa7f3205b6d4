//! One judged stream group of a deployment (a scope and peer): its e-processes for the
//! error rate and each latency quantile, fed every tick with candidate and baseline counts
//! (same window) or candidate counts against the replaced version's history, plus the
//! cumulative and windowed counts that give effect sizes, gates and promotion bounds.

use super::stats::{conditional, conditional::Table, history, Mixture, BET_GRID};
use super::track::{Counts, StreamKey, MAXQ};
use crate::model::{Name, Scope};
use std::collections::{BTreeMap, VecDeque};

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
    /// Per stratum, the candidate's counts while judged against history, and that history.
    pub hist_strata: BTreeMap<StreamKey, (Tally, Tally)>,
    /// ln E of the history tests (errors, then each quantile); a separate e-value from the
    /// same-window mixtures, each given half of the test's alpha.
    pub hist_errors: f64,
    pub hist_latency: [f64; MAXQ],
}

/// The counts a history test needs from one stratum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub n: u64,
    pub err: u64,
    pub n_lat: u64,
    /// Latency exceedances: the candidate's above its thresholds, the history's above the
    /// baseline's.
    pub exc: [u64; MAXQ],
}

/// One tick's input for one stratum.
pub struct StratumTick<'a> {
    pub key: &'a StreamKey,
    pub cand: &'a Counts,
    pub base: Option<&'a Counts>,
    /// Replaced version's history for this stratum when there is no live baseline.
    pub history: Option<&'a Counts>,
}

impl SignalTest {
    /// Feeds one tick (all strata of this group). `omega0` is the error margin (odds for
    /// the same-window test, rate ratio against history).
    pub fn update(&mut self, strata: &[StratumTick<'_>], omega0: f64, nq: usize) {
        let mut err_f = vec![0.0; BET_GRID.len()];
        let mut lat_f = vec![vec![0.0; BET_GRID.len()]; nq];
        let (mut wc, mut wb) = (Counts::default(), Counts::default());
        let mut hist_changed = false;
        let mut hist_sum = Counts::default();
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
                hist_sum.add(h);
                let (c, past) = self.hist_strata.entry(s.key.clone()).or_default();
                c.n += s.cand.n;
                c.err += s.cand.err;
                c.n_lat += s.cand.n_lat;
                for i in 0..nq {
                    c.exc[i] += s.cand.exc_cand[i];
                }
                *past = Tally {
                    n: h.n,
                    err: h.err,
                    n_lat: h.n_lat,
                    exc: h.exc_base,
                };
                hist_changed = true;
            }
        }
        if hist_changed {
            self.history = hist_sum;
            self.refresh_history_tests(omega0, nq);
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

    /// Recomputes the history e-values over every stratum judged against history (their
    /// product: the strata are independent samples).
    fn refresh_history_tests(&mut self, omega0: f64, nq: usize) {
        let strata = self.hist_strata.values();
        self.hist_errors = strata
            .clone()
            .map(|(c, h)| history::log_e(c.err, c.n, h.err, h.n, omega0))
            .sum();
        for i in 0..nq {
            self.hist_latency[i] = strata
                .clone()
                .map(|(c, h)| history::log_e(c.exc[i], c.n_lat, h.exc[i], h.n_lat, 1.0))
                .sum();
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
        if self.from_history || self.base.n == 0 {
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
