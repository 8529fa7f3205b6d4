//! `verdict demo`: the one-command tour. Starts the analyzer (a child `verdict serve` on
//! its embedded default configuration) with a webhook to the demo's own listener, runs
//! the OpenTelemetry demo topology with a checkout canary that goes bad, and prints the
//! deployments, verdicts with evidence, and alerts as they happen.

use super::emit::{ExportProtocol, ExportSettings};
use super::runner::analyzer::{deployments, summaries, SpawnedAnalyzer};
use super::runner::webhook;
use super::scenario::Scenario;
use super::simulate::simulate;
use super::topology::Topology;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The demo's scenario: checkout 2.3.0 canary at 50 %, slower and failing from its onset.
const DEMO_SCENARIO: &str = include_str!("../../config/scenarios/demo-canary.yaml");

/// `verdict demo` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Seconds to run.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Requests per second entering the shop.
    #[arg(long, default_value_t = 140.0)]
    pub rate: f64,
    /// Show the analyzer's own logs.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs the demo; fails when no `rollback` named the bad canary.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let mut scenario = Scenario::from_yaml("demo-canary.yaml", DEMO_SCENARIO)?;
    scenario.duration = Duration::from_secs(args.duration.max(10));
    scenario.rate = args.rate;
    let onset = Duration::from_secs((args.duration / 4).clamp(5, 20));
    for e in &mut scenario.effects {
        e.at = onset;
    }
    let cancel = CancellationToken::new();
    let (hook, inbox) = webhook::start("127.0.0.1:0", cancel.clone()).await?;
    let analyzer = SpawnedAnalyzer::start(&format!("http://{hook}/"), None, !args.verbose).await?;
    let api = analyzer.addrs.api.clone();
    println!("verdict demo: analyzer running");
    println!("  dashboard and API  {api}/  ({api}/api/v1/deployments)");
    println!("  OTLP gRPC          {}", analyzer.addrs.otlp_grpc);
    println!("  alerts webhook ->  http://{hook}/");
    let weight = scenario
        .rollouts
        .first()
        .and_then(|r| r.steps.first())
        .map_or(0.0, |s| s.weight);
    println!(
        "simulating the OpenTelemetry demo shop at {} req/s for {} s; checkout 2.3.0 canary takes {weight} % and goes bad at {} s",
        scenario.rate,
        scenario.duration.as_secs(),
        onset.as_secs()
    );
    let env = scenario.environment();
    let settings = ExportSettings {
        endpoint: analyzer.addrs.otlp_grpc.clone(),
        protocol: ExportProtocol::Grpc,
        batch_delay: Duration::from_millis(250),
        metrics_interval: Some(Duration::from_secs(5)),
    };
    let topo = Arc::new(Topology::load(&scenario.topology)?);
    let duration = scenario.duration;
    let sim = tokio::spawn(simulate(
        topo,
        Arc::new(scenario),
        settings,
        cancel.child_token(),
    ));
    let named = watch(&api, &env, &inbox, duration + Duration::from_secs(3)).await;
    let _ = sim.await;
    analyzer.stop().await;
    cancel.cancel();
    if named {
        println!("verdict demo: the bad canary checkout@2.3.0 was judged rollback");
        Ok(())
    } else {
        anyhow::bail!(
            "no rollback verdict named checkout@2.3.0 within {} s",
            duration.as_secs()
        )
    }
}

/// Prints changes until `for_how_long` has passed; true once checkout@2.3.0 is `rollback`.
async fn watch(api: &str, env: &str, inbox: &webhook::Inbox, for_how_long: Duration) -> bool {
    let start = Instant::now();
    let client = reqwest::Client::new();
    let mut verdicts: BTreeMap<String, String> = BTreeMap::new();
    let mut alerts_seen = 0;
    let mut named = false;
    while start.elapsed() < for_how_long {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = start.elapsed().as_secs();
        if let Ok(list) = deployments(&client, api, env).await {
            for d in list {
                let k = format!("{}@{}", d.service, d.version);
                if !verdicts.contains_key(&k) {
                    let base = d.baseline_version.as_deref().unwrap_or("none");
                    println!("[{t:>3}s] deployment {k} (baseline {base}) in environment {env}");
                }
                if verdicts.get(&k) != Some(&d.verdict) {
                    println!(
                        "[{t:>3}s] verdict {k}: {} after {} requests",
                        d.verdict, d.requests
                    );
                    for s in summaries(&d) {
                        println!("        evidence: {s}");
                    }
                    named |= d.verdict == "rollback" && k == "checkout@2.3.0";
                    verdicts.insert(k, d.verdict.clone());
                }
            }
        }
        let alerts = inbox.all();
        for a in alerts.iter().skip(alerts_seen) {
            let l = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
            println!(
                "[{t:>3}s] alert {} {}: {}@{} signal={} scope={} severity={}",
                a.status,
                l("alertname"),
                l("service"),
                l("version"),
                l("signal"),
                l("scope"),
                l("severity")
            );
            if let Some(s) = a.annotations.get("summary") {
                println!("        {s}");
            }
        }
        alerts_seen = alerts.len();
    }
    named
}
