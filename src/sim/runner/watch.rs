//! Watching one environment while its scenario runs: polls the verdict API, notes when
//! each deployment is first judged `rollback`, and at the end combines that with the
//! alerts the webhook sink received into an [`Outcome`].

use super::analyzer::{deployments, summaries, ApiDeployment};
use super::report::Outcome;
use super::webhook::ReceivedAlert;
use crate::sim::scenario::DeploymentRef;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// What a correct judge concludes, and when the trouble starts.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub name: String,
    pub environment: String,
    pub culprit: Option<DeploymentRef>,
    pub watched: Option<DeploymentRef>,
    pub final_verdict: Vec<String>,
    /// When the regression (or incident) begins; None for a healthy run.
    pub onset: Option<Instant>,
    /// When the run began (rollback verdicts before the onset count as false).
    pub start: Instant,
}

/// Observations of one environment.
pub struct Watch {
    pub expect: Expectation,
    first_rollback: BTreeMap<String, Instant>,
    last: Vec<ApiDeployment>,
    /// The watched deployment's request count at its first and latest sighting.
    watched_requests: Option<((Instant, u64), (Instant, u64))>,
    pub api_errors: u64,
}

fn key(service: &str, version: &str) -> String {
    format!("{service}@{version}")
}

impl Watch {
    pub fn new(expect: Expectation) -> Self {
        Self {
            expect,
            first_rollback: BTreeMap::new(),
            last: Vec::new(),
            watched_requests: None,
            api_errors: 0,
        }
    }

    /// Records one answer of the API.
    pub fn observe(&mut self, list: Vec<ApiDeployment>, now: Instant) {
        for d in list.iter().filter(|d| d.verdict == "rollback") {
            self.first_rollback
                .entry(key(&d.service, &d.version))
                .or_insert(now);
        }
        if let Some(w) = &self.expect.watched {
            if let Some(d) = list
                .iter()
                .find(|d| d.service == w.service && d.version == w.version)
            {
                let seen = (now, d.requests);
                let first = self.watched_requests.map_or(seen, |(f, _)| f);
                self.watched_requests = Some((first, seen));
            }
        }
        self.last = list;
    }

    /// The watched deployment's measured request rate between its first and latest sighting.
    fn candidate_rps(&self) -> Option<f64> {
        let ((t0, n0), (t1, n1)) = self.watched_requests?;
        let secs = t1.checked_duration_since(t0)?.as_secs_f64();
        (secs >= 1.0).then(|| n1.saturating_sub(n0) as f64 / secs)
    }

