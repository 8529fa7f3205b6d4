//! The dashboard against verdict's real analysis state and API handlers (services, graph,
//! alerts): spans recorded into a real `Analyzer` while the page runs in headless Chromium.
//! A canary `checkout 2.0` fails a third of the calls `frontend` makes to it.

mod browser;

use browser::cdp::Browser;
use browser::fixture::HOSTILE;
use std::sync::Arc;
use std::time::Duration;
use verdict::analysis::config::StateConfig;
use verdict::analysis::graph::config::GraphConfig;
use verdict::analysis::Analyzer;
use verdict::api::AppState;
use verdict::clock::{Clock, SystemClock};
use verdict::model::{IngestItem, Resource, SpanBatch, SpanKind, SpanRecord, UnixNanos};

fn resource(service: &str, version: &str) -> Arc<Resource> {
    Arc::new(Resource {
        environment: "prod".into(),
        service: service.into(),
        version: version.into(),
        ..Default::default()
    })
}

fn span(
    res: &Arc<Resource>,
    kind: SpanKind,
    ids: (u64, u8, u8),
    now: UnixNanos,
    ms: u64,
    error: bool,
) -> SpanRecord {
    let (trace, span, parent) = ids;
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&trace.to_be_bytes());
    SpanRecord {
        resource: res.clone(),
        trace_id,
        span_id: [span; 8],
        parent_span_id: [parent; 8],
        operation: "GET /checkout".into(),
        kind,
        start_unix_nano: now - ms * 1_000_000,
        end_unix_nano: now,
        error,
        timing_valid: true,
        peer: None,
    }
}

/// One batch: `n` calls frontend -> checkout per checkout version and a call to the hostile service.
fn batch(round: u64, now: UnixNanos) -> SpanBatch {
    let frontend = resource("frontend", "5.1");
    let targets = [
        (resource("checkout", "1.9"), 0u64),
        (resource("checkout", "2.0"), 3),
        (resource(HOSTILE, "1"), 0),
    ];
    let mut spans = Vec::new();
    for i in 0..30u64 {
        for (t, (callee, fail_every)) in targets.iter().enumerate() {
            let trace = round * 1_000_000 + i * 10 + t as u64;
            let error = *fail_every > 0 && i % fail_every == 0;
            spans.push(span(
                &frontend,
                SpanKind::Client,
                (trace, 1, 0),
                now,
                12,
                error,
            ));
            spans.push(span(
                callee,
                SpanKind::Server,
                (trace, 2, 1),
                now,
                10,
                error,
            ));
        }
    }
    SpanBatch { spans }
}

#[tokio::test(flavor = "multi_thread")]
async fn page_shows_real_graph_and_services_live() {
    let dir = tempfile::tempdir().expect("dir");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let analyzer = Analyzer::new(&StateConfig::default(), &GraphConfig::default());
    let state = AppState::standalone(analyzer, clock.clone(), dir.path()).expect("state");
    let analyzer = state.analyzer.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, verdict::api::router(state)).await });
    let feeder = tokio::spawn(async move {
        for round in 0.. {
            let now = clock.now();
            analyzer.record(&IngestItem::Spans(batch(round, now)), now);
            analyzer.tick(now);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    let browser = Browser::launch();
    let mut page = browser.page().await;
    page.navigate(&format!("http://{addr}/?poll=300")).await;
    page.wait_for("document.querySelector('g.node[data-name=\"checkout\"] text.ver')?.textContent === '1.9, 2.0'", "checkout node with both versions").await;
    page.wait_for("document.querySelector('path.edge[data-caller=\"frontend\"][data-callee=\"checkout\"]')?.getAttribute('class') === 'edge worse'", "frontend -> checkout marked worse between versions").await;
    let healthy = page.eval("document.querySelector('path.edge[data-callee=\"<img src=x onerror=alert(1)>\"]')?.getAttribute('class')").await;
    assert_eq!(
        healthy, "edge ok",
        "the call to the hostile-named service is healthy and shown"
    );
    // Live: the edge tooltip's request counts grow between polls without a reload.
    page.eval("window.__sameDocument = 1").await;
    let title = "document.querySelector('path.edge[data-caller=\"frontend\"][data-callee=\"checkout\"] title').textContent";
    let before = page.eval(title).await;
    page.wait_for(&format!("{title} !== {before}"), "edge counts updated")
        .await;
    assert_eq!(
        page.eval("window.__sameDocument").await,
        1,
        "the page reloaded"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('img').length").await,
        0
    );
    assert!(!page.dialog_opened(), "a dialog opened");
    assert!(
        page.exceptions().is_empty(),
        "page exceptions: {:?}",
        page.exceptions()
    );
    feeder.abort();
}
