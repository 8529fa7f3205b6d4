//! Verdicts as the judge emits them, for feeding `Alerting::update` in tests.

use verdict::model::{Decision, DeploymentVerdict, Evidence, Reason, Scope, Signal};

/// A reason with evidence; `edge` gives it caller/callee.
pub fn reason(
    signal: Signal,
    scope: Scope,
    edge: Option<(&str, &str)>,
    regression: bool,
) -> Reason {
    Reason {
        signal,
        scope,
        operation: None,
        caller: edge.map(|e| e.0.into()),
        callee: edge.map(|e| e.1.into()),
        regression,
        summary: format!("{} {} regressed", signal.as_str(), scope.as_str()),
        evidence: Evidence {
            baseline_value: 0.01,
            candidate_value: 0.2,
            quantile: None,
            effect: 0.19,
            baseline_samples: 1000,
            candidate_samples: 200,
            test: "bernoulli mixture e-process".into(),
            statistic: 1e6,
            confidence: 0.99,
            exemplar_trace_ids: vec!["0af7651916cd43dd8448eb211c80319c".into()],
        },
    }
}

/// A verdict for `env/service@version` (baseline `v1`).
pub fn verdict(
    env: &str,
    service: &str,
    version: &str,
    decision: Decision,
    reasons: Vec<Reason>,
) -> DeploymentVerdict {
    DeploymentVerdict {
        environment: env.into(),
        service: service.into(),
        version: version.into(),
        baseline_version: Some("v1".into()),
        verdict: decision,
        started_at: "2026-01-01T00:00:00Z".into(),
        requests: 500,
        reasons,
    }
}
