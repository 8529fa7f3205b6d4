//! The judge: detects deployments and decides, every second, whether each is healthy
//! (`promote`), harmful (`rollback`) or not yet known (`inconclusive`). Fed by the analysis
//! workers through [`Observer`](crate::analysis::Observer) (`observe.rs`); ticked once a
//! second; read by the API and alerting.
//! See docs/judging.md for the statistics.

pub mod config;
pub mod decide;
pub mod log;
mod observe;
pub mod path;
pub mod query;
pub mod replay;
pub mod signal;
mod stable;
pub mod stats;
pub mod stream;
mod tick;
pub mod track;

use crate::model::{DeploymentVerdict, Incident, Name, UnixNanos};
use ahash::AHashMap as HashMap;
use config::JudgeConfig;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use track::ServiceTrack;

pub use query::{DeploymentMarker, QueryError};

/// Why the judge could not start.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error(transparent)]
    Log(#[from] log::LogError),
}

/// What one tick produced.
#[derive(Debug, Clone, Default)]
pub struct JudgeTick {
    /// Every listed deployment (live and recently ended).
    pub verdicts: Vec<crate::model::DeploymentVerdict>,
    /// Those whose decision changed in this tick.
    pub changed: Vec<crate::model::DeploymentVerdict>,
    /// Environment-wide changes blamed on no deployment.
    pub incidents: Vec<Incident>,
}

/// One judged deployment.
#[derive(Debug)]
pub struct Deployment {
    pub baseline: Option<Name>,
    pub started: UnixNanos,
    pub tests: BTreeMap<signal::TestKey, signal::SignalTest>,
    pub requests: u64,
    pub last_traffic: UnixNanos,
    /// End state and when: "rolled_back", "superseded", "stopped", "promoted".
    pub ended: Option<(&'static str, UnixNanos)>,
    pub verdict: DeploymentVerdict,
    /// Candidate requests in recent ticks (for the rate).
    pub recent: std::collections::VecDeque<u64>,
}

/// Everything the judge holds, under one lock (observations are a few hash lookups).
#[derive(Default)]
pub(crate) struct State {
    pub services: HashMap<(Name, Name), ServiceTrack>,
    pub deployments: BTreeMap<crate::model::DeploymentKey, Deployment>,
    pub path: path::PathBuffer,
    pub incidents: Vec<Incident>,
    pub shed_at: Option<UnixNanos>,
    pub overflow: u64,
    pub any_live: bool,
    /// New versions not judged yet because `max_deployments` are live.
    pub waiting: usize,
}

/// Deployments not ended yet (what `max_deployments` bounds).
pub(crate) fn live_deployments(
    deployments: &BTreeMap<crate::model::DeploymentKey, Deployment>,
) -> usize {
    deployments.values().filter(|d| d.ended.is_none()).count()
}

/// The judge.
pub struct Judge {
    cfg: JudgeConfig,
    state: Mutex<State>,
    log: Mutex<log::DecisionLog>,
    changes: std::sync::atomic::AtomicU64,
    /// Ticks run and the CPU time they used (nanoseconds, of the ticking thread).
    ticks: std::sync::atomic::AtomicU64,
    tick_cpu_ns: std::sync::atomic::AtomicU64,
}

impl Judge {
    /// Builds a judge and opens its decision log.
    pub fn new(cfg: &JudgeConfig) -> Result<Self, JudgeError> {
        let log = log::DecisionLog::open(
            &cfg.decision_log,
            cfg.decision_log_max_bytes,
            cfg.decision_log_keep,
        )?;
        let state = State {
            path: path::PathBuffer::new(cfg.max_held_spans, cfg.trace_hold.as_nanos() as u64),
            ..Default::default()
        };
        Ok(Self {
            cfg: cfg.clone(),
            state: Mutex::new(state),
            log: Mutex::new(log),
            changes: Default::default(),
            ticks: Default::default(),
            tick_cpu_ns: Default::default(),
        })
    }

    pub fn config(&self) -> &JudgeConfig {
        &self.cfg
    }

