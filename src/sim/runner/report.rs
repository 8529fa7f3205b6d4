//! What the runner measured: one outcome per scenario run (or replayed case), the totals
//! over a suite, and their text and JSON renderings.

use serde::Serialize;
use std::collections::BTreeMap;

/// The result of one scenario run or replayed case.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub environment: String,
    /// The culprit as `service@version`, or None for a healthy run.
    pub expected_culprit: Option<String>,
    /// The expected culprit got a `rollback` verdict or a DeploymentRegression alert.
    pub detected: bool,
    /// Seconds from the onset to the culprit's first `rollback` verdict.
    pub delay_to_rollback_s: Option<f64>,
    /// Seconds from the onset to the first alert naming the culprit.
    pub delay_to_alert_s: Option<f64>,
    /// Deployments blamed that are not the culprit (`service@version`), by verdict or alert.
    pub wrong_culprits: Vec<String>,
    /// Firing alerts naming a deployment other than the culprit.
    pub false_alerts: usize,
    /// The watched deployment's last verdict (None when never listed).
    pub final_verdict: Option<String>,
    pub expected_final: Vec<String>,
    /// Everything as expected: detected when a culprit exists, nobody wrongly blamed,
    /// final verdict among the expected ones.
    pub pass: bool,
    /// Evidence summaries of the culprit's verdict, for the report.
    pub evidence: Vec<String>,
    /// The watched (candidate) deployment's measured requests per second.
    pub candidate_rps: Option<f64>,
    /// Polls of the verdict API that failed (the answer is then unreliable).
    pub api_errors: u64,
    /// Seconds from the onset to the first notification naming the culprit, per sink
    /// type other than the webhook (`slack`, `pagerduty`), when the runner is its sink.
    pub sink_delays_s: BTreeMap<String, f64>,
}

/// Median and p95 of one sink's delays.
#[derive(Debug, Clone, Serialize)]
pub struct SinkDelay {
    pub runs: usize,
    pub median_s: Option<f64>,
    pub p95_s: Option<f64>,
}

/// Totals over a suite.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub runs: usize,
    pub passed: usize,
    pub with_culprit: usize,
    pub detected: usize,
    /// detected / with_culprit.
    pub recall: Option<f64>,
    /// Runs that blamed a wrong deployment.
    pub runs_with_wrong_culprit: usize,
    /// Firing alerts on wrong deployments, summed.
    pub false_alerts: usize,
    pub median_delay_to_rollback_s: Option<f64>,
    pub p95_delay_to_rollback_s: Option<f64>,
    pub median_delay_to_alert_s: Option<f64>,
    pub p95_delay_to_alert_s: Option<f64>,
    /// Onset -> first notification per sink type (the webhook's is `*_delay_to_alert_s`).
    pub sink_delays: BTreeMap<String, SinkDelay>,
}

fn quantile(mut v: Vec<f64>, q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(idx).copied()
}

impl Totals {
    /// Sums outcomes.
    pub fn of(outcomes: &[Outcome]) -> Totals {
        let with_culprit = outcomes
            .iter()
            .filter(|o| o.expected_culprit.is_some())
            .count();
        let detected = outcomes
            .iter()
            .filter(|o| o.expected_culprit.is_some() && o.detected)
            .count();
        let rb: Vec<f64> = outcomes
            .iter()
            .filter_map(|o| o.delay_to_rollback_s)
            .collect();
        let al: Vec<f64> = outcomes.iter().filter_map(|o| o.delay_to_alert_s).collect();
        let mut per_sink: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for o in outcomes {
            for (k, v) in &o.sink_delays_s {
                per_sink.entry(k.clone()).or_default().push(*v);
            }
        }
        let sink_delays = per_sink
            .into_iter()
            .map(|(k, v)| {
                let d = SinkDelay {
                    runs: v.len(),
                    median_s: quantile(v.clone(), 0.5),
                    p95_s: quantile(v, 0.95),
                };
                (k, d)
            })
            .collect();
        Totals {
            runs: outcomes.len(),
            passed: outcomes.iter().filter(|o| o.pass).count(),
            with_culprit,
            detected,
            recall: (with_culprit > 0).then(|| detected as f64 / with_culprit as f64),
            runs_with_wrong_culprit: outcomes
                .iter()
                .filter(|o| !o.wrong_culprits.is_empty())
                .count(),
            false_alerts: outcomes.iter().map(|o| o.false_alerts).sum(),
            median_delay_to_rollback_s: quantile(rb.clone(), 0.5),
            p95_delay_to_rollback_s: quantile(rb, 0.95),
            median_delay_to_alert_s: quantile(al.clone(), 0.5),
            p95_delay_to_alert_s: quantile(al, 0.95),
            sink_delays,
        }
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.1}s"))
}

