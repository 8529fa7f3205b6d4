//! Configuration of the judge (section `judge`): error budget, practical margins,
//! deployment lifecycle, trace holding buffer and the decision log.

use crate::config::Validate;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Section `judge`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JudgeConfig {
    /// Deployment-level false-rollback budget under continuous looking. Default 0.01.
    pub alpha: f64,
    /// Level of the upper bounds that must clear the margins before `promote`. Default 0.05.
    pub promote_alpha: f64,
    /// Minimum absolute error-rate increase that matters. Default 0.005 (0.5 points).
    pub error_margin_abs: f64,
    /// Relative error-rate (odds) increase tolerated. Default 0.25.
    pub error_margin_rel: f64,
    /// Absolute error-rate increase that `promote` must rule out (the upper bound of the
    /// candidate's rate must sit below baseline x (1 + rel) + this). Wider than
    /// `error_margin_abs`: ruling out +0.5 points at a 1 % base rate takes thousands of
    /// requests, while ruling out +3 points takes a few hundred; smaller regressions are
    /// the rollback test's job, which keeps running. Default 0.03.
    pub promote_error_margin_abs: f64,
    /// Relative latency increase at a quantile that matters. Default 0.1 (10 % slower).
    pub latency_margin_rel: f64,
    /// Relative latency increase at a quantile that `promote` must rule out (the share of
    /// candidate requests slower than baseline q-quantile x (1 + this) must be bounded
    /// below 1 - q). Wider than `latency_margin_rel` for the same reason as the error
    /// margin. Default 0.25.
    pub promote_latency_margin_rel: f64,
    /// Baseline quantiles tested for latency. Default [0.5, 0.9, 0.99, 0.999].
    pub quantiles: Vec<f64>,
    /// Quantiles that must be bounded before `promote`. Default [0.5, 0.9].
    pub promote_quantiles: Vec<f64>,
    /// Candidate requests needed before `promote`. Default 300.
    pub min_requests: u64,
    /// Deployment age needed before `promote`. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub min_duration: Duration,
    /// A version that serves nothing for this long has stopped. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub stop_after: Duration,
    /// Deployments stay listed this long after their last traffic. Default `15m`.
    #[serde(with = "humantime_serde")]
    pub retire_after: Duration,
    /// Versions seen within this time of a service's first span are its running versions:
    /// the stable one becomes the baseline, each other one is judged against it as a
    /// deployment (no version is judged before this time). Default `10s`.
    #[serde(with = "humantime_serde")]
    pub startup_grace: Duration,
    /// Live deployments judged at once. A new version found while this many are live waits
    /// (oldest first, gauge `verdict_judge_deployments_waiting`) until one ends; an
    /// explicit marker is refused with 429. Default 256.
    pub max_deployments: usize,
    /// Edge and path peers judged per deployment and scope (the alpha split). Default 8.
    pub max_peers: usize,
    /// Services tracked per environment. Default 2000.
    pub max_services: usize,
    /// Versions tracked per service. Default 8.
    pub max_versions: usize,
    /// Operations (strata) per version and scope; the rest share `_other`. Default 32.
    pub max_operations: usize,
    /// How long a trace's spans are held before path tagging. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub trace_hold: Duration,
    /// Spans held for path tagging; beyond seven eighths of it new traces are dropped and
    /// counted, beyond it any span. Default 50000.
    pub max_held_spans: usize,
    /// JSON-lines decision log; empty disables it. Default `./verdict-data/decisions.jsonl`
    /// (beside the alert store).
    pub decision_log: String,
    /// Size at which the decision log rotates. Default 64 MiB.
    pub decision_log_max_bytes: u64,
    /// Rotated decision logs kept (`.1` ...). Default 3.
    pub decision_log_keep: u32,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            alpha: 0.01,
            promote_alpha: 0.05,
            error_margin_abs: 0.005,
            error_margin_rel: 0.25,
            promote_error_margin_abs: 0.03,
            latency_margin_rel: 0.1,
            promote_latency_margin_rel: 0.25,
            quantiles: vec![0.5, 0.9, 0.99, 0.999],
            promote_quantiles: vec![0.5, 0.9],
            min_requests: 300,
            min_duration: Duration::from_secs(60),
            stop_after: Duration::from_secs(30),
            retire_after: Duration::from_secs(15 * 60),
            startup_grace: Duration::from_secs(10),
            max_deployments: 256,
            max_peers: 8,
            max_services: 2000,
            max_versions: 8,
            max_operations: 32,
            trace_hold: Duration::from_secs(5),
            max_held_spans: 50_000,
            decision_log: "./verdict-data/decisions.jsonl".into(),
            decision_log_max_bytes: 64 << 20,
            decision_log_keep: 3,
        }
    }
}

