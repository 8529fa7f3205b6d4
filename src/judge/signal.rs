//! One judged stream group of a deployment (a scope and peer): its e-processes for the
//! error rate and each latency quantile, fed every tick with candidate and baseline counts
//! (same window) or candidate counts against the replaced version's history, plus the
//! cumulative and windowed counts that give effect sizes, gates and promotion bounds.

use super::stats::{conditional, conditional::Table, history, Mixture, BET_GRID};
use super::track::{Counts, StreamKey, MAXQ};
use crate::analysis::slot_log::SlotLog;
use crate::model::{Name, Scope};
use std::collections::BTreeMap;

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
    /// Candidate and baseline requests, errors and latency of each of the last
    /// [`WINDOW_TICKS`] ticks that had any (indexed by `ticks`), frozen.
    window_cand: SlotLog,
    window_base: SlotLog,
    /// Ticks fed.
    ticks: u64,
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
    /// Estimated bytes of the test in its map: key, state and heap.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<(TestKey, SignalTest)>()
            + self.cand.hist.heap_bytes()
            + self.base.hist.heap_bytes()
            + self.history.hist.heap_bytes()
            + self.window_cand.heap_bytes()
            + self.window_base.heap_bytes()
            + self.exemplars.capacity() * 16
            + self.hist_strata.len() * std::mem::size_of::<(StreamKey, (Tally, Tally))>()
    }

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
        self.ticks += 1;
        let oldest = self.ticks.saturating_sub(WINDOW_TICKS as u64 - 1);
        for (log, c) in [(&mut self.window_cand, &wc), (&mut self.window_base, &wb)] {
            if c.n > 0 || c.err > 0 || !c.hist.is_empty() {
                log.push(self.ticks, c.n, c.err, &c.hist);
            }
            log.drop_before(oldest);
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

    /// Candidate and baseline requests, errors and latency over the recent window
    /// (baseline: history when the live baseline is gone). The threshold counts are not
    /// summed: the window is read for rates and quantiles.
    pub fn windowed(&self) -> (Counts, Counts) {
        let sum = |log: &SlotLog| {
            let mut c = Counts::default();
            for t in log.iter() {
                c.n += t.requests;
                c.err += t.errors;
                t.merge_latency_into(&mut c.hist);
            }
            c
        };
        let (c, mut b) = (sum(&self.window_cand), sum(&self.window_base));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: u64, err: u64, lat: &[u64]) -> Counts {
        let mut c = Counts {
            n,
            err,
            n_lat: lat.len() as u64,
            ..Default::default()
        };
        for l in lat {
            c.hist.record(*l);
        }
        c
    }

    #[test]
    fn window_sums_the_last_ticks_exactly() {
        let mut t = SignalTest::default();
        let key = StreamKey {
            scope: Scope::SelfScope,
            peer: Name::default(),
            op: Name::default(),
        };
        let mut fed = Vec::new();
        for i in 0..75u64 {
            // Some ticks without candidate or baseline traffic.
            let lat: Vec<u64> = (0..i % 5)
                .map(|k| 1_000_000 + i * 7_919 * (k + 1))
                .collect();
            let c = counts(lat.len() as u64, i % 3 % 2, &lat);
            let b = counts(
                if i % 4 == 0 { 0 } else { 3 },
                0,
                if i % 4 == 0 { &[] } else { &lat[..] },
            );
            t.update(
                &[StratumTick {
                    key: &key,
                    cand: &c,
                    base: Some(&b),
                    history: None,
                }],
                1.0,
                1,
            );
            fed.push((c, b));
            let (wc, wb) = t.windowed();
            let (mut ec, mut eb) = (Counts::default(), Counts::default());
            for (c, b) in fed.iter().rev().take(WINDOW_TICKS) {
                ec.add(c);
                eb.add(b);
            }
            assert_eq!(
                (wc.n, wc.err, &wc.hist),
                (ec.n, ec.err, &ec.hist),
                "tick {i}"
            );
            assert_eq!(
                (wb.n, wb.err, &wb.hist),
                (eb.n, eb.err, &eb.hist),
                "tick {i}"
            );
        }
    }
}
