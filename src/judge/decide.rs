//! Turns a deployment's signal tests into a verdict: `rollback` when a test crosses its
//! share of the error budget and the effect clears its practical margin; `promote` when
//! every bound clears its margin on enough data; otherwise `inconclusive`, saying how many
//! more requests would settle it at the current rates.

use super::config::JudgeConfig;
use super::signal::{SignalTest, TestKey};
use super::stats::bounds;
use super::track::Counts;
use crate::model::{Decision, Evidence, Name, Reason, Scope, Signal};

/// Share of the error budget per scope family.
pub fn family_share(scope: Scope) -> f64 {
    match scope {
        Scope::SelfScope => 0.4,
        _ => 0.2,
    }
}

/// Alpha of one test (one signal of one group): the family share split over the peers
/// judged and the signals (errors + quantiles).
pub fn test_alpha(cfg: &JudgeConfig, scope: Scope) -> f64 {
    let peers = if scope == Scope::SelfScope {
        1
    } else {
        cfg.max_peers
    };
    cfg.alpha * family_share(scope) / (peers as f64 * (1 + cfg.quantiles.len()) as f64)
}

/// What a deployment's decision needs besides its tests.
pub struct Context<'a> {
    pub service: &'a Name,
    pub baseline: Option<&'a Name>,
    pub requests: u64,
    pub age_ns: u64,
    /// Candidate requests per second recently (for "how long").
    pub rate: f64,
    /// Data was shed at ingest or by the trace buffer recently.
    pub shed: bool,
    /// An environment-wide incident makes history baselines unreliable.
    pub incident_hold: bool,
}

const E_TEST: &str =
    "same-window conditional e-process (noncentral hypergeometric, mixture of bets)";
const E_TEST_HISTORY: &str =
    "two-sample e-value against the replaced version's history (beta-binomial mixture over the null's maximum likelihood)";

fn ends(scope: Scope, service: &Name, peer: &Name) -> (Option<Name>, Option<Name>) {
    match scope {
        Scope::SelfScope => (None, None),
        Scope::Incoming => (Some(peer.clone()), Some(service.clone())),
        Scope::Outgoing | Scope::Path => (Some(service.clone()), Some(peer.clone())),
    }
}

fn where_(key: &TestKey) -> String {
    match key.scope {
        Scope::SelfScope => "own requests".into(),
        Scope::Outgoing => format!("calls to {}", key.peer),
        Scope::Incoming => format!("calls from {}", key.peer),
        Scope::Path => format!("{} further along its traces", key.peer),
    }
}

fn rate(c: &Counts) -> f64 {
    if c.n == 0 {
        0.0
    } else {
        c.err as f64 / c.n as f64
    }
}

fn ms(ns: Option<u64>) -> f64 {
    ns.map(|v| v as f64 / 1e6).unwrap_or(0.0)
}

fn reason(
    key: &TestKey,
    ctx: &Context<'_>,
    signal: Signal,
    regression: bool,
    summary: String,
    evidence: Evidence,
) -> Reason {
    let (caller, callee) = ends(key.scope, ctx.service, &key.peer);
    Reason {
        signal,
        scope: key.scope,
        operation: None,
        caller,
        callee,
        regression,
        summary,
        evidence,
    }
}

