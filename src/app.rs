//! Wiring: builds the components from the configuration, starts receivers, analysis
//! workers, the judge and alerting loops and the API, and shuts them down in stages.

mod workers;

use crate::analysis::Analyzer;
use crate::api::AppState;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::receiver::decode::DeltaConverter;
use crate::receiver::metrics::ReceiverMetrics;
use crate::receiver::queue::IngestQueue;
use crate::telemetry::ExportMetrics;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// `verdict serve` flags; each overrides the configuration file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (Collector-style YAML). Without it the embedded default runs.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// OTLP/gRPC listen address (default 0.0.0.0:4317).
    #[arg(long)]
    pub otlp_grpc_addr: Option<String>,
    /// OTLP/HTTP listen address (default 0.0.0.0:4318).
    #[arg(long)]
    pub otlp_http_addr: Option<String>,
    /// API and dashboard listen address (default 0.0.0.0:4319).
    #[arg(long)]
    pub api_addr: Option<String>,
    /// Adds a webhook alert sink (Alertmanager webhook JSON); repeatable.
    #[arg(long = "webhook")]
    pub webhooks: Vec<String>,
}

/// Loads the configuration and applies the command-line overrides.
pub fn resolve_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(a) = &args.otlp_grpc_addr {
        config.receivers.grpc_addr = a.clone();
    }
    if let Some(a) = &args.otlp_http_addr {
        config.receivers.http_addr = a.clone();
    }
    if let Some(a) = &args.api_addr {
        config.api.addr = a.clone();
    }
    let mut problems = Vec::new();
    crate::config::Validate::validate(&config, "", &mut problems);
    if !problems.is_empty() {
        return Err(crate::config::ConfigErrors(problems).into());
    }
    Ok(config)
}

/// A running analyzer: its bound addresses and what stops it.
pub struct RunningApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub state: AppState,
    stages: Stages,
}

/// Shutdown stages, in order; each has its own token so earlier ones finish first.
struct Stages {
    receivers: (CancellationToken, crate::receiver::ReceiverHandles),
    workers: (CancellationToken, Vec<JoinHandle<()>>),
    ticker: (CancellationToken, JoinHandle<()>),
    delivery: (CancellationToken, JoinHandle<()>),
    api: (CancellationToken, JoinHandle<()>),
}

impl RunningApp {
    /// Stops in stages: receivers stop accepting and finish in-flight requests, workers
    /// drain what was accepted, the last tick judges it, alert delivery flushes, then the
    /// API stops.
    pub async fn stop(self) {
        let Stages {
            receivers,
            workers,
            ticker,
            delivery,
            api,
        } = self.stages;
        receivers.0.cancel();
        receivers.1.join().await;
        workers.0.cancel();
        for w in workers.1 {
            let _ = w.await;
        }
        ticker.0.cancel();
        let _ = ticker.1.await;
        delivery.0.cancel();
        let _ = delivery.1.await;
        api.0.cancel();
        let _ = api.1.await;
    }
}

