//! `GET /api/v1/services[?environment=E][&window=DURATION][&operations=true]`: every
//! service's versions with the requests they served, errors and latency quantiles over a
//! recent window, read from the per-version state; with `operations=true` also each
//! (operation, span kind) series of the version, client calls included.

use super::AppState;
use crate::analysis::histogram::LatencyHistogram;
use crate::analysis::series::{OpStats, ServiceStats, VersionStats};
use crate::model::SpanKind;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Window used when the query names none.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/services", get(list))
}

/// Query parameters.
#[derive(Debug, Deserialize)]
struct ServicesQuery {
    environment: Option<String>,
    /// humantime duration (`30s`, `5m`, `1h`).
    window: Option<String>,
    /// `true`: also list each version's (operation, span kind) series.
    operations: Option<String>,
}

/// A malformed query.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("window: {value:?} is not a duration like 30s or 5m ({reason})")]
    BadWindow { value: String, reason: String },
    #[error("window: must be longer than zero")]
    ZeroWindow,
    #[error("operations: {0:?} is neither true nor false")]
    BadOperations(String),
}

impl IntoResponse for ServicesError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

/// The response body.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ServicesResponse {
    pub services: Vec<ServiceView>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ServiceView {
    pub environment: String,
    pub service: String,
    pub versions: Vec<VersionView>,
}

/// Served requests of one version: SERVER and CONSUMER spans, or request-duration metrics
/// where the version sends no spans for an operation.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct VersionView {
    pub version: String,
    pub requests: u64,
    pub errors: u64,
    pub latency_ms: LatencyView,
    /// Only with `operations=true` (the contract's shape is unchanged without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<OperationView>>,
}

/// One (operation, span kind) series of a version: for SERVER and CONSUMER the requests it
/// served, for CLIENT and PRODUCER the calls it made, for INTERNAL its internal spans.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct OperationView {
    pub operation: String,
    pub kind: SpanKind,
    pub requests: u64,
    pub errors: u64,
    pub latency_ms: LatencyView,
}

/// Latency quantiles in milliseconds; each is null when the window holds no latency sample
/// (the keys are always present).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct LatencyView {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

async fn list(
    State(state): State<AppState>,
    Query(q): Query<ServicesQuery>,
) -> Result<Json<ServicesResponse>, ServicesError> {
    let window = parse_window(q.window.as_deref())?;
    let operations = match q.operations.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(ServicesError::BadOperations(other.to_string())),
    };
    let now = state.clock.now();
    let from = now.saturating_sub(window.as_nanos() as u64);
    let stats =
        state
            .analyzer
            .series
            .services(q.environment.as_deref(), from, now.saturating_add(1));
    Ok(Json(ServicesResponse {
        services: stats.iter().map(|s| service_view(s, operations)).collect(),
    }))
}

fn parse_window(raw: Option<&str>) -> Result<Duration, ServicesError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_WINDOW);
    };
    let d = humantime::parse_duration(raw.trim()).map_err(|e| ServicesError::BadWindow {
        value: raw.to_string(),
        reason: e.to_string(),
    })?;
    if d.is_zero() {
        return Err(ServicesError::ZeroWindow);
    }
    Ok(d)
}

fn service_view(s: &ServiceStats, operations: bool) -> ServiceView {
    ServiceView {
        environment: s.environment.to_string(),
        service: s.service.to_string(),
        versions: s
            .versions
            .iter()
            .map(|v| version_view(v, operations))
            .collect(),
    }
}

fn version_view(v: &VersionStats, operations: bool) -> VersionView {
    VersionView {
        version: v.version.to_string(),
        requests: v.requests,
        errors: v.errors,
        latency_ms: latency_view(&v.latency),
        operations: operations.then(|| v.operations.iter().map(operation_view).collect()),
    }
}

fn operation_view(o: &OpStats) -> OperationView {
    OperationView {
        operation: o.operation.to_string(),
        kind: o.kind,
        requests: o.requests,
        errors: o.errors,
        latency_ms: latency_view(&o.latency),
    }
}

fn latency_view(h: &LatencyHistogram) -> LatencyView {
    let q = |q: f64| h.quantile(q).map(ns_to_ms);
    LatencyView {
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
    }
}