/// Regression reasons of one test, if any crosses its threshold and margin.
pub fn regressions(
    cfg: &JudgeConfig,
    key: &TestKey,
    t: &SignalTest,
    ctx: &Context<'_>,
) -> Vec<Reason> {
    let a = test_alpha(cfg, key.scope);
    let limit = (2.0 / a).ln();
    // The same-window mixture and the history test are separate e-values, each at half
    // the test's alpha: the larger decides, and the evidence names it.
    let pick = |mix: f64, hist: f64| {
        if hist > mix {
            (hist, E_TEST_HISTORY)
        } else {
            (mix, E_TEST)
        }
    };
    // Most tests cross nothing on most ticks: summing their windows (the costly part) waits
    // until one does.
    let crosses = pick(t.errors.log_e(), t.hist_errors).0 >= limit
        || (0..cfg.quantiles.len())
            .any(|i| pick(t.latency[i].log_e(), t.hist_latency[i]).0 >= limit);
    if !crosses {
        return Vec::new();
    }
    let (wc, wb) = t.windowed();
    let exemplars: Vec<String> = t.exemplars.iter().map(crate::model::trace_id_hex).collect();
    let mut out = Vec::new();
    let (rc, rb) = (rate(&wc), rate(&wb));
    let (le, test) = pick(t.errors.log_e(), t.hist_errors);
    if le >= limit && rc - rb >= cfg.error_margin_abs && rc > rb * (1.0 + cfg.error_margin_rel) {
        let ev = Evidence {
            baseline_value: rb,
            candidate_value: rc,
            quantile: None,
            effect: rc - rb,
            baseline_samples: t.baseline_total().n,
            candidate_samples: t.cand.n,
            test: test.into(),
            statistic: le.exp(),
            confidence: 1.0 - a,
            exemplar_trace_ids: exemplars.clone(),
        };
        let s = format!(
            "error rate {:.2}% vs {:.2}% on the baseline in {} (e-value {:.3e} >= {:.3e})",
            rc * 100.0,
            rb * 100.0,
            where_(key),
            le.exp(),
            limit.exp()
        );
        out.push(reason(key, ctx, Signal::ErrorRate, true, s, ev));
    }
    for (i, q) in cfg.quantiles.iter().enumerate() {
        let (le, test) = pick(t.latency[i].log_e(), t.hist_latency[i]);
        let (qc, qb) = (wc.hist.quantile(*q), wb.hist.quantile(*q));
        let (Some(qc), Some(qb)) = (qc, qb) else {
            continue;
        };
        let ratio = qc as f64 / (qb as f64).max(1.0);
        if le >= limit && ratio >= 1.0 + cfg.latency_margin_rel {
            let ev = Evidence {
                baseline_value: ms(Some(qb)),
                candidate_value: ms(Some(qc)),
                quantile: Some(*q),
                effect: ratio,
                baseline_samples: t.baseline_total().n_lat,
                candidate_samples: t.cand.n_lat,
                test: test.into(),
                statistic: le.exp(),
                confidence: 1.0 - a,
                exemplar_trace_ids: exemplars.clone(),
            };
            let s = format!("p{} latency {:.1} ms vs {:.1} ms on the baseline ({:.2}x) in {} (e-value {:.3e} >= {:.3e})", q * 100.0, ms(Some(qc)), ms(Some(qb)), ratio, where_(key), le.exp(), limit.exp());
            out.push(reason(key, ctx, Signal::Latency, true, s, ev));
        }
    }
    out
}

/// Whether a test's bounds clear the margins: Ok(reasons) or Err(requests still needed,
/// reason).
pub fn bounded(
    cfg: &JudgeConfig,
    key: &TestKey,
    t: &SignalTest,
    ctx: &Context<'_>,
) -> Result<Vec<Reason>, Box<(u64, Reason)>> {
    let signals = 1 + cfg.promote_quantiles.len();
    let a = cfg.promote_alpha / signals as f64;
    let b = t.baseline_total();
    let mut ok = Vec::new();
    let mut worst: Option<(u64, Reason)> = None;
    let mut check =
        |signal: Signal, q: Option<f64>, k: u64, n: u64, bound: f64, bv: f64, what: String| {
            let prior = bounds::prior_centred(bound);
            let ub = bounds::cs_upper_prior(k, n, a, prior);
            let ev = Evidence {
                baseline_value: bv,
                candidate_value: if n == 0 { 0.0 } else { k as f64 / n as f64 },
                quantile: q,
                effect: ub - bound,
                baseline_samples: b.n,
                candidate_samples: n,
                test: "beta-binomial confidence sequence".into(),
                statistic: ub,
                confidence: 1.0 - a,
                exemplar_trace_ids: vec![],
            };
            if ub <= bound {
                let s = format!(
                    "{what} in {}: upper bound {:.2}% within {:.2}%",
                    where_(key),
                    ub * 100.0,
                    bound * 100.0
                );
                ok.push(reason(key, ctx, signal, false, s, ev));
            } else {
                let need = bounds::trials_needed(k, n, bound, a, prior)
                    .map(|m| m.saturating_sub(n))
                    .unwrap_or(u64::MAX);
                let s = match need {
                    u64::MAX => format!(
                        "{what} in {}: {:.2}% is not below the margin {:.2}%",
                        where_(key),
                        ev.candidate_value * 100.0,
                        bound * 100.0
                    ),
                    m => format!(
                        "{what} in {}: needs about {m} more requests to bound it below {:.2}%",
                        where_(key),
                        bound * 100.0
                    ),
                };
                if worst.as_ref().is_none_or(|(w, _)| need > *w) {
                    worst = Some((need, reason(key, ctx, Signal::Coverage, false, s, ev)));
                }
            }
        };
    let rb = rate(b);
    check(
        Signal::ErrorRate,
        None,
        t.cand.err,
        t.cand.n,
        rb * (1.0 + cfg.error_margin_rel) + cfg.promote_error_margin_abs,
        rb,
        "error rate".into(),
    );
    for q in &cfg.promote_quantiles {
        let Some(i) = cfg.quantile_index(*q) else {
            continue;
        };
        if b.n_lat == 0 {
            continue;
        }
        let pb = b.exc_base[i] as f64 / b.n_lat as f64;
        let pb = if t.from_history {
            b.hist.count_above(b.hist.quantile(*q).unwrap_or(0)) as f64 / b.n_lat as f64
        } else {
            pb
        };
        check(
            Signal::Latency,
            Some(*q),
            t.cand.exc_promote[i],
            t.cand.n_lat,
            pb,
            pb,
            format!(
                "share above {:.0}% over baseline p{}",
                cfg.promote_latency_margin_rel * 100.0,
                q * 100.0
            ),
        );
    }
    match worst {
        Some(w) => Err(Box::new(w)),
        None => Ok(ok),
    }
}

