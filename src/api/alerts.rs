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
