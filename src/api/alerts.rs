//! `GET /api/v1/alerts`: current alerts (firing and recently resolved) with their
//! delivery state at every sink, for the dashboard and on-call tooling.

use super::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/alerts", get(alerts))
}

async fn alerts(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "alerts": s.alerting.alerts() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::config::StateConfig;
    use crate::analysis::graph::config::GraphConfig;
    use crate::analysis::Analyzer;
    use crate::clock::ManualClock;
    use crate::model::{Decision, DeploymentVerdict, Evidence, Reason, Scope, Signal};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use std::sync::Arc;
    use tower::ServiceExt;

    const NOW: u64 = 1_800_000_000_000_000_000;

    #[tokio::test]
    async fn lists_alerts_with_labels_and_status() {
        let dir = tempfile::tempdir().unwrap();
        let analyzer = Analyzer::new(&StateConfig::default(), &GraphConfig::default());
        let state =
            AppState::standalone(analyzer, Arc::new(ManualClock::new(NOW)), dir.path()).unwrap();
        let verdict = DeploymentVerdict {
            environment: "prod".into(),
            service: "cart".into(),
            version: "2.0".into(),
            baseline_version: Some("1.0".into()),
            verdict: Decision::Rollback,
            started_at: "2027-01-15T08:00:00Z".into(),
            requests: 300,
            reasons: vec![Reason {
                signal: Signal::ErrorRate,
                scope: Scope::SelfScope,
                operation: None,
                caller: None,
                callee: None,
                regression: true,
                summary: "errors 1% -> 20%".into(),
                evidence: Evidence::default(),
            }],
        };
        state.alerting.update(&[verdict], &[], NOW + 1);
        let req = Request::get("/api/v1/alerts").body(Body::empty()).unwrap();
        let resp = routes().with_state(state).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let a = &json["alerts"][0];
        assert_eq!(a["status"], "firing");
        assert_eq!(a["labels"]["alertname"], "DeploymentRegression");
        assert_eq!(a["labels"]["version"], "2.0");
        assert_eq!(
            a["dedup_key"],
            format!("verdict-{}", a["fingerprint"].as_str().unwrap())
        );
    }
}
