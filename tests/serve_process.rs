//! The `verdict serve` process itself: its `/metrics` page reports the process's memory as the
//! kernel and jemalloc (the binary's allocator) see it, and SIGTERM ends it with status 0.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

#[tokio::test]
async fn serve_reports_its_memory_and_exits_cleanly_on_sigterm() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["serve", "--api-addr", "127.0.0.1:0"])
        .args([
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
        ])
        .env("VERDICT_LOG_FORMAT", "json")
        .current_dir(data_dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn verdict serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let api = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            let v: Value = serde_json::from_str(&l).ok()?;
            v["fields"]["api"].as_str().map(String::from)
        })
        .expect("verdict logs its API address");
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
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("verdict exits");
    assert_eq!(exit.code(), Some(0), "SIGTERM ends verdict serve with 0");
    let logged: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        logged.iter().any(|l| l.contains("shutting down")),
        "the shutdown is logged: {logged:?}"
    );
}