    /// Reports items shed at ingest: promotion is withheld for a minute after.
    pub fn note_shed(&self, items: u64, now: UnixNanos) {
        if items > 0 {
            self.state.lock().shed_at = Some(now);
        }
    }
}

impl crate::telemetry::ExportMetrics for Judge {
    fn export_metrics(&self, w: &mut crate::telemetry::PromWriter) {
        use crate::telemetry::PromType;
        use std::sync::atomic::Ordering::Relaxed;
        let st = self.state.lock();
        w.family(
            "verdict_judge_deployments",
            PromType::Gauge,
            "Deployments listed by the judge, by verdict.",
        );
        for d in ["promote", "inconclusive", "rollback"] {
            let n = st
                .deployments
                .values()
                .filter(|x| x.verdict.verdict.as_str() == d)
                .count();
            w.sample("verdict_judge_deployments", &[("verdict", d)], n as f64);
        }
        w.family(
            "verdict_judge_deployments_waiting",
            PromType::Gauge,
            "New versions not judged yet because judge.max_deployments deployments are live.",
        );
        w.sample("verdict_judge_deployments_waiting", &[], st.waiting as f64);
        w.family(
            "verdict_judge_verdict_changes_total",
            PromType::Counter,
            "Verdict changes written to the decision log.",
        );
        w.sample(
            "verdict_judge_verdict_changes_total",
            &[],
            self.changes.load(Relaxed) as f64,
        );
        w.family(
            "verdict_judge_ticks_total",
            PromType::Counter,
            "Judging steps run (one a second).",
        );
        w.sample(
            "verdict_judge_ticks_total",
            &[],
            self.ticks.load(Relaxed) as f64,
        );
        w.family(
            "verdict_judge_tick_cpu_seconds_total",
            PromType::Counter,
            "CPU time the judging steps used (the ticking thread's).",
        );
        w.sample(
            "verdict_judge_tick_cpu_seconds_total",
            &[],
            self.tick_cpu_ns.load(Relaxed) as f64 / 1e9,
        );
        let (streams, bytes) = st
            .services
            .values()
            .flat_map(|s| s.versions.values())
            .flat_map(|v| v.streams.values())
            .fold((0, 0), |(n, b), s| (n + 1, b + s.memory_bytes()));
        let bytes = bytes
            + st.services
                .values()
                .map(|s| s.thresholds.heap_bytes())
                .sum::<usize>();
        w.family(
            "verdict_judge_streams",
            PromType::Gauge,
            "Streams kept (stable and judged versions, per operation and peer).",
        );
        w.sample("verdict_judge_streams", &[], streams as f64);
        w.family(
            "verdict_judge_streams_memory_bytes",
            PromType::Gauge,
            "Estimated bytes held by the streams (tick counts, 5-minute histories) and their thresholds.",
        );
        w.sample("verdict_judge_streams_memory_bytes", &[], bytes as f64);
        let tests: usize = st
            .deployments
            .values()
            .flat_map(|d| d.tests.values())
            .map(signal::SignalTest::memory_bytes)
            .sum();
        w.family(
            "verdict_judge_tests_memory_bytes",
            PromType::Gauge,
            "Estimated bytes held by the deployments' signal tests (counts, 30-tick windows).",
        );
        w.sample("verdict_judge_tests_memory_bytes", &[], tests as f64);
        w.family(
            "verdict_judge_path_memory_bytes",
            PromType::Gauge,
            "Estimated bytes held by the path buffer (held spans and their traces).",
        );
        w.sample(
            "verdict_judge_path_memory_bytes",
            &[],
            st.path.memory_bytes() as f64,
        );
        w.family(
            "verdict_judge_held_spans",
            PromType::Gauge,
            "Spans held for path attribution.",
        );
        w.sample("verdict_judge_held_spans", &[], st.path.held_spans() as f64);
        w.family(
            "verdict_judge_dropped_spans_total",
            PromType::Counter,
            "Spans the path buffer could not hold.",
        );
        w.sample(
            "verdict_judge_dropped_spans_total",
            &[],
            st.path.dropped_spans as f64,
        );
        w.family(
            "verdict_judge_overflow_total",
            PromType::Counter,
            "Observations beyond the service, version or stream caps.",
        );
        w.sample("verdict_judge_overflow_total", &[], st.overflow as f64);
        w.family(
            "verdict_judge_incidents",
            PromType::Gauge,
            "Environment-wide incidents in progress.",
        );
        w.sample("verdict_judge_incidents", &[], st.incidents.len() as f64);
        drop(st);
        let log = self.log.lock();
        w.family(
            "verdict_judge_decision_log_errors_total",
            PromType::Counter,
            "Decision log writes that failed.",
        );
        w.sample(
            "verdict_judge_decision_log_errors_total",
            &[],
            log.errors as f64,
        );
    }
}

#[cfg(test)]
mod tests;
