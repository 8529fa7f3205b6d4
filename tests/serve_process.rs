//! The `verdict serve` process itself: its `/metrics` page reports the process's memory as the
//! kernel and jemalloc (the binary's allocator) see it, and SIGTERM ends it with status 0.

mod support;

use std::process::Command;

fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

#[tokio::test]
async fn serve_reports_its_memory_and_exits_cleanly_on_sigterm() {
    let mut served = support::serve::spawn_serve();
    let api = served.api.clone();
    let page = reqwest::get(format!("http://{api}/metrics"))
        .await
        .and_then(|r| r.error_for_status())
        .expect("/metrics answers")
        .text()
        .await
        .expect("/metrics body");
    let rss = metric(&page, "process_resident_memory_bytes");
    let allocated = metric(&page, "verdict_allocator_allocated_bytes");
    let active = metric(&page, "verdict_allocator_active_bytes");
    let resident = metric(&page, "verdict_allocator_resident_bytes");
    // jemalloc serves the binary's allocations: it holds at least the analyzer's tables,
    // and what it has resident is part of the process's resident set.
    assert!(allocated > 1e5, "allocated {allocated}");
    assert!(
        active >= allocated && resident >= active,
        "{allocated} {active} {resident}"
    );
    assert!(rss >= resident, "rss {rss} < allocator resident {resident}");

    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = served.child.wait().expect("verdict exits");
    assert_eq!(exit.code(), Some(0), "SIGTERM ends verdict serve with 0");
    let logged: Vec<String> = served.logs.map_while(Result::ok).collect();
    assert!(
        logged.iter().any(|l| l.contains("shutting down")),
        "the shutdown is logged: {logged:?}"
    );
}
