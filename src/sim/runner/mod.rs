//! `verdict scenarios`: runs the scenario suite against an analyzer (spawned as a child
//! `verdict serve`, or given by address), several scenarios at once in separate
//! environments, listening as the analyzer's webhook sink, and reports detection,
//! culprit accuracy, delays and false alarms.

pub mod analyzer;
pub mod replay;
pub mod replay_fast;
pub mod report;
pub mod watch;
pub mod webhook;

use super::emit::{ExportProtocol, ExportSettings};
use super::scenario::Scenario;
use super::simulate::simulate;
use super::topology::Topology;
use analyzer::{AnalyzerAddrs, SpawnedAnalyzer};
use anyhow::Context;
use report::{Outcome, Totals};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use watch::{Expectation, Watch};

/// Time allowed after traffic stops for the last spans, verdicts and alerts.
const SETTLE: Duration = Duration::from_secs(5);

/// `verdict scenarios` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ScenariosArgs {
    /// Directory of scenario files.
    #[arg(long, default_value = "config/scenarios")]
    pub suite: PathBuf,
    /// Only scenarios whose name contains one of these (repeatable).
    #[arg(long)]
    pub filter: Vec<String>,
    /// Only the short suite (scenarios marked `short: true`).
    #[arg(long)]
    pub short: bool,
    /// Runs of each scenario, with seeds seed, seed+1, ...
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Scenarios running at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// `spawn` (a child `verdict serve`) or the API base URL of a running analyzer.
    #[arg(long, default_value = "spawn")]
    pub analyzer: String,
    /// OTLP gRPC endpoint of a given analyzer (with `--analyzer URL`).
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// Configuration passed to the spawned analyzer.
    #[arg(long)]
    pub analyzer_config: Option<String>,
    /// Where the webhook sink listens (a given analyzer must post there).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub webhook_addr: String,
    /// Also replay the real Online Boutique fault cases from this directory.
    #[arg(long)]
    pub replay_dir: Option<PathBuf>,
    /// Replay the cases in real time over OTLP/HTTP against the analyzer (shifted
    /// timestamps; minutes per case) instead of through the in-process replay engine.
    #[arg(long)]
    pub replay_realtime: bool,
    /// Only the replay, no scenarios.
    #[arg(long)]
    pub replay_only: bool,
    /// Write the outcomes and totals as JSON to this file (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Show the spawned analyzer's logs.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs `verdict scenarios`; fails (exit 1) when a run did not pass.
pub fn run(args: ScenariosArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (outcomes, totals) = runtime.block_on(run_suite(&args))?;
    if let Some(path) = &args.json {
        let doc = serde_json::json!({"outcomes": outcomes, "totals": totals});
        let text = serde_json::to_string_pretty(&doc)?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let failed = outcomes.iter().filter(|o| !o.pass).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} runs did not pass", outcomes.len());
    }
    Ok(())
}

/// Loads the suite: every `*.yaml` in the directory, filtered, expanded per seed.
pub fn load_suite(args: &ScenariosArgs) -> anyhow::Result<Vec<Scenario>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.suite)
        .with_context(|| format!("reading {}", args.suite.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let s = Scenario::load(&f)?;
        let wanted =
            args.filter.is_empty() || args.filter.iter().any(|x| s.name.contains(x.as_str()));
        if wanted && (!args.short || s.short) {
            for k in 0..args.seeds.max(1) {
                let mut run = s.clone();
                run.seed = s.seed + k;
                out.push(run);
            }
        }
    }
    Ok(out)
}

