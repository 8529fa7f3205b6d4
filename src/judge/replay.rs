//! `verdict replay FILE...`: feeds recorded OTLP/JSON lines (the Collector's file exporter
//! format, optionally `.gz`) through the analyzer and the judge faster than real time, with
//! a clock that follows the data, and prints every verdict change and the final verdicts.

use super::config::JudgeConfig;
use super::Judge;
use crate::analysis::Analyzer;
use crate::config::Config;
use crate::model::{DeploymentVerdict, IngestItem, SpanBatch, UnixNanos};
use crate::receiver::decode::{
    decode_metrics_json, decode_traces_json, DecodeError, DeltaConverter, TraceDecode,
};
use anyhow::Context;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const SECOND: u64 = 1_000_000_000;
/// Longest stretch of empty seconds ticked one by one (larger gaps jump).
const MAX_GAP_TICKS: u64 = 600;

/// `verdict replay` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// OTLP/JSON lines files (Collector file exporter output; `.gz` accepted), in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Configuration file whose `state`, `graph` and `judge` sections apply.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seconds of data time to keep ticking after the last line (flushes held traces).
    #[arg(long, default_value_t = 30)]
    pub drain_seconds: u64,
    /// Also write the decision log here (off by default for replays).
    #[arg(long)]
    pub decision_log: Option<String>,
}

/// Counters of one replay.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplayStats {
    pub lines: u64,
    pub spans: u64,
    pub metric_points: u64,
    pub bad_lines: u64,
    pub ticks: u64,
}

/// Drives analyzer and judge over lines, ticking once per second of data time.
pub struct Replayer {
    analyzer: Analyzer,
    judge: Arc<Judge>,
    delta: DeltaConverter,
    now: UnixNanos,
    next_tick: UnixNanos,
    pub stats: ReplayStats,
}

impl Replayer {
    pub fn new(config: &Config, judge_cfg: &JudgeConfig) -> anyhow::Result<Self> {
        let judge = Arc::new(Judge::new(judge_cfg)?);
        let mut analyzer = Analyzer::new(&config.state, &config.graph);
        analyzer.add_observer(judge.clone());
        Ok(Self {
            analyzer,
            judge,
            delta: DeltaConverter::new(100_000, Duration::from_secs(600)),
            now: 0,
            next_tick: 0,
            stats: ReplayStats::default(),
        })
    }

    pub fn judge(&self) -> &Judge {
        &self.judge
    }

    /// The data clock: the latest span end seen so far.
    pub fn now(&self) -> UnixNanos {
        self.now
    }

    /// Feeds one line; verdict changes go to `out`.
    pub fn line(&mut self, line: &[u8], out: &mut dyn FnMut(&DeploymentVerdict, UnixNanos)) {
        self.stats.lines += 1;
        let text = String::from_utf8_lossy(line);
        if text.trim().is_empty() {
            return;
        }
        if text.contains("\"resourceSpans\"") {
            match self.decode_spans(line) {
                Ok((d, t)) => {
                    self.advance(t, out);
                    self.stats.spans += d.spans.len() as u64;
                    self.analyzer
                        .record(&IngestItem::Spans(SpanBatch { spans: d.spans }), self.now);
                }
                Err(_) => self.stats.bad_lines += 1,
            }
        } else if text.contains("\"resourceMetrics\"") {
            match decode_metrics_json(line, &self.delta, self.now.max(1)) {
                Ok(d) => {
                    let t = d
                        .batch
                        .points
                        .iter()
                        .map(|p| p.time_unix_nano)
                        .max()
                        .unwrap_or(self.now);
                    self.advance(t, out);
                    self.stats.metric_points += d.batch.points.len() as u64;
                    self.analyzer
                        .record(&IngestItem::Metrics(d.batch), self.now);
                }
                Err(_) => self.stats.bad_lines += 1,
            }
        }
    }

    /// Decodes a traces line with the data's own time as "now": the decoder marks spans
    /// far from `now` as unusable, so the first line (or one after a long gap) is decoded
    /// again once its time is known. Returns the spans and the latest span end.
    fn decode_spans(&self, line: &[u8]) -> Result<(TraceDecode, UnixNanos), DecodeError> {
        let data_time = |d: &TraceDecode| {
            d.spans
                .iter()
                .filter(|s| s.end_unix_nano >= s.start_unix_nano)
                .map(|s| s.end_unix_nano)
                .max()
        };
        let d = decode_traces_json(line, self.now.max(1))?;
        let t = data_time(&d).unwrap_or(self.now);
        if d.stats.invalid_timing > 0 && t > self.now {
            let again = decode_traces_json(line, t)?;
            return Ok((again, t));
        }
        Ok((d, t.max(self.now)))
    }

    /// Moves the data clock to `t` (never back), ticking every whole second crossed.
    pub fn advance(&mut self, t: UnixNanos, out: &mut dyn FnMut(&DeploymentVerdict, UnixNanos)) {
        if t <= self.now {
            return;
        }
        if self.next_tick == 0 || t.saturating_sub(self.next_tick) > MAX_GAP_TICKS * SECOND {
            self.next_tick = (t / SECOND) * SECOND;
        }
        while self.next_tick <= t {
            let now = self.next_tick;
            self.analyzer.tick(now);
            let tick = self.judge.tick(&self.analyzer.series, now);
            self.stats.ticks += 1;
            for v in &tick.changed {
                out(v, now);
            }
            self.next_tick += SECOND;
        }
        self.now = t;
    }
}

fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let r: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, r)))
}

/// One printed line per verdict change.
pub fn format_change(v: &DeploymentVerdict, now: UnixNanos) -> String {
    let why: Vec<&str> = v
        .reasons
        .iter()
        .take(3)
        .map(|r| r.summary.as_str())
        .collect();
    format!(
        "{} {}/{}@{} {} (baseline {}, {} requests): {}",
        crate::clock::rfc3339(now),
        v.environment,
        v.service,
        v.version,
        v.verdict.as_str(),
        v.baseline_version.as_deref().unwrap_or("none"),
        v.requests,
        why.join("; ")
    )
}

/// Runs `verdict replay`.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let mut judge_cfg = config.judge.clone();
    judge_cfg.decision_log = args.decision_log.clone().unwrap_or_default();
    let mut r = Replayer::new(&config, &judge_cfg)?;
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let mut print = |v: &DeploymentVerdict, now: UnixNanos| {
        let _ = writeln!(w, "{}", format_change(v, now));
    };
    for path in &args.files {
        let mut reader = open(path)?;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            r.line(&buf, &mut print);
        }
    }
    let end = r.now + args.drain_seconds * SECOND;
    r.advance(end, &mut print);
    let final_verdicts = r.judge.deployments(None);
    println!("-- final verdicts at {} --", crate::clock::rfc3339(end));
    for v in &final_verdicts {
        println!("{}", format_change(v, end));
    }
    let s = &r.stats;
    println!(
        "-- {} lines, {} spans, {} metric points, {} unreadable lines, {} ticks --",
        s.lines, s.spans, s.metric_points, s.bad_lines, s.ticks
    );
    Ok(())
}
