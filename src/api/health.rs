//! Liveness, readiness and the Prometheus `/metrics` page.

use super::AppState;
use crate::telemetry::PromWriter;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::atomic::Ordering;
use tokio_stream::StreamExt as _;

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

/// The Prometheus page, rendered on a blocking thread and streamed in chunks (gzip-compressed
/// when the scraper accepts it, as Prometheus does by default), so a large graph's page is
/// never held whole and rendering never stalls the API's async workers.
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let gzip = accepts_gzip(&headers);
    // Two chunks in flight: a slow scraper holds the renderer, not memory.
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(2);
    let exporters = s.metrics.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = PromWriter::streaming(gzip, tx);
        for m in exporters.iter() {
            m.export_metrics(&mut w);
            w.boundary();
        }
        w.finish_stream();
    });
    let body = axum::body::Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>),
    );
    let ct = (
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    if gzip {
        let vary = (header::VARY, "accept-encoding");
        ([ct, (header::CONTENT_ENCODING, "gzip"), vary], body).into_response()
    } else {
        ([ct], body).into_response()
    }
}

/// Whether `Accept-Encoding` lists gzip with a non-zero weight.
fn accepts_gzip(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.trim().split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("gzip") && !q_zero
        })
}
