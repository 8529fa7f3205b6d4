//! Wiring: builds the components from the configuration, starts receivers, analysis
//! workers, the judge and alerting loops and the API, and shuts them down in stages.

use crate::config::Config;
use std::path::PathBuf;

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
    Ok(config)
}

/// Runs the analyzer until SIGTERM or Ctrl-C.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let _config = resolve_config(&args)?;
    anyhow::bail!("serve is not wired yet")
}
