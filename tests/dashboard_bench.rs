//! Measurements, not checks (run with `--ignored`): the dashboard's time to first render
//! and to update with 500 services and 2,000 edges in headless Chromium, and the
//! screenshot in docs/dashboard.png.

mod browser;

use browser::cdp::{Browser, Page};
use browser::fixture;
use serde_json::Value;

const SERVICES: usize = 500;
const EDGES: usize = 2000;
const UPDATES: usize = 7;

async fn polls(page: &mut Page) -> u64 {
    page.eval("window.verdictDashboard.polls")
        .await
        .as_u64()
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: cargo test --release --test dashboard_bench -- --ignored --nocapture"]
async fn render_and_update_with_500_services_2000_edges() {
    let (addr, shared) = fixture::serve(fixture::large_scenario(SERVICES, EDGES)).await;
    let browser = Browser::launch();
    let mut page = browser.page().await;
    page.navigate(&format!("http://{addr}/?poll=1000")).await;
    page.wait_for(&format!("window.verdictDashboard?.firstRenderMs != null && document.querySelectorAll('path.edge').length === {EDGES}"), "first full render").await;
    let first = page.eval("({ sinceNavigationMs: window.verdictDashboard.firstRenderMs, ...window.verdictDashboard.firstRender })").await;
    println!("first render: {first}");
    let (mut render, mut graph, mut list) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..UPDATES {
        {
            let mut s = shared.lock();
            for (i, e) in s.edges.iter_mut().enumerate() {
                e["errors"] = Value::from(((i + round) % 9) as u64);
                e["requests"] = Value::from(500 + round as u64 * 10);
            }
            for d in s.deployments.iter_mut() {
                d["requests"] = Value::from(d["requests"].as_u64().unwrap_or(0) + 100);
            }
        }
        let before = polls(&mut page).await;
        page.wait_for(
            &format!("window.verdictDashboard.polls >= {}", before + 2),
            "two more polls",
        )
        .await;
        let s = page.eval("window.verdictDashboard").await;
        render.push(s["lastRenderMs"].as_f64().unwrap());
        graph.push(s["lastGraphMs"].as_f64().unwrap());
        list.push(s["lastListMs"].as_f64().unwrap());
    }
    println!("update (same structure, {UPDATES} rounds): median render {:.1} ms, graph {:.1} ms, list {:.1} ms; max render {:.1} ms",
        median(render.clone()), median(graph), median(list), render.iter().cloned().fold(0.0, f64::max));
    shared
        .lock()
        .edges
        .push(fixture::edge("svc-000", "2", "svc-499", "", 10, 0, 1.0));
    page.wait_for(
        &format!(
            "document.querySelectorAll('path.edge').length === {}",
            EDGES + 1
        ),
        "relayout",
    )
    .await;
    let s = page.eval("window.verdictDashboard").await;
    println!(
        "structural update (one new edge, full relayout): render {:.1} ms, layout {:.1} ms",
        s["lastRenderMs"].as_f64().unwrap(),
        s["lastLayoutMs"].as_f64().unwrap()
    );
    let scroll = page
        .eval("(() => { const l = document.getElementById('list'); const t = performance.now(); for (let i = 0; i < 100; i++) { l.scrollTop = i * 140; l.dispatchEvent(new Event('scroll')); void l.offsetHeight; } return (performance.now() - t) / 100; })()")
        .await;
    println!(
        "list scroll step with layout: {:.2} ms; rows in DOM: {}",
        scroll.as_f64().unwrap(),
        page.eval("document.querySelectorAll('.row.deployment').length")
            .await
    );
}

/// Writes docs/dashboard.png: from VERDICT_DASHBOARD_URL (e.g. a running `verdict demo`) when
/// set, otherwise from the fixture canary scenario.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes docs/dashboard.png: cargo test --test dashboard_bench -- --ignored screenshot"]
async fn screenshot() {
    let url = match std::env::var("VERDICT_DASHBOARD_URL") {
        Ok(u) => u,
        Err(_) => {
            let (addr, shared) = fixture::serve(fixture::canary_scenario()).await;
            std::mem::forget(shared);
            format!("http://{addr}/?poll=500")
        }
    };
    let browser = Browser::launch();
    let mut page = browser.page().await;
    page.navigate(&url).await;
    page.wait_for(
        "document.querySelector('path.edge') && window.verdictDashboard.polls >= 3",
        "graph and three polls",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let out = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dashboard.png");
    page.screenshot(std::path::Path::new(out)).await;
    println!("wrote {out}");
}