fn check_unit(path: &str, field: &str, v: f64, problems: &mut Vec<String>) {
    if !(v > 0.0 && v < 1.0) {
        problems.push(format!(
            "{path}.{field}: {v} must be between 0 and 1 (exclusive)"
        ));
    }
}

impl Validate for JudgeConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        check_unit(path, "alpha", self.alpha, problems);
        check_unit(path, "promote_alpha", self.promote_alpha, problems);
        check_unit(path, "error_margin_abs", self.error_margin_abs, problems);
        check_unit(
            path,
            "promote_error_margin_abs",
            self.promote_error_margin_abs,
            problems,
        );
        if !(self.error_margin_rel >= 0.0 && self.error_margin_rel.is_finite()) {
            problems.push(format!("{path}.error_margin_rel: must be >= 0"));
        }
        if !(self.latency_margin_rel >= 0.0 && self.latency_margin_rel.is_finite()) {
            problems.push(format!("{path}.latency_margin_rel: must be >= 0"));
        }
        if !(self.promote_latency_margin_rel >= 0.0 && self.promote_latency_margin_rel.is_finite())
        {
            problems.push(format!("{path}.promote_latency_margin_rel: must be >= 0"));
        }
        if self.quantiles.is_empty() || self.quantiles.len() > 4 {
            problems.push(format!("{path}.quantiles: give 1 to 4 quantiles"));
        }
        for q in self.quantiles.iter().chain(&self.promote_quantiles) {
            check_unit(path, "quantiles", *q, problems);
        }
        for q in &self.promote_quantiles {
            if !self.quantiles.contains(q) {
                problems.push(format!("{path}.promote_quantiles: {q} is not in quantiles"));
            }
        }
        if self.retire_after < Duration::from_secs(60) {
            problems.push(format!("{path}.retire_after: must be at least 1m"));
        }
        // The judge ticks once a second: a shorter stop would end every deployment between
        // two batches, and a zero hold would tag traces before their spans arrive.
        if self.stop_after < Duration::from_secs(1) {
            problems.push(format!("{path}.stop_after: must be at least 1s"));
        }
        if self.trace_hold.is_zero() {
            problems.push(format!("{path}.trace_hold: must be above zero"));
        }
        for (f, v) in [
            ("max_deployments", self.max_deployments),
            ("max_peers", self.max_peers),
            ("max_services", self.max_services),
            ("max_versions", self.max_versions),
            ("max_operations", self.max_operations),
            ("max_held_spans", self.max_held_spans),
        ] {
            if v == 0 {
                problems.push(format!("{path}.{f}: must be at least 1"));
            }
        }
        if self.max_versions < 2 {
            problems.push(format!("{path}.max_versions: must be at least 2"));
        }
    }
}

impl JudgeConfig {
    /// Index of a quantile in `quantiles`.
    pub fn quantile_index(&self, q: f64) -> Option<usize> {
        self.quantiles.iter().position(|x| (x - q).abs() < 1e-12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Validate;

    #[test]
    fn default_is_valid_and_meaningless_values_are_all_reported() {
        let mut problems = Vec::new();
        JudgeConfig::default().validate("judge", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let bad = JudgeConfig {
            stop_after: Duration::ZERO,
            trace_hold: Duration::ZERO,
            retire_after: Duration::from_secs(1),
            max_peers: 0,
            ..JudgeConfig::default()
        };
        bad.validate("judge", &mut problems);
        let all = problems.join("\n");
        for key in ["stop_after", "trace_hold", "retire_after", "max_peers"] {
            assert!(
                all.contains(&format!("judge.{key}:")),
                "{key} not reported: {all}"
            );
        }
        assert_eq!(problems.len(), 4, "{all}");
    }
}