/// The verdict and its reasons for a deployment's tests.
pub fn decide<'a>(
    cfg: &JudgeConfig,
    tests: impl Iterator<Item = (&'a TestKey, &'a SignalTest)> + Clone,
    ctx: &Context<'_>,
) -> (Decision, Vec<Reason>) {
    let regressions: Vec<Reason> = tests
        .clone()
        .flat_map(|(k, t)| regressions(cfg, k, t, ctx))
        .collect();
    let held = ctx.incident_hold && tests.clone().all(|(_, t)| t.from_history);
    if !regressions.is_empty() && !held {
        return (Decision::Rollback, regressions);
    }
    let mut reasons = Vec::new();
    let mut need = 0u64;
    let cov = |s: String| Reason {
        signal: Signal::Coverage,
        scope: Scope::SelfScope,
        operation: None,
        caller: None,
        callee: None,
        regression: false,
        summary: s,
        evidence: Evidence::default(),
    };
    if held {
        reasons.push(cov("an environment-wide incident is in progress: the replaced version's history is not a fair baseline".into()));
    }
    if ctx.baseline.is_none() {
        reasons.push(cov("no baseline version: nothing to compare against".into()));
    }
    if ctx.shed {
        reasons.push(cov(
            "telemetry was shed recently: not enough coverage to promote".into(),
        ));
    }
    if ctx.requests < cfg.min_requests {
        need = cfg.min_requests - ctx.requests;
        reasons.push(cov(format!(
            "{} requests so far; needs at least {} more",
            ctx.requests, need
        )));
    }
    let age_left = (cfg.min_duration.as_nanos() as u64).saturating_sub(ctx.age_ns);
    if age_left > 0 {
        reasons.push(cov(format!(
            "deployment is {} s old; promotion waits {} s more",
            ctx.age_ns / 1_000_000_000,
            age_left.div_ceil(1_000_000_000)
        )));
    }
    let mut ok = Vec::new();
    let mut self_seen = false;
    for (k, t) in tests {
        self_seen |= k.scope == Scope::SelfScope && t.cand.n > 0;
        if k.scope != Scope::SelfScope && t.cand.n < 30 {
            continue;
        }
        match bounded(cfg, k, t, ctx) {
            Ok(r) => ok.extend(r),
            Err(needed) => {
                let (n, r) = *needed;
                need = need.max(n);
                reasons.push(r);
            }
        }
    }
    if !self_seen {
        reasons.push(cov("no requests served by the candidate yet".into()));
    }
    if reasons.is_empty() {
        return (Decision::Promote, ok);
    }
    if need > 0 && need < u64::MAX && ctx.rate > 0.0 {
        reasons.push(cov(format!(
            "at {:.1} requests/s, about {} s more",
            ctx.rate,
            (need as f64 / ctx.rate).ceil()
        )));
    }
    (Decision::Inconclusive, reasons)
}
