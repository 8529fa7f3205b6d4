//! Replaying the real Online Boutique fault cases (Nezha) against the analyzer: each
//! case's OTLP/JSON lines are sent over OTLP/HTTP in real time with timestamps shifted
//! to the present (spacing kept), and the outcome says whether the culprit deployment
//! (`cases.jsonl`: service + bad_version in its environment) was named, how long after
//! the injection, and whether anything else was blamed.

use super::analyzer::AnalyzerAddrs;
use super::report::Outcome;
use super::watch::{Expectation, Watch};
use super::webhook::Inbox;
use crate::sim::scenario::DeploymentRef;
use anyhow::Context;
use serde::Deserialize;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One line of `cases.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub file: String,
    pub environment: String,
    pub service: String,
    pub bad_version: String,
    pub fault: String,
    pub inject_time: String,
}

/// Reads `cases.jsonl` from the case directory.
pub fn load_cases(dir: &Path) -> anyhow::Result<Vec<Case>> {
    let path = dir.join("cases.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).context("a cases.jsonl line"))
        .collect()
}

/// Reads a gzip'd OTLP/JSON lines file into (latest end time, request) pairs.
fn load_lines(path: &Path) -> anyhow::Result<Vec<(u64, serde_json::Value)>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
    )
    .read_to_string(&mut text)?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let mut latest = 0;
        visit_times(&v, &mut |t| latest = latest.max(t));
        out.push((latest, v));
    }
    Ok(out)
}

fn spans_of(v: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    v.get("resourceSpans")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .flat_map(|rs| {
            rs.get("scopeSpans")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
        })
        .flat_map(|ss| {
            ss.get("spans")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
        })
}

fn visit_times(v: &serde_json::Value, f: &mut dyn FnMut(u64)) {
    for s in spans_of(v) {
        if let Some(t) = s
            .get("endTimeUnixNano")
            .and_then(|t| t.as_str())
            .and_then(|t| t.parse().ok())
        {
            f(t);
        }
    }
}

/// Adds `shift` nanoseconds to every span's start and end time.
fn shift_times(v: &mut serde_json::Value, shift: u64) {
    let Some(rss) = v.get_mut("resourceSpans").and_then(|a| a.as_array_mut()) else {
        return;
    };
    for rs in rss {
        let Some(sss) = rs.get_mut("scopeSpans").and_then(|a| a.as_array_mut()) else {
            continue;
        };
        for ss in sss {
            let Some(spans) = ss.get_mut("spans").and_then(|a| a.as_array_mut()) else {
                continue;
            };
            for s in spans {
                for k in ["startTimeUnixNano", "endTimeUnixNano"] {
                    if let Some(t) = s
                        .get(k)
                        .and_then(|t| t.as_str())
                        .and_then(|t| t.parse::<u64>().ok())
                    {
                        s[k] = serde_json::Value::String((t + shift).to_string());
                    }
                }
            }
        }
    }
}

/// Replays every case (`parallel` at once) and returns one outcome per case.
pub async fn run_cases(
    dir: &Path,
    addrs: &AnalyzerAddrs,
    inbox: &Inbox,
    parallel: usize,
) -> anyhow::Result<Vec<Outcome>> {
    let cases = load_cases(dir)?;
    println!(
        "replaying {} Online Boutique cases in real time, {} at once",
        cases.len(),
        parallel
    );
    let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, c) in cases.into_iter().enumerate() {
        let (permits, addrs, inbox, dir) = (
            permits.clone(),
            addrs.clone(),
            inbox.clone(),
            dir.to_path_buf(),
        );
        tasks.spawn(async move {
            let _p = permits.acquire_owned().await;
            let o = replay_case(&dir, &c, &addrs, &inbox).await;
            if let Ok(o) = &o {
                println!("{} [{}]", super::report::render_line(o), c.fault);
            }
            (i, o)
        });
    }
    let mut out = Vec::new();
    while let Some(j) = tasks.join_next().await {
        let (i, o) = j?;
        out.push((i, o?));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, o)| o).collect())
}

/// Replays one case in real time and judges the analyzer's answer. A case passes when no
/// wrong deployment is blamed (a miss is reported, not failed: some faults barely show).
pub async fn replay_case(
    dir: &Path,
    c: &Case,
    addrs: &AnalyzerAddrs,
    inbox: &Inbox,
) -> anyhow::Result<Outcome> {
    let path = dir.join(&c.file);
    let lines = tokio::task::spawn_blocking(move || load_lines(&path)).await??;
    let first = lines
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| *t > 0)
        .min()
        .context("no spans in the case")?;
    let inject = crate::clock::parse_rfc3339(&c.inject_time).context("inject_time")?;
    let start = Instant::now();
    let shift = crate::sim::simulate::unix_now().saturating_sub(first);
    let culprit = DeploymentRef {
        service: c.service.clone(),
        version: c.bad_version.clone(),
    };
    let expect = Expectation {
        name: c.file.trim_end_matches(".jsonl.gz").to_string(),
        environment: c.environment.clone(),
        culprit: Some(culprit.clone()),
        watched: Some(culprit),
        final_verdict: vec!["rollback".into()],
        onset: Some(start + Duration::from_nanos(inject.saturating_sub(first))),
        start,
    };
    let last = lines.iter().map(|(t, _)| *t).max().unwrap_or(first);
    let end = start + Duration::from_nanos(last - first) + Duration::from_secs(5);
    let sender = tokio::spawn(send_lines(
        lines,
        first,
        shift,
        start,
        format!("{}/v1/traces", addrs.otlp_http),
    ));
    let mut w = Watch::new(expect);
    w.poll_until(&reqwest::Client::new(), &addrs.api, end).await;
    sender.await??;
    let mut o = w.finish(&inbox.for_environment(&c.environment));
    o.pass = o.wrong_culprits.is_empty();
    Ok(o)
}

async fn send_lines(
    lines: Vec<(u64, serde_json::Value)>,
    first: u64,
    shift: u64,
    start: Instant,
    url: String,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for (t, mut v) in lines {
        let due = start + Duration::from_nanos(t.saturating_sub(first));
        tokio::time::sleep_until(due.into()).await;
        shift_times(&mut v, shift);
        let resp = client
            .post(&url)
            .json(&v)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "replay batch refused"),
            Err(e) => tracing::warn!(error = %e, "replay batch failed"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_keeps_spacing_and_moves_every_span() {
        let mut v = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"startTimeUnixNano": "100", "endTimeUnixNano": "150"},
            {"startTimeUnixNano": "120", "endTimeUnixNano": "130"}]}]}]});
        let mut latest = 0;
        visit_times(&v, &mut |t| latest = latest.max(t));
        assert_eq!(latest, 150);
        shift_times(&mut v, 1000);
        let spans = &v["resourceSpans"][0]["scopeSpans"][0]["spans"];
        assert_eq!(spans[0]["startTimeUnixNano"], "1100");
        assert_eq!(spans[1]["endTimeUnixNano"], "1130");
    }
}