/// Builds every component and starts serving. `clock` is the wall clock in production.
/// The process's CPU use is not watched (the analyzer may share its process, as in tests);
/// [`serve`] watches it.
pub async fn start(
    config: Config,
    webhooks: Vec<String>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<RunningApp> {
    start_with(config, webhooks, clock, false).await
}

/// As [`start`]. With `own_process` (the process is the analyzer alone, as under
/// `verdict serve`), the graph also thins when the process uses nearly all the CPU it may use
/// (see `analysis::graph::thinning`), and `/metrics` shows the process's memory.
async fn start_with(
    config: Config,
    webhooks: Vec<String>,
    clock: Arc<dyn Clock>,
    own_process: bool,
) -> anyhow::Result<RunningApp> {
    let cpu = own_process.then(crate::telemetry::cpu::CpuMeter::new);
    let judge = Arc::new(crate::judge::Judge::new(&config.judge)?);
    let mut analyzer = Analyzer::new(&config.state, &config.graph);
    analyzer.add_observer(judge.clone());
    let analyzer = Arc::new(analyzer);
    let external_url = config.api.external_url();
    let alerting =
        crate::alert::Alerting::open(&config.alerting, &webhooks, &external_url, clock.now())?;
    let (queue, queue_rx) = IngestQueue::new(config.receivers.queue_capacity);
    let receiver_metrics = Arc::new(ReceiverMetrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let mut exporters: Vec<Arc<dyn ExportMetrics>> = vec![
        receiver_metrics.clone(),
        queue.clone(),
        analyzer.clone(),
        judge.clone(),
        alerting.clone(),
    ];
    if own_process {
        exporters.push(Arc::new(crate::telemetry::memory::MemoryMetrics));
    }
    let state = AppState {
        analyzer: analyzer.clone(),
        clock: clock.clone(),
        metrics: Arc::new(exporters),
        ready: ready.clone(),
        alerting: alerting.clone(),
        judge: judge.clone(),
        scrapes: Arc::new(tokio::sync::Semaphore::new(crate::api::health::MAX_SCRAPES)),
    };
    let (api_addr, api) = spawn_api(&config.api.addr, state.clone()).await?;
    let delivery_stop = CancellationToken::new();
    let delivery = alerting.spawn_delivery(clock.clone(), delivery_stop.clone());
    let ticker_stop = CancellationToken::new();
    let l = Loop {
        analyzer: analyzer.clone(),
        judge: judge.clone(),
        alerting,
        queue: queue.clone(),
        cpu: parking_lot::Mutex::new(cpu),
    };
    let ticker = spawn_ticker(l, clock.clone(), ticker_stop.clone());
    let drain = CancellationToken::new();
    let n_workers = match config.receivers.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let workers = workers::spawn(
        n_workers,
        queue.clone(),
        queue_rx,
        analyzer,
        clock.clone(),
        drain.clone(),
    );
    let deltas = Arc::new(DeltaConverter::new(
        config.receivers.max_metric_streams,
        config.receivers.metric_stream_ttl,
    ));
    let recv_stop = CancellationToken::new();
    let receivers = crate::receiver::spawn(
        &config.receivers,
        queue,
        receiver_metrics,
        deltas,
        clock,
        recv_stop.clone(),
    )
    .await?;
    ready.store(true, Ordering::Release);
    tracing::info!(grpc = %receivers.grpc_addr, http = %receivers.http_addr, api = %api_addr, "verdict serving");
    Ok(RunningApp {
        grpc_addr: receivers.grpc_addr,
        http_addr: receivers.http_addr,
        api_addr,
        state,
        stages: Stages {
            receivers: (recv_stop, receivers),
            workers: (drain, workers),
            ticker: (ticker_stop, ticker),
            delivery: (delivery_stop, delivery),
            api,
        },
    })
}

/// What the once-a-second loop drives.
struct Loop {
    analyzer: Arc<Analyzer>,
    judge: Arc<crate::judge::Judge>,
    alerting: Arc<crate::alert::Alerting>,
    queue: Arc<IngestQueue>,
    /// The process's CPU use, watched when the process is the analyzer alone.
    cpu: parking_lot::Mutex<Option<crate::telemetry::cpu::CpuMeter>>,
}

impl Loop {
    /// Housekeeping, then judging, then alerting on every current verdict.
    fn tick(&self, now: crate::model::UnixNanos) {
        self.analyzer.tick(now);
        let refused = self.queue.take_refused_since_last();
        self.judge.note_shed(refused, now);
        let pressure = crate::analysis::graph::thinning::Pressure {
            queued: self.queue.depth(),
            capacity: self.queue.capacity(),
            refused,
            cpu: self.cpu.lock().as_mut().and_then(|m| m.sample()),
        };
        if let Some(rate) = self.analyzer.adapt_graph(pressure) {
            tracing::warn!(
                sample_rate = rate,
                queued = pressure.queued,
                refused,
                cpu = pressure.cpu,
                "graph sampling changed: the share of traces the dependency graph keeps follows how far analysis is behind"
            );
        }
        let judged = self.judge.tick(&self.analyzer.series, now);
        for v in &judged.changed {
            tracing::info!(
                environment = %v.environment, service = %v.service, version = %v.version,
                baseline = ?v.baseline_version, verdict = v.verdict.as_str(),
                reasons = v.reasons.len(), "verdict changed"
            );
        }
        self.alerting
            .update(&judged.verdicts, &judged.incidents, now);
    }
}

/// The once-a-second loop: housekeeping, judging, alerting. One last tick runs after
/// shutdown is requested, once the workers have drained.
fn spawn_ticker(l: Loop, clock: Arc<dyn Clock>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = interval.tick() => l.tick(clock.now()),
            }
        }
        l.tick(clock.now());
    })
}

async fn spawn_api(
    addr: &str,
    state: AppState,
) -> anyhow::Result<(SocketAddr, (CancellationToken, JoinHandle<()>))> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the API on {addr}"))?;
    let bound = listener.local_addr()?;
    let router = crate::api::router(state);
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "API server failed");
        }
    });
    Ok((bound, (stop, task)))
}

/// Runs the analyzer until SIGTERM or Ctrl-C, then shuts down gracefully and returns.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = resolve_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = start_with(config, args.webhooks.clone(), Arc::new(SystemClock), true).await?;
        wait_for_signal().await;
        tracing::info!("shutting down: draining accepted data");
        app.stop().await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
