//! Delay from a verdict change (`Alerting::update`) to the first notification at each
//! sink: a real Alertmanager (polled on `GET /api/v2/alerts` every 2 ms), and local
//! webhook, Slack and PagerDuty receivers. Fires and resolves a fresh alert per round and
//! prints median, p95 and max per sink and transition.
//!
//! Run: `cargo bench --bench alert_latency` (rounds: `ALERT_LATENCY_ROUNDS`, default 40;
//! under `cargo test` a 3-round smoke run).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use support::alertmanager::Alertmanager;
use support::receiver::Receiver;
use support::verdicts::{reason, verdict};
use verdict::alert::config::{AlertingConfig, SinkConfig, SinkType};
use verdict::alert::Alerting;
use verdict::clock::{Clock, SystemClock};
use verdict::model::{Decision, Scope, Signal};

fn sink(kind: SinkType, url: &str) -> SinkConfig {
    SinkConfig {
        kind: Some(kind),
        url: Some(url.to_string()),
        routing_key: (kind == SinkType::Pagerduty).then(|| "bench-key".to_string()),
        rate_limit: (kind == SinkType::Pagerduty).then_some(10_000),
        ..SinkConfig::default()
    }
}

/// Waits until `f` holds; returns the elapsed time since `t0`.
async fn until(t0: Instant, f: impl AsyncFn() -> bool) -> Duration {
    while !f().await {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    t0.elapsed()
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{name:<28} n={:<3} median {:>7.2} ms  p95 {:>7.2} ms  max {:>7.2} ms",
        v.len(),
        q(0.5),
        q(0.95),
        q(1.0)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::var("ALERT_LATENCY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        // Under `cargo test --all-targets` (no --bench) a few rounds check that it works.
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            40
        } else {
            3
        });
    let am = Alertmanager::start();
    let (hook, slack, pd) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::pagerduty().await,
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = AlertingConfig {
        store_path: dir.path().to_path_buf(),
        warmup: Duration::ZERO,
        sinks: vec![
            sink(SinkType::Alertmanager, &am.url),
            sink(SinkType::Webhook, &hook.url),
            sink(SinkType::Slack, &slack.url),
            sink(SinkType::Pagerduty, &pd.url),
        ],
        ..AlertingConfig::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let al = Alerting::open(&cfg, &[], "http://verdict.bench", clock.now()).unwrap();
    al.spawn_delivery(clock.clone(), tokio_util::sync::CancellationToken::new());
    let names = ["alertmanager", "webhook", "slack", "pagerduty"];
    let mut fire: Vec<Vec<Duration>> = vec![Vec::new(); 4];
    let mut resolve: Vec<Vec<Duration>> = vec![Vec::new(); 4];
    for round in 0..rounds {
        let version = format!("v{round}");
        let v = verdict(
            "prod",
            "checkout",
            &version,
            Decision::Rollback,
            vec![reason(Signal::ErrorRate, Scope::SelfScope, None, true)],
        );
        for (phase, out) in [(0, &mut fire), (1, &mut resolve)] {
            let counts = [
                0,
                hook.accepted().len(),
                slack.accepted().len(),
                pd.accepted().len(),
            ];
            let t0 = Instant::now();
            if phase == 0 {
                al.update(std::slice::from_ref(&v), &[], clock.now());
            } else {
                al.update(&[], &[], clock.now());
            }
            let am_has = async || {
                am.alerts()
                    .await
                    .iter()
                    .any(|a| a["labels"]["version"] == version.as_str())
            };
            let am_t = if phase == 0 {
                until(t0, async || am_has().await).await
            } else {
                until(t0, async || !am_has().await).await
            };
            out[0].push(am_t);
            let arrivals = [&hook, &slack, &pd];
            for (k, r) in arrivals.iter().enumerate() {
                let n = counts[k + 1];
                until(t0, async || r.accepted().len() > n).await;
                out[k + 1].push(r.accepted()[n].at.duration_since(t0));
            }
        }
    }
    println!("alert delivery delay, update() -> first notification at the sink, {rounds} rounds");
    for k in 0..4 {
        stats(&format!("{} fire", names[k]), fire[k].clone());
        stats(&format!("{} resolve", names[k]), resolve[k].clone());
    }
}
