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

/// Writes Prometheus text exposition format (0.0.4), optionally gzip-compressed as it
/// goes, so a scrape of a large graph never holds the whole text (10,000 edges render about
/// 90 MB of text, which compresses to a few MB).
#[derive(Debug, Default)]
pub struct PromWriter {
    out: String,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
}

/// Text staged before it is compressed.
const GZIP_CHUNK: usize = 64 << 10;

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

    /// A writer whose output is gzip-compressed as it is written (for `Accept-Encoding:
    /// gzip`); [`PromWriter::finish_bytes`] returns the compressed body.
    pub fn gzip() -> Self {
        Self {
            out: String::with_capacity(GZIP_CHUNK + 4096),
            gzip: Some(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            )),
        }
    }

    /// Moves staged text into the compressor once a chunk is full.
    fn spill(&mut self, force: bool) {
        if let Some(z) = self.gzip.as_mut() {
            if force || self.out.len() >= GZIP_CHUNK {
                use std::io::Write as _;
                // Writing into a Vec cannot fail.
                let _ = z.write_all(self.out.as_bytes());
                self.out.clear();
            }
        }
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
        self.spill(false);
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
        self.spill(false);
    }

    /// The text (of a writer made with [`PromWriter::new`]).
    pub fn finish(self) -> String {
        debug_assert!(
            self.gzip.is_none(),
            "a gzip writer finishes with finish_bytes"
        );
        self.out
    }

    /// The body: compressed for a [`PromWriter::gzip`] writer, else the text.
    pub fn finish_bytes(mut self) -> Vec<u8> {
        self.spill(true);
        match self.gzip.take() {
            Some(z) => z.finish().unwrap_or_default(),
            None => self.out.into_bytes(),
        }
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
    fn gzip_output_decompresses_to_the_same_text() {
        let render = |w: &mut PromWriter| {
            w.family("y", PromType::Gauge, "many lines");
            for i in 0..20_000 {
                w.sample("y", &[("edge", &format!("e{i}"))], i as f64);
            }
        };
        let (mut plain, mut z) = (PromWriter::new(), PromWriter::gzip());
        render(&mut plain);
        render(&mut z);
        let text = plain.finish();
        let body = z.finish_bytes();
        assert!(
            body.len() * 4 < text.len(),
            "{} vs {}",
            body.len(),
            text.len()
        );
        let mut back = String::new();
        use std::io::Read as _;
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
    }

    #[test]
    fn writes_escaped_labels() {
        let mut w = PromWriter::new();
        w.family("x_total", PromType::Counter, "things");
        w.sample("x_total", &[("a", "q\"\\\n")], 3.0);
        let s = w.finish();
        assert!(s.contains("x_total{a=\"q\\\"\\\\\\n\"} 3\n"), "{s}");
    }
}
