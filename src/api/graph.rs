//! `GET /api/v1/graph[?environment=E][&window=DURATION][&format=dot]`: the versioned
//! dependency graph as JSON, or as Graphviz DOT (`Accept: text/vnd.graphviz` or
//! `format=dot`).

use super::AppState;
use crate::analysis::graph::dot;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

/// The media type of DOT output.
pub const DOT_MEDIA_TYPE: &str = "text/vnd.graphviz";

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/graph", get(graph))
}

/// Query parameters.
#[derive(Debug, Deserialize)]
pub struct GraphQuery {
    pub environment: Option<String>,
    /// A duration such as `30s` or `5m`; at most the graph's horizon.
    pub window: Option<String>,
    /// `json` (default) or `dot`.
    pub format: Option<String>,
}

/// A malformed query.
#[derive(Debug, thiserror::Error)]
pub enum GraphQueryError {
    #[error("window {0:?} is not a duration like 30s or 5m")]
    Window(String),
    #[error("format {0:?} is neither json nor dot")]
    Format(String),
}

impl IntoResponse for GraphQueryError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

async fn graph(
    State(s): State<AppState>,
    Query(q): Query<GraphQuery>,
    headers: HeaderMap,
) -> Result<Response, GraphQueryError> {
    let graph = &s.analyzer.graph;
    let window = match q.window.as_deref() {
        None => graph.default_window_ns(),
        Some(w) => humantime::parse_duration(w)
            .ok()
            .filter(|d| !d.is_zero())
            .map(|d| (d.as_nanos() as u64).min(graph.horizon_ns()))
            .ok_or_else(|| GraphQueryError::Window(w.to_string()))?,
    };
    let dot = wants_dot(q.format.as_deref(), &headers)?;
    let now = s.clock.now();
    // `to` is exclusive: include calls recorded at `now` itself.
    let snapshot = graph.snapshot(
        q.environment.as_deref(),
        now.saturating_sub(window),
        now + 1,
    );
    Ok(if dot {
        (
            [(header::CONTENT_TYPE, DOT_MEDIA_TYPE)],
            dot::render(&snapshot),
        )
            .into_response()
    } else {
        Json(snapshot).into_response()
    })
}

fn wants_dot(format: Option<&str>, headers: &HeaderMap) -> Result<bool, GraphQueryError> {
    match format {
        Some("dot") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(GraphQueryError::Format(other.to_string())),
        None => Ok(headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|m| m.trim().starts_with(DOT_MEDIA_TYPE)))),
    }
}
