//! Liveness, readiness and the Prometheus `/metrics` page.

use super::AppState;
use crate::telemetry::PromWriter;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
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

/// Scrapes rendered at once; more are answered 503 (each holds a copy of the edges' totals
/// and a blocking thread while its scraper reads).
pub const MAX_SCRAPES: usize = 4;

/// The Prometheus page, rendered on a blocking thread and streamed in chunks (gzip-compressed
/// when the scraper accepts it, as Prometheus does by default), so a large graph's page is
/// never held whole and rendering never stalls the API's async workers.
async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let Ok(permit) = s.scrapes.clone().try_acquire_owned() else {
        let msg = format!("{MAX_SCRAPES} scrapes of /metrics are in progress; retry\n");
        let retry = (header::RETRY_AFTER, "1");
        return (StatusCode::SERVICE_UNAVAILABLE, [retry], msg).into_response();
    };
    let gzip = accepts_gzip(&headers);
    // Two chunks in flight: a slow scraper holds the renderer, not memory.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    let exporters = s.metrics.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut w = PromWriter::streaming(gzip, tx);
        for m in exporters.iter() {
            m.export_metrics(&mut w);
            w.boundary();
        }
        w.finish_stream();
    });
    let body = axum::body::Body::from_stream(page_chunks(rx));
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

/// The chunks of a streamed page up to its end marker (an empty chunk); a page the renderer
/// gave up (or panicked in) ends with an error, so the connection is cut instead of the
/// scraper taking a partial page for a whole one.
fn page_chunks(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(c) if c.is_empty() => None,
            Some(c) => Some((Ok(c), Some(rx))),
            None => {
                let cut = std::io::Error::other("the /metrics page was cut short");
                Some((Err(cut), None))
            }
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::config::StateConfig;
    use crate::analysis::graph::config::GraphConfig;
    use crate::analysis::Analyzer;
    use crate::clock::ManualClock;
    use axum::body::Body;
    use axum::http::Request;
    use std::sync::Arc;
    use tower::ServiceExt;

    #[tokio::test]
    async fn metrics_are_refused_while_every_scrape_slot_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let analyzer = Analyzer::new(&StateConfig::default(), &GraphConfig::default());
        let mut state =
            AppState::standalone(analyzer, Arc::new(ManualClock::new(1)), dir.path()).unwrap();
        state.metrics = Arc::new(vec![
            state.judge.clone() as Arc<dyn crate::telemetry::ExportMetrics>
        ]);
        let scrape = || {
            let req = Request::get("/metrics").body(Body::empty()).unwrap();
            routes().with_state(state.clone()).oneshot(req)
        };
        let held = state
            .scrapes
            .clone()
            .acquire_many_owned(MAX_SCRAPES as u32)
            .await
            .unwrap();
        let resp = scrape().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        drop(held);
        let resp = scrape().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("verdict_judge_streams "), "{text}");
        // The render's slot is given back once the page is sent.
        let all = state.scrapes.clone().acquire_many_owned(MAX_SCRAPES as u32);
        let _all = tokio::time::timeout(std::time::Duration::from_secs(5), all)
            .await
            .expect("every slot free again")
            .unwrap();
    }

    #[tokio::test]
    async fn a_page_cut_short_ends_in_an_error() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Bytes::from_static(b"a 1\n")).await.unwrap();
        drop(tx);
        let body = Body::from_stream(page_chunks(rx));
        assert!(axum::body::to_bytes(body, 1 << 20).await.is_err());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Bytes::from_static(b"a 1\n")).await.unwrap();
        tx.send(Bytes::new()).await.unwrap();
        drop(tx);
        let body = Body::from_stream(page_chunks(rx));
        assert_eq!(
            &axum::body::to_bytes(body, 1 << 20).await.unwrap()[..],
            b"a 1\n"
        );
    }
}