async fn run_suite(args: &ScenariosArgs) -> anyhow::Result<(Vec<Outcome>, Totals)> {
    let cancel = CancellationToken::new();
    let (hook_addr, inbox) = webhook::start(&args.webhook_addr, cancel.clone()).await?;
    let spawned = match args.analyzer.as_str() {
        "spawn" => {
            let url = format!("http://{hook_addr}/");
            Some(
                SpawnedAnalyzer::start(&url, args.analyzer_config.as_deref(), !args.verbose)
                    .await?,
            )
        }
        _ => None,
    };
    let addrs = match &spawned {
        Some(s) => s.addrs.clone(),
        None => AnalyzerAddrs {
            otlp_grpc: args
                .otlp_endpoint
                .clone()
                .context("--otlp-endpoint is needed with --analyzer URL")?,
            otlp_http: String::new(),
            api: args.analyzer.trim_end_matches('/').to_string(),
        },
    };
    println!(
        "analyzer API {} | OTLP {} | webhook sink http://{hook_addr}/",
        addrs.api, addrs.otlp_grpc
    );
    let mut outcomes = Vec::new();
    if !args.replay_only {
        let suite = load_suite(args)?;
        println!(
            "running {} scenario runs, {} at once",
            suite.len(),
            args.parallel.max(1)
        );
        outcomes.extend(run_all(suite, &addrs, &inbox, args.parallel.max(1)).await?);
    }
    if let Some(dir) = &args.replay_dir {
        if args.replay_realtime {
            outcomes.extend(replay::run_cases(dir, &addrs, &inbox, args.parallel.max(1)).await?);
        } else {
            let dir = dir.clone();
            let fast = tokio::task::spawn_blocking(move || replay_fast::run_cases(&dir)).await??;
            for o in &fast {
                println!("{}", report::render_line(o));
            }
            outcomes.extend(fast);
        }
    }
    let totals = Totals::of(&outcomes);
    println!("{}", report::render_totals(&totals));
    if let Some(s) = spawned {
        s.stop().await;
    }
    cancel.cancel();
    Ok((outcomes, totals))
}

async fn run_all(
    suite: Vec<Scenario>,
    addrs: &AnalyzerAddrs,
    inbox: &webhook::Inbox,
    parallel: usize,
) -> anyhow::Result<Vec<Outcome>> {
    let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, s) in suite.into_iter().enumerate() {
        let (permits, addrs, inbox) = (permits.clone(), addrs.clone(), inbox.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let o = run_one(s, &addrs, &inbox).await;
            if let Ok(o) = &o {
                println!("{}", report::render_line(o));
            }
            (i, o)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, o) = joined?;
        results.push((i, o?));
    }
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, o)| o).collect())
}

/// Runs one scenario against the analyzer and judges what it answered.
pub async fn run_one(
    s: Scenario,
    addrs: &AnalyzerAddrs,
    inbox: &webhook::Inbox,
) -> anyhow::Result<Outcome> {
    let topo = Arc::new(Topology::load(&s.topology)?);
    let start = Instant::now();
    let expect = Expectation {
        name: s.name.clone(),
        environment: s.environment(),
        culprit: s.expect.culprit.clone(),
        watched: s.watched(),
        final_verdict: s.expect.final_verdict.clone(),
        onset: s.onset().map(|d| start + d),
        start,
    };
    let settings = ExportSettings {
        endpoint: addrs.otlp_grpc.clone(),
        protocol: ExportProtocol::Grpc,
        batch_delay: Duration::from_millis(250),
        metrics_interval: Some(Duration::from_secs(5)),
    };
    let end = start + s.duration + SETTLE;
    let sim = tokio::spawn(simulate(
        topo,
        Arc::new(s),
        settings,
        CancellationToken::new(),
    ));
    let mut w = Watch::new(expect);
    let client = reqwest::Client::new();
    w.poll_until(&client, &addrs.api, end).await;
    sim.await??;
    let env = w.expect.environment.clone();
    let culprit = w.expect.culprit.clone();
    let onset = w.expect.onset.unwrap_or(w.expect.start);
    let mut outcome = w.finish(&inbox.for_environment(&env));
    if let Some(c) = culprit {
        for sink in ["slack", "pagerduty"] {
            let needles = [env.as_str(), c.service.as_str(), c.version.as_str()];
            if let Some(t) = inbox.first_mention(sink, &needles, onset) {
                outcome
                    .sink_delays_s
                    .insert(sink.into(), t.duration_since(onset).as_secs_f64());
            }
        }
    }
    Ok(outcome)
}
