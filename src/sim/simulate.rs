//! `verdict simulate`: drives the traffic generator in real time (requests arrive at the
//! scenario's rate; their spans carry the simulated latencies as explicit timestamps) and
//! emits them through the SDK to an OTLP endpoint.

use super::emit::{EmitError, Emitter, ExportProtocol, ExportSettings};
use super::scenario::{Scenario, ScenarioError};
use super::span::SimResource;
use super::topology::{Topology, TopologyError};
use super::traffic::{TrafficError, TrafficGen};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// How often the driver wakes to emit the requests that have arrived.
const TICK: Duration = Duration::from_millis(50);

/// `verdict simulate` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Topology file or embedded name (otel-demo, train-ticket, online-boutique).
    #[arg(long, default_value = "otel-demo")]
    pub topology: String,
    /// OTLP endpoint (gRPC `http://host:4317`, HTTP `http://host:4318`).
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    pub endpoint: String,
    #[arg(long, value_enum, default_value_t = ExportProtocol::Grpc)]
    pub protocol: ExportProtocol,
    /// Requests per second entering the system (a scenario file sets its own).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds to run (default: the scenario's duration, else until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Seed of every random choice (a scenario file sets its own).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Scenario file (rollouts, regressions, traffic changes).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Environment (`deployment.environment.name`) to report into.
    #[arg(long)]
    pub environment: Option<String>,
    /// Do not export request-duration metrics.
    #[arg(long)]
    pub no_metrics: bool,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// What a run emitted.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimStats {
    pub requests: u64,
    pub spans: u64,
}

/// Runs `verdict simulate` until its duration or Ctrl-C.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (topo, scenario) = load(&args)?;
        let settings = ExportSettings {
            endpoint: args.endpoint.clone(),
            protocol: args.protocol,
            batch_delay: Duration::from_millis(500),
            metrics_interval: (!args.no_metrics).then_some(Duration::from_secs(5)),
        };
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            crate::app::wait_for_signal().await;
            stop.cancel();
        });
        eprintln!(
            "simulating {} into environment {:?} at {} req/s -> {} ({:?})",
            topo.name,
            scenario.environment(),
            scenario.rate,
            args.endpoint,
            args.protocol
        );
        let stats = simulate(Arc::new(topo), Arc::new(scenario), settings, cancel).await?;
        eprintln!("emitted {} requests, {} spans", stats.requests, stats.spans);
        Ok(())
    })
}

/// Resolves the topology and scenario the flags name.
pub fn load(args: &SimulateArgs) -> Result<(Topology, Scenario), SimError> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => {
            let duration = Duration::from_secs(args.duration.unwrap_or(u64::MAX / 4));
            Scenario::steady(&args.topology, args.seed.unwrap_or(1), args.rate, duration)
        }
    };
    if args.scenario.is_some() && args.topology != "otel-demo" {
        scenario.topology = args.topology.clone();
    }
    if let Some(d) = args.duration {
        scenario.duration = Duration::from_secs(d);
    }
    if let Some(s) = args.seed {
        scenario.seed = s;
    }
    if let Some(e) = &args.environment {
        scenario.environment = Some(e.clone());
    }
    let topo = Topology::load(&scenario.topology)?;
    Ok((topo, scenario))
}

/// Unix nanoseconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Builds the SDK pipelines on a blocking thread: one scenario's take seconds (a tracer
/// and a meter provider per resource, each with its own thread), and the runtime's workers
/// must stay free for the other scenarios and the runner's API polls meanwhile.
async fn build_emitter(
    settings: ExportSettings,
    resources: Vec<SimResource>,
) -> Result<Emitter, SimError> {
    let built = tokio::task::spawn_blocking(move || Emitter::new(settings, &resources))
        .await
        .unwrap_or_else(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("building the SDK pipelines did not finish: {e}"),
        });
    Ok(built?)
}

/// Emits the scenario in real time: offset zero is now; returns when its duration has
/// passed or `cancel` fires, after flushing the exporters.
pub async fn simulate(
    topo: Arc<Topology>,
    scenario: Arc<Scenario>,
    settings: ExportSettings,
    cancel: CancellationToken,
) -> Result<SimStats, SimError> {
    let started = tokio::time::Instant::now();
    let mut generator = TrafficGen::new(topo, scenario.clone(), unix_now())?;
    let mut emitter = build_emitter(settings, generator.resources()).await?;
    let mut stats = SimStats::default();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = interval.tick() => {}
        }
        let elapsed = started.elapsed().min(scenario.duration);
        while generator.next_offset() <= elapsed && generator.next_offset() < scenario.duration {
            let trace = generator.next_trace();
            emitter.emit(&trace.spans)?;
            stats.requests += 1;
        }
        if elapsed >= scenario.duration {
            break;
        }
    }
    stats.spans = emitter.spans_emitted;
    let _ = tokio::task::spawn_blocking(move || emitter.shutdown()).await;
    tracing::info!(environment = %scenario.environment(), requests = stats.requests, spans = stats.spans, "simulation finished");
    Ok(stats)
}

/// Emits `requests` requests as fast as possible with timestamps as if they had arrived
/// from `t0` on (tests, replays), then flushes.
pub async fn emit_burst(
    topo: Arc<Topology>,
    scenario: Arc<Scenario>,
    settings: ExportSettings,
    t0: u64,
    requests: usize,
) -> Result<SimStats, SimError> {
    let mut generator = TrafficGen::new(topo, scenario, t0)?;
    let mut emitter = build_emitter(settings, generator.resources()).await?;
    for _ in 0..requests {
        let trace = generator.next_trace();
        emitter.emit(&trace.spans)?;
    }
    let stats = SimStats {
        requests: requests as u64,
        spans: emitter.spans_emitted,
    };
    let _ = tokio::task::spawn_blocking(move || emitter.shutdown()).await;
    Ok(stats)
}
