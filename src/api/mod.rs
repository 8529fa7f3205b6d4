//! The HTTP API on the API address: health, Prometheus metrics, services, graph,
//! deployments and verdicts, Flagger webhooks and the dashboard.

pub mod alerts;
pub mod config;
pub mod dashboard;
pub mod deployments;
pub mod flagger;
pub mod graph;
pub mod health;
pub mod services;

use crate::analysis::Analyzer;
use crate::clock::Clock;
use crate::telemetry::ExportMetrics;
use axum::Router;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub analyzer: Arc<Analyzer>,
    pub clock: Arc<dyn Clock>,
    /// Components rendered into `/metrics`, in order.
    pub metrics: Arc<Vec<Arc<dyn ExportMetrics>>>,
    /// Set once the receivers accept data.
    pub ready: Arc<AtomicBool>,
    /// Alerts and their delivery state.
    pub alerting: Arc<crate::alert::Alerting>,
    /// Deployments and their verdicts.
    pub judge: Arc<crate::judge::Judge>,
    /// Permits for `/metrics` renders in progress ([`health::MAX_SCRAPES`]).
    pub scrapes: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// A complete state around `analyzer` for handler tests and tools: default judge and
    /// alerting settings, the alert store under `data_dir`.
    pub fn standalone(
        analyzer: Analyzer,
        clock: Arc<dyn Clock>,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let now = clock.now();
        let alerting_cfg = crate::alert::config::AlertingConfig {
            store_path: data_dir.join("alerts"),
            ..Default::default()
        };
        let alerting = crate::alert::Alerting::open(&alerting_cfg, &[], "http://127.0.0.1", now)?;
        let judge_cfg = crate::judge::config::JudgeConfig {
            decision_log: data_dir
                .join("decisions.jsonl")
                .to_string_lossy()
                .into_owned(),
            ..Default::default()
        };
        let judge = Arc::new(crate::judge::Judge::new(&judge_cfg)?);
        let mut analyzer = analyzer;
        analyzer.add_observer(judge.clone());
        Ok(Self {
            analyzer: Arc::new(analyzer),
            clock,
            metrics: Arc::new(Vec::new()),
            ready: Arc::new(AtomicBool::new(true)),
            alerting,
            judge,
            scrapes: Arc::new(tokio::sync::Semaphore::new(health::MAX_SCRAPES)),
        })
    }
}

/// The API router with every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(services::routes())
        .merge(graph::routes())
        .merge(alerts::routes())
        .merge(deployments::routes())
        .merge(flagger::routes())
        .merge(dashboard::routes())
        .with_state(state)
}