    /// Polls the API every second until `until`.
    pub async fn poll_until(&mut self, client: &reqwest::Client, api: &str, until: Instant) {
        while Instant::now() < until {
            match deployments(client, api, &self.expect.environment).await {
                Ok(list) => self.observe(list, Instant::now()),
                Err(e) => {
                    self.api_errors += 1;
                    tracing::warn!(environment = %self.expect.environment, error = %error_chain(&e), "verdict API poll failed");
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
    }

    /// Combines verdicts and alerts into the outcome.
    pub fn finish(self, alerts: &[ReceivedAlert]) -> Outcome {
        let e = &self.expect;
        let culprit = e.culprit.as_ref().map(|c| key(&c.service, &c.version));
        let onset = e.onset.unwrap_or(e.start);
        let since_onset = |t: Instant| t.checked_duration_since(onset).map(|d| d.as_secs_f64());
        let mut wrong = BTreeSet::new();
        for (k, t) in &self.first_rollback {
            if Some(k) != culprit.as_ref() || *t < onset {
                wrong.insert(k.clone());
            }
        }
        let regression: Vec<&ReceivedAlert> = alerts
            .iter()
            .filter(|a| {
                a.status == "firing"
                    && a.labels
                        .get("alertname")
                        .is_some_and(|n| n == "DeploymentRegression")
            })
            .collect();
        let mut first_alert = None;
        let mut false_alerts = 0;
        for a in &regression {
            let named = key(
                a.labels.get("service").map_or("", |s| s),
                a.labels.get("version").map_or("", |s| s),
            );
            if Some(&named) == culprit.as_ref() && a.at >= onset {
                first_alert = first_alert.or(Some(a.at));
            } else {
                false_alerts += 1;
                wrong.insert(named);
            }
        }
        let delay_to_rollback_s = culprit
            .as_ref()
            .and_then(|c| self.first_rollback.get(c))
            .and_then(|t| since_onset(*t));
        let delay_to_alert_s = first_alert.and_then(since_onset);
        let detected =
            culprit.is_some() && (delay_to_rollback_s.is_some() || delay_to_alert_s.is_some());
        let watched = e.watched.as_ref().and_then(|w| {
            self.last
                .iter()
                .find(|d| d.service == w.service && d.version == w.version)
        });
        let final_verdict = watched.map(|d| d.verdict.clone());
        let final_ok = final_verdict
            .as_ref()
            .is_some_and(|v| e.final_verdict.contains(v))
            || (final_verdict.is_none() && e.final_verdict.iter().any(|v| v == "inconclusive"));
        let pass = (culprit.is_none() || detected) && wrong.is_empty() && final_ok;
        Outcome {
            name: e.name.clone(),
            environment: e.environment.clone(),
            expected_culprit: culprit,
            detected,
            delay_to_rollback_s,
            delay_to_alert_s,
            wrong_culprits: wrong.into_iter().collect(),
            false_alerts,
            final_verdict,
            expected_final: e.final_verdict.clone(),
            pass,
            evidence: watched.map(summaries).unwrap_or_default(),
            candidate_rps: self.candidate_rps(),
            api_errors: self.api_errors,
            sink_delays_s: Default::default(),
        }
    }
}

/// An error with its causes (`reqwest` names the failing request, its sources say why:
/// refused, reset, timed out).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(service: &str, version: &str, verdict: &str) -> ApiDeployment {
        ApiDeployment {
            environment: "e".into(),
            service: service.into(),
            version: version.into(),
            baseline_version: Some("1".into()),
            verdict: verdict.into(),
            requests: 10,
            reasons: vec![
                serde_json::json!({"signal": "latency", "scope": "self", "summary": "p99 2x"}),
            ],
        }
    }

    fn alert(at: Instant, service: &str, version: &str) -> ReceivedAlert {
        let labels = [
            ("alertname", "DeploymentRegression"),
            ("environment", "e"),
            ("service", service),
            ("version", version),
        ];
        ReceivedAlert {
            at,
            status: "firing".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
        }
    }

    fn expectation(start: Instant, culprit: bool) -> Expectation {
        let c = DeploymentRef {
            service: "a".into(),
            version: "2".into(),
        };
        Expectation {
            name: "t".into(),
            environment: "e".into(),
            culprit: culprit.then(|| c.clone()),
            watched: Some(c),
            final_verdict: if culprit {
                vec!["rollback".into()]
            } else {
                vec!["promote".into(), "inconclusive".into()]
            },
            onset: culprit.then(|| start + Duration::from_secs(10)),
            start,
        }
    }

    #[test]
    fn error_chain_names_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("request failed")]
        struct Outer(#[source] std::io::Error);
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert_eq!(error_chain(&Outer(inner)), "request failed: reset by peer");
        // A cause already in the message is not repeated.
        let spawn = super::super::analyzer::AnalyzerError::Spawn {
            exe: "verdict".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(error_chain(&spawn), "starting verdict: no such file");
    }

    #[test]
    fn detection_delay_counts_from_the_onset() {
        let t0 = Instant::now();
        let mut w = Watch::new(expectation(t0, true));
        w.observe(
            vec![dep("a", "2", "inconclusive")],
            t0 + Duration::from_secs(5),
        );
        w.observe(
            vec![dep("a", "2", "rollback")],
            t0 + Duration::from_secs(14),
        );
        let o = w.finish(&[alert(t0 + Duration::from_secs(16), "a", "2")]);
        assert!(o.detected && o.pass, "{o:?}");
        assert_eq!(o.delay_to_rollback_s.map(|d| d.round()), Some(4.0));
        assert_eq!(o.delay_to_alert_s.map(|d| d.round()), Some(6.0));
        assert_eq!(o.evidence, vec!["p99 2x".to_string()]);
    }

    #[test]
    fn blaming_another_deployment_fails_the_run() {
        let t0 = Instant::now();
        let mut w = Watch::new(expectation(t0, true));
        w.observe(
            vec![dep("a", "2", "rollback"), dep("b", "1", "rollback")],
            t0 + Duration::from_secs(12),
        );
        let o = w.finish(&[]);
        assert!(o.detected && !o.pass);
        assert_eq!(o.wrong_culprits, vec!["b@1".to_string()]);
    }

    #[test]
    fn a_healthy_run_with_an_alert_is_a_false_alarm() {
        let t0 = Instant::now();
        let mut w = Watch::new(expectation(t0, false));
        w.observe(vec![dep("a", "2", "promote")], t0 + Duration::from_secs(3));
        let o = w.finish(&[alert(t0 + Duration::from_secs(2), "a", "2")]);
        assert!(!o.pass && !o.detected);
        assert_eq!(o.false_alerts, 1);
        assert_eq!(o.final_verdict.as_deref(), Some("promote"));
    }
}