/// Nanoseconds to milliseconds, rounded to the microsecond.
fn ns_to_ms(ns: u64) -> f64 {
    (ns as f64 / 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::config::StateConfig;
    use crate::analysis::graph::config::GraphConfig;
    use crate::analysis::Analyzer;
    use crate::clock::ManualClock;
    use crate::model::{Resource, SpanBatch, SpanKind, SpanRecord};
    use axum::body::Body;
    use axum::http::Request;
    use std::sync::Arc;
    use tower::ServiceExt;

    const NOW: u64 = 1_700_000_000_000_000_000;

    fn span(res: &Arc<Resource>, kind: SpanKind, ms: u64, error: bool, timed: bool) -> SpanRecord {
        SpanRecord {
            resource: res.clone(),
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: [0; 8],
            operation: "GET /cart".into(),
            kind,
            start_unix_nano: NOW - ms * 1_000_000,
            end_unix_nano: NOW,
            error,
            timing_valid: timed,
            peer: None,
        }
    }

    fn resource(env: &str, version: &str) -> Arc<Resource> {
        Arc::new(Resource {
            environment: env.into(),
            service: "cart".into(),
            version: version.into(),
            ..Default::default()
        })
    }

    fn app() -> Router {
        let analyzer = Analyzer::new(&StateConfig::default(), &GraphConfig::default());
        let v1 = resource("prod", "1.0");
        let v2 = resource("prod", "2.0");
        let staging = resource("staging", "9.9");
        let mut spans: Vec<SpanRecord> = (1..=100)
            .map(|i| span(&v1, SpanKind::Server, i, i % 10 == 0, true))
            .collect();
        spans.push(span(&v1, SpanKind::Client, 500, true, true));
        spans.extend((0..3).map(|_| span(&v2, SpanKind::Consumer, 7, true, false)));
        spans.push(span(&staging, SpanKind::Server, 3, false, true));
        analyzer.series.record_spans(&SpanBatch { spans }, NOW);
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW + 1_000_000_000));
        let state = AppState::standalone(analyzer, clock, dir.path()).unwrap();
        routes().with_state(state)
    }

    async fn get(uri: &str) -> (StatusCode, serde_json::Value) {
        let req = Request::get(uri).body(Body::empty()).unwrap();
        let resp = app().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn lists_served_requests_per_version_in_the_contract_shape() {
        let (status, body) = get("/api/v1/services?environment=prod").await;
        assert_eq!(status, StatusCode::OK);
        let v1 = &body["services"][0]["versions"][0];
        assert_eq!(body["services"].as_array().unwrap().len(), 1);
        assert_eq!(body["services"][0]["environment"], "prod");
        assert_eq!(body["services"][0]["service"], "cart");
        assert_eq!(v1["version"], "1.0");
        // The client span is not a served request.
        assert_eq!(
            (v1["requests"].as_u64(), v1["errors"].as_u64()),
            (Some(100), Some(10))
        );
        let p50 = v1["latency_ms"]["p50"].as_f64().unwrap();
        let p99 = v1["latency_ms"]["p99"].as_f64().unwrap();
        assert!((p50 - 50.0).abs() <= 50.0 * 0.008, "p50 {p50}");
        assert!((p99 - 99.0).abs() <= 99.0 * 0.008, "p99 {p99}");
        // Consumer spans without usable timing: counted, latency keys kept as null.
        let v2 = &body["services"][0]["versions"][1];
        assert_eq!(v2["version"], "2.0");
        assert_eq!(
            (v2["requests"].as_u64(), v2["errors"].as_u64()),
            (Some(3), Some(3))
        );
        assert_eq!(
            v2["latency_ms"],
            serde_json::json!({"p50": null, "p90": null, "p99": null})
        );
    }

    #[tokio::test]
    async fn operations_on_request_list_every_series_client_calls_included() {
        let (_, plain) = get("/api/v1/services?environment=prod").await;
        assert!(
            plain["services"][0]["versions"][0]
                .get("operations")
                .is_none(),
            "the contract's shape without the parameter"
        );
        let (status, body) = get("/api/v1/services?environment=prod&operations=true").await;
        assert_eq!(status, StatusCode::OK);
        let ops = body["services"][0]["versions"][0]["operations"]
            .as_array()
            .unwrap();
        let row = |kind: &str| {
            ops.iter()
                .find(|o| o["kind"] == kind)
                .unwrap_or_else(|| panic!("no {kind} row in {ops:?}"))
        };
        assert_eq!(ops.len(), 2);
        let server = row("server");
        assert_eq!(server["operation"], "GET /cart");
        assert_eq!(
            (server["requests"].as_u64(), server["errors"].as_u64()),
            (Some(100), Some(10))
        );
        let client = row("client");
        assert_eq!(
            (client["requests"].as_u64(), client["errors"].as_u64()),
            (Some(1), Some(1))
        );
        let p50 = client["latency_ms"]["p50"].as_f64().unwrap();
        assert!((p50 - 500.0).abs() <= 500.0 * 0.008, "client p50 {p50}");
        // The version's own figures still count served requests only.
        assert_eq!(body["services"][0]["versions"][0]["requests"], 100);
        let (status, body) = get("/api/v1/services?operations=yes").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            body["error"],
            "operations: \"yes\" is neither true nor false"
        );
    }

    #[tokio::test]
    async fn without_environment_lists_every_environment() {
        let (status, body) = get("/api/v1/services?window=30s").await;
        assert_eq!(status, StatusCode::OK);
        let envs: Vec<_> = body["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["environment"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(envs, ["prod", "staging"]);
    }

    #[tokio::test]
    async fn bad_window_is_a_400_that_says_why() {
        for (uri, needle) in [
            (
                "/api/v1/services?window=5parsecs",
                "not a duration like 30s or 5m",
            ),
            ("/api/v1/services?window=0s", "longer than zero"),
        ] {
            let (status, body) = get(uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            let msg = body["error"].as_str().unwrap();
            assert!(msg.contains(needle), "{uri}: {msg}");
        }
    }
}
