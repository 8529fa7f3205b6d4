//! The HTTP API on the API address: health, Prometheus metrics, services, graph,
//! deployments and verdicts, Flagger webhooks and the dashboard.

pub mod config;
pub mod graph;
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
    /// Set once the receivers accept data.
    pub ready: Arc<AtomicBool>,
}

/// The API router with every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(graph::routes())
        .with_state(state)
}
