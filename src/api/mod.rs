//! The HTTP API on the API address: health, Prometheus metrics, services, graph,
//! deployments and verdicts, Flagger webhooks and the dashboard.

pub mod config;
pub mod deployments;
pub mod flagger;
pub mod health;

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
    /// The judge: deployments, verdicts, Flagger webhooks.
    pub judge: Arc<crate::judge::Judge>,
    /// Set once the receivers accept data.
    pub ready: Arc<AtomicBool>,
}

/// The API router with every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(deployments::routes())
        .merge(flagger::routes()).with_state(state)
}