/// One line per outcome, aligned.
pub fn render_line(o: &Outcome) -> String {
    format!(
        "{:<4} {:<42} culprit={:<34} cand_rps={:>5} detected={:<3} rollback_after={:>7} alert_after={:>7}{} wrong={:<20} false_alerts={:<2} final={}{}",
        if o.pass { "PASS" } else { "FAIL" },
        o.environment,
        o.expected_culprit.as_deref().unwrap_or("none"),
        o.candidate_rps.map_or("-".into(), |r| format!("{r:.1}")),
        if o.detected { "yes" } else { "no" },
        secs(o.delay_to_rollback_s),
        secs(o.delay_to_alert_s),
        o.sink_delays_s.iter().map(|(k, v)| format!(" {k}={v:.1}s")).collect::<String>(),
        if o.wrong_culprits.is_empty() { "-".to_string() } else { o.wrong_culprits.join(",") },
        o.false_alerts,
        o.final_verdict.as_deref().unwrap_or("unlisted"),
        if o.api_errors > 0 { format!(" (API failed {} times)", o.api_errors) } else { String::new() },
    )
}

/// The totals as text.
pub fn render_totals(t: &Totals) -> String {
    let sinks: String = t
        .sink_delays
        .iter()
        .map(|(k, d)| format!(" | {k} median {} p95 {}", secs(d.median_s), secs(d.p95_s)))
        .collect();
    let head = format!(
        "runs {} passed {} | recall {} ({}/{}) | runs with a wrong culprit {} | false alerts {} | delay to rollback median {} p95 {} | to alert median {} p95 {}",
        t.runs,
        t.passed,
        t.recall.map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
        t.detected,
        t.with_culprit,
        t.runs_with_wrong_culprit,
        t.false_alerts,
        secs(t.median_delay_to_rollback_s),
        secs(t.p95_delay_to_rollback_s),
        secs(t.median_delay_to_alert_s),
        secs(t.p95_delay_to_alert_s),
    );
    format!("{head}{sinks}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(culprit: bool, detected: bool, delay: Option<f64>, wrong: bool) -> Outcome {
        Outcome {
            name: "x".into(),
            environment: "x-s1".into(),
            expected_culprit: culprit.then(|| "a@2".into()),
            detected,
            delay_to_rollback_s: delay,
            delay_to_alert_s: delay.map(|d| d + 1.0),
            wrong_culprits: if wrong { vec!["b@1".into()] } else { vec![] },
            false_alerts: usize::from(wrong),
            final_verdict: Some("rollback".into()),
            expected_final: vec!["rollback".into()],
            pass: detected && !wrong,
            evidence: vec![],
            candidate_rps: Some(5.0),
            api_errors: 0,
            sink_delays_s: BTreeMap::from([("slack".to_string(), delay.unwrap_or(0.0) + 2.0)]),
        }
    }

    #[test]
    fn totals_count_recall_wrong_culprits_and_delays() {
        let v = vec![
            outcome(true, true, Some(10.0), false),
            outcome(true, true, Some(20.0), false),
            outcome(true, false, None, true),
            outcome(false, false, None, false),
        ];
        let t = Totals::of(&v);
        assert_eq!((t.runs, t.with_culprit, t.detected, t.passed), (4, 3, 2, 2));
        assert!((t.recall.unwrap_or(0.0) - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!((t.runs_with_wrong_culprit, t.false_alerts), (1, 1));
        assert_eq!(t.median_delay_to_rollback_s, Some(20.0));
        assert_eq!(t.p95_delay_to_alert_s, Some(21.0));
        assert!(render_totals(&t).contains("recall 67% (2/3)"));
        let slack = &t.sink_delays["slack"];
        assert_eq!((slack.runs, slack.median_s), (4, Some(12.0)));
        assert!(render_totals(&t).contains("slack median 12.0s"));
    }
}
