//! The analyzer's own telemetry: structured `tracing` logs and a small Prometheus text
//! writer that every component uses to render its counters from live state at scrape time.

use std::fmt::Write;

/// Initializes `tracing` logs: `RUST_LOG` filters (default `info`), `VERDICT_LOG_FORMAT=json`
/// switches to JSON lines.
pub fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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

/// Writes Prometheus text exposition format (0.0.4).
#[derive(Debug, Default)]
pub struct PromWriter {
    out: String,
}

/// Metric types of the text format.
#[derive(Debug, Clone, Copy)]
pub enum PromType {
    Counter,
    Gauge,
    Histogram,
}

impl PromWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the HELP and TYPE lines of a metric family.
    pub fn family(&mut self, name: &str, kind: PromType, help: &str) {
        let t = match kind {
            PromType::Counter => "counter",
            PromType::Gauge => "gauge",
            PromType::Histogram => "histogram",
        };
        let _ = writeln!(
            self.out,
            "# HELP {name} {}",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        let _ = writeln!(self.out, "# TYPE {name} {t}");
    }

    /// Writes one sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = writeln!(self.out, " {}", value as i64);
        } else {
            let _ = writeln!(self.out, " {value}");
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Escapes a label value per the text format (backslash, quote, newline).
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Something that renders its own metrics into the `/metrics` page.
pub trait ExportMetrics: Send + Sync {
    fn export_metrics(&self, w: &mut PromWriter);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_labels() {
        let mut w = PromWriter::new();
        w.family("x_total", PromType::Counter, "things");
        w.sample("x_total", &[("a", "q\"\\\n")], 3.0);
        let s = w.finish();
        assert!(s.contains("x_total{a=\"q\\\"\\\\\\n\"} 3\n"), "{s}");
    }
}
