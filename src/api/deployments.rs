//! `/api/v1/deployments` (list, and POST markers from CD pipelines) and `/api/v1/verdict`
//! (one deployment, shaped for Argo Rollouts' `web` provider). Statuses: 200 whenever the
//! judge answers (including `inconclusive`), 400 for malformed or ambiguous questions.

use super::AppState;
use crate::judge::{DeploymentMarker, QueryError};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/deployments", get(list).post(mark))
        .route("/api/v1/verdict", get(verdict))
}

#[derive(Deserialize)]
struct ListQuery {
    environment: Option<String>,
}

#[derive(Deserialize)]
struct VerdictQuery {
    service: Option<String>,
    version: Option<String>,
    environment: Option<String>,
}

fn bad_request(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": msg })),
    )
        .into_response()
}

async fn list(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let deployments = s.judge.deployments(q.environment.as_deref());
    Json(serde_json::json!({ "deployments": deployments })).into_response()
}

async fn verdict(
    State(s): State<AppState>,
    query: Result<Query<VerdictQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return bad_request("malformed query".into());
    };
    let (Some(service), Some(version)) = (q.service.filter(|x| !x.is_empty()), q.version) else {
        return bad_request("service and version are required".into());
    };
    match s
        .judge
        .verdict(q.environment.as_deref(), &service, &version, s.clock.now())
    {
        Ok(v) => Json(v).into_response(),
        Err(e @ (QueryError::Ambiguous(_) | QueryError::Invalid(_))) => bad_request(e.to_string()),
    }
}

async fn mark(
    State(s): State<AppState>,
    body: Result<Json<DeploymentMarker>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(m)) = body else {
        return bad_request(
            "body must be {\"service\", \"version\"[, \"environment\", \"baseline_version\"]}"
                .into(),
        );
    };
    if m.service.is_empty() || m.version.is_empty() {
        return bad_request("service and version are required".into());
    }
    let (env, service, version) = (m.environment.clone(), m.service.clone(), m.version.clone());
    if let Err(e) = s.judge.mark(m, s.clock.now()) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Json(serde_json::json!({ "error": e })),
        )
            .into_response();
    }
    match s
        .judge
        .verdict(Some(&env), &service, &version, s.clock.now())
    {
        Ok(v) => (StatusCode::ACCEPTED, Json(v)).into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}
