//! The HTTP API on the API address: health, Prometheus metrics, services, graph,
//! deployments and verdicts, Flagger webhooks and the dashboard.

pub mod config;
