//! Liveness, readiness and the Prometheus `/metrics` page.

use super::AppState;
use crate::telemetry::PromWriter;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::Ordering;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

/// The Prometheus page; gzip-compressed while it is rendered when the scraper accepts it
/// (Prometheus does by default), so a large graph's page is never held whole as text.
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.trim().split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("gzip") && !q_zero
        });
    let mut w = if gzip {
        PromWriter::gzip()
    } else {
        PromWriter::new()
    };
    for m in s.metrics.iter() {
        m.export_metrics(&mut w);
    }
    let ct = (
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    if gzip {
        let vary = (header::VARY, "accept-encoding");
        (
            [ct, (header::CONTENT_ENCODING, "gzip"), vary],
            w.finish_bytes(),
        )
            .into_response()
    } else {
        ([ct], w.finish_bytes()).into_response()
    }
}
