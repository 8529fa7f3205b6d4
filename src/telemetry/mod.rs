//! The analyzer's own telemetry: structured `tracing` logs and a small Prometheus text
//! writer that every component uses to render its counters from live state at scrape time.

pub mod cpu;
pub mod memory;
mod prom;

pub use prom::{label_set, PromType, PromWriter};
use std::sync::atomic::{AtomicU64, Ordering};

/// Initializes `tracing` logs: `RUST_LOG` filters (default `info`), `VERDICT_LOG_FORMAT=json`
/// switches to JSON lines.
pub fn init_logs() {
    init_logs_at("info");
}

/// As [`init_logs`], with `default` as the filter when `RUST_LOG` is not set (the demo
/// prints its own story and logs only warnings unless asked).
pub fn init_logs_at(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("VERDICT_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Adds a batch's counts to shared counters, skipping the zeros (an atomic add waits for
/// the stores before it even when it adds nothing).
pub fn add_counts<'a>(counts: impl IntoIterator<Item = (&'a AtomicU64, u64)>) {
    for (counter, n) in counts {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Something that renders its own metrics into the `/metrics` page.
///
/// An exporter may call [`PromWriter::boundary`] where it holds no lock (the graph does so
/// between edges): a streaming writer may wait there for the scraper to read.
pub trait ExportMetrics: Send + Sync {
    fn export_metrics(&self, w: &mut PromWriter);
}
