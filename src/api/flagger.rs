//! Flagger webhooks: `POST /api/v1/flagger/{hook}` with Flagger's payload
//! `{"name","namespace","phase",..}`, keyed by the workload name (matched to `service.name`
//! or `k8s.deployment.name`, `X` or `X-primary`) and namespace (as the environment when it
//! matches one). `rollout`: non-2xx only for `rollback`; `confirm-promotion` and
//! `confirm-traffic-increase`: 2xx only for `promote`; `rollback`: 2xx exactly when the
//! verdict is `rollback`; `confirm-rollout`: 2xx unless the verdict is `rollback`.

use super::AppState;
use crate::model::Decision;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/flagger/{hook}", post(hook))
}

/// Flagger's webhook payload (fields verdict uses).
#[derive(Deserialize)]
struct Payload {
    name: String,
    #[serde(default)]
    namespace: String,
}

/// The status a hook answers for a decision (None: no deployment known yet).
pub fn hook_status(hook: &str, d: Option<Decision>) -> Option<StatusCode> {
    let ok = StatusCode::OK;
    let no = StatusCode::PRECONDITION_FAILED;
    Some(match (hook, d) {
        ("rollout", Some(Decision::Rollback)) => StatusCode::CONFLICT,
        ("rollout", _) => ok,
        ("confirm-rollout", Some(Decision::Rollback)) => no,
        ("confirm-rollout", _) => ok,
        ("confirm-promotion" | "confirm-traffic-increase", Some(Decision::Promote)) => ok,
        ("confirm-promotion" | "confirm-traffic-increase", _) => no,
        ("rollback", Some(Decision::Rollback)) => ok,
        ("rollback", _) => no,
        _ => return None,
    })
}

async fn hook(
    State(s): State<AppState>,
    Path(hook): Path<String>,
    body: Result<Json<Payload>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(p)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                serde_json::json!({"error": "expected Flagger's {\"name\",\"namespace\"} payload"}),
            ),
        )
            .into_response();
    };
    let ns = (!p.namespace.is_empty()).then_some(p.namespace.as_str());
    let v = s.judge.workload_verdict(ns, &p.name, s.clock.now());
    let Some(status) = hook_status(&hook, v.as_ref().map(|v| v.verdict)) else {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": format!("unknown hook {hook}")})),
        )
            .into_response();
    };
    let body = match v {
        Some(v) => serde_json::to_value(v).unwrap_or_default(),
        None => {
            serde_json::json!({"verdict": "inconclusive", "reasons": [{"signal": "coverage", "scope": "self", "summary": "no deployment of this workload has been seen yet"}]})
        }
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_follow_flagger_semantics() {
        use Decision::*;
        assert_eq!(
            hook_status("rollout", Some(Inconclusive)),
            Some(StatusCode::OK)
        );
        assert_eq!(
            hook_status("rollout", Some(Rollback)),
            Some(StatusCode::CONFLICT)
        );
        assert_eq!(
            hook_status("confirm-promotion", Some(Inconclusive)),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(
            hook_status("confirm-traffic-increase", Some(Promote)),
            Some(StatusCode::OK)
        );
        assert_eq!(
            hook_status("rollback", Some(Promote)),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(
            hook_status("rollback", Some(Rollback)),
            Some(StatusCode::OK)
        );
        assert_eq!(
            hook_status("rollback", None),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(hook_status("bogus", None), None);
    }
}
