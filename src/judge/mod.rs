//! The judge: detects deployments and decides, every second, whether each is healthy
//! (`promote`), harmful (`rollback`) or not yet known (`inconclusive`). Fed by the analysis
//! workers through [`Observer`]; ticked once a second; read by the API and alerting.
//! See docs/judging.md for the statistics.

pub mod config;
pub mod decide;
pub mod log;
pub mod path;
pub mod query;
pub mod replay;
pub mod signal;
mod stable;
pub mod stats;
mod tick;
pub mod track;

use crate::analysis::Observer;
use crate::model::{
    DeploymentVerdict, EdgeCall, Incident, MetricBatch, Name, NodeKind, Scope, SpanBatch,
    SpanRecord, UnixNanos,
};
use ahash::AHashMap as HashMap;
use config::JudgeConfig;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use track::{Obs, ServiceTrack, StreamKey, VersionTrack};

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

/// The service's thresholds and the version's track for an observation, created when new
/// (within the caps; `overflow` counts refusals). One hash lookup each for the service and
/// the version: this runs for every span and every edge.
fn track<'a>(
    services: &'a mut HashMap<(Name, Name), ServiceTrack>,
    overflow: &mut u64,
    cfg: &JudgeConfig,
    (env, service, version): (&Name, &Name, &Name),
    now: UnixNanos,
) -> Option<(
    &'a HashMap<StreamKey, track::Thresholds>,
    &'a mut VersionTrack,
)> {
    use std::collections::hash_map::Entry;
    let services_full = services.len() >= cfg.max_services;
    let svc = match services.entry((env.clone(), service.clone())) {
        Entry::Occupied(o) => o.into_mut(),
        Entry::Vacant(_) if services_full => {
            *overflow += 1;
            return None;
        }
        Entry::Vacant(v) => v.insert(ServiceTrack {
            first_seen: now,
            ..Default::default()
        }),
    };
    let versions_full = svc.versions.len() >= cfg.max_versions;
    let vt = match svc.versions.entry(version.clone()) {
        Entry::Occupied(o) => o.into_mut(),
        Entry::Vacant(_) if versions_full => {
            *overflow += 1;
            return None;
        }
        // A new version is usually a deployment: it keeps its ticks' latency from the start,
        // so the tick that detects it already feeds its tests in full.
        Entry::Vacant(v) => v.insert(VersionTrack {
            judged: true,
            keeps_streams: true,
            ..VersionTrack::new(now)
        }),
    };
    Some((&svc.thresholds, vt))
}

/// Counts one observation into a version's stream when the version keeps streams (most
/// versions of a large fleet do not: their thresholds are not even looked up).
fn count(
    vt: &mut VersionTrack,
    thresholds: &HashMap<StreamKey, track::Thresholds>,
    overflow: &mut u64,
    (key, o): (StreamKey, Obs),
    cap: usize,
    now: UnixNanos,
) {
    if vt.keeps_streams {
        let th = thresholds.get(&key);
        if vt.observe(key, o, th, cap, now) {
            *overflow += 1;
        }
    }
}

impl State {
    /// Counts one observation of a stream; returns the version's track for the caller's
    /// bookkeeping.
    fn observe(
        &mut self,
        cfg: &JudgeConfig,
        who: (&Name, &Name, &Name),
        key: StreamKey,
        o: Obs,
        now: UnixNanos,
    ) -> Option<&mut VersionTrack> {
        let served = matches!(key.scope, Scope::SelfScope | Scope::Incoming);
        let cap = cfg.max_operations * 4;
        let (thresholds, vt) = track(&mut self.services, &mut self.overflow, cfg, who, now)?;
        vt.last_seen = now;
        if served {
            vt.last_served = now;
        }
        count(vt, thresholds, &mut self.overflow, (key, o), cap, now);
        Some(vt)
    }

    /// Counts a run of spans of one resource: served spans into their self-scope streams,
    /// every span as a sighting and, while a deployment is live, into the path buffer. The
    /// version's track is looked up once per run.
    fn observe_run(&mut self, cfg: &JudgeConfig, run: &[SpanRecord], now: UnixNanos) {
        let r = &run[0].resource;
        let who = (&r.environment, &r.service, &r.version);
        let cap = cfg.max_operations * 4;
        let State {
            services,
            overflow,
            path,
            any_live,
            ..
        } = self;
        let shared = match track(services, overflow, cfg, who, now) {
            Some((thresholds, vt)) => {
                vt.last_seen = now;
                for s in run.iter().filter(|s| s.kind.is_served()) {
                    vt.last_served = now;
                    vt.has_server_spans = true;
                    vt.served_total += 1;
                    let o = Obs {
                        latency_ns: s.duration_ns(),
                        error: s.error,
                        trace_id: Some(s.trace_id),
                        n: 1,
                    };
                    count(
                        vt,
                        thresholds,
                        overflow,
                        (self_key(&s.operation), o),
                        cap,
                        now,
                    );
                }
                if vt.k8s.is_none() {
                    vt.k8s = r.k8s_deployment.clone();
                }
                vt.resource.get_or_insert_with(|| r.clone()).clone()
            }
            None => {
                // Refused by the caps: every span of the run counts, as one by one.
                *overflow += run.len() as u64 - 1;
                r.clone()
            }
        };
        if *any_live {
            for s in run {
                path.hold(s, shared.clone(), now);
            }
        }
    }
}

fn self_key(op: &Name) -> StreamKey {
    StreamKey {
        scope: Scope::SelfScope,
        peer: Name::default(),
        op: op.clone(),
    }
}

fn peer_key(scope: Scope, peer: &Name) -> StreamKey {
    StreamKey {
        scope,
        peer: peer.clone(),
        op: Name::default(),
    }
}

impl Observer for Judge {
    fn on_spans(&self, batch: &SpanBatch, now: UnixNanos) {
        let mut st = self.state.lock();
        // Each run of one resource looks up its version's track once.
        for run in crate::model::resource_runs(&batch.spans, |s| &s.resource) {
            st.observe_run(&self.cfg, run, now);
        }
    }

    fn on_edges(&self, edges: &[EdgeCall], now: UnixNanos) {
        let mut st = self.state.lock();
        for e in edges {
            let lat = e.client_ns.or(e.server_ns);
            let o = Obs {
                latency_ns: lat,
                error: e.failed,
                trace_id: Some(e.trace_id),
                n: 1,
            };
            st.observe(
                &self.cfg,
                (&e.environment, &e.caller, &e.caller_version),
                peer_key(Scope::Outgoing, &e.callee),
                o,
                now,
            );
            if e.callee_kind == NodeKind::Service && !e.callee_version.is_empty() {
                st.observe(
                    &self.cfg,
                    (&e.environment, &e.callee, &e.callee_version),
                    peer_key(Scope::Incoming, &e.caller),
                    o,
                    now,
                );
            }
        }
    }

    fn on_metrics(&self, batch: &MetricBatch, now: UnixNanos) {
        // Request-duration metrics count for versions that send no server spans.
        let mut st = self.state.lock();
        for p in batch.points.iter().filter(|p| p.kind.is_served()) {
            let r = &p.resource;
            let spans = st
                .services
                .get(&(r.environment.clone(), r.service.clone()))
                .and_then(|t| t.versions.get(&r.version))
                .is_some_and(|v| v.has_server_spans);
            if spans {
                continue;
            }
            for (ns, n) in &p.buckets {
                let o = Obs {
                    latency_ns: Some(*ns),
                    error: p.error,
                    trace_id: None,
                    n: *n,
                };
                st.observe(
                    &self.cfg,
                    (&r.environment, &r.service, &r.version),
                    self_key(&p.operation),
                    o,
                    now,
                );
            }
        }
    }
}

impl crate::telemetry::ExportMetrics for Judge {
    fn export_metrics(&self, w: &mut crate::telemetry::PromWriter) {
        use crate::telemetry::PromType;
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
            self.changes.load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
        let (streams, bytes) = st
            .services
            .values()
            .flat_map(|s| s.versions.values())
            .flat_map(|v| v.streams.values())
            .fold((0, 0), |(n, b), s| (n + 1, b + s.memory_bytes()));
        w.family(
            "verdict_judge_streams",
            PromType::Gauge,
            "Streams kept (stable and judged versions, per operation and peer).",
        );
        w.sample("verdict_judge_streams", &[], streams as f64);
        w.family(
            "verdict_judge_streams_memory_bytes",
            PromType::Gauge,
            "Estimated bytes held by the streams (tick counts and 5-minute histories).",
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
mod tests {
    use super::*;
    use crate::model::{Resource, SpanKind, SpanRecord};
    use std::sync::Arc;

    /// A resource of `checkout` in `prod`.
    fn resource(version: &str, instance: &str) -> Arc<Resource> {
        Arc::new(Resource {
            environment: "prod".into(),
            service: "checkout".into(),
            version: version.into(),
            instance: instance.into(),
            k8s_deployment: None,
        })
    }

    fn span(resource: &Arc<Resource>, id: u8) -> SpanRecord {
        SpanRecord {
            resource: resource.clone(),
            trace_id: [id; 16],
            span_id: [id; 8],
            parent_span_id: [0; 8],
            operation: "GET /".into(),
            kind: SpanKind::Server,
            start_unix_nano: 0,
            end_unix_nano: 1_000,
            error: false,
            timing_valid: true,
            peer: None,
        }
    }

    /// Versions that are neither judged nor stable (here one waiting for a deployment
    /// slot) keep their sightings but no streams; the stable version and the live
    /// deployment's candidate keep theirs.
    #[test]
    fn only_judged_and_stable_versions_keep_streams() {
        let cfg = JudgeConfig {
            decision_log: String::new(),
            max_deployments: 1,
            ..Default::default()
        };
        let judge = Judge::new(&cfg).unwrap();
        let series = crate::analysis::series::SeriesStore::new(&Default::default());
        let (v1, v2, v3) = (
            resource("1", "pod"),
            resource("2", "pod"),
            resource("3", "pod"),
        );
        const S: u64 = 1_000_000_000;
        let feed = |rs: &[&Arc<Resource>], t: u64| {
            let spans = rs.iter().map(|r| span(r, t as u8)).collect();
            judge.on_spans(&SpanBatch { spans }, t * S);
            judge.tick(&series, t * S);
        };
        for t in 1..=20 {
            feed(&[&v1], t);
        }
        feed(&[&v1, &v2], 21);
        for t in 22..=40 {
            feed(&[&v1, &v2, &v3], t);
        }
        let st = judge.state.lock();
        let svc = &st.services[&(Name::from("prod"), Name::from("checkout"))];
        assert_eq!(svc.stable.as_deref(), Some("1"));
        let streams = |v: &str| svc.versions[v].streams.len();
        assert!(
            streams("1") > 0 && streams("2") > 0,
            "stable and candidate keep streams"
        );
        assert_eq!(streams("3"), 0, "the waiting version keeps none");
        let waiting = &svc.versions["3"];
        assert!(!waiting.keeps_streams);
        assert_eq!((waiting.served_total, waiting.last_seen), (19, 40 * S));
        assert_eq!(st.waiting, 1);
        let kept = streams("1") + streams("2");
        drop(st);
        // The memory gauges see what is kept: streams of two versions, one deployment's tests.
        let mut w = crate::telemetry::PromWriter::new();
        crate::telemetry::ExportMetrics::export_metrics(&judge, &mut w);
        let page = w.finish();
        let gauge = |name: &str| -> f64 {
            let line = page.lines().find(|l| l.starts_with(&format!("{name} ")));
            line.and_then(|l| l.split(' ').nth(1)?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        assert_eq!(gauge("verdict_judge_streams") as usize, kept);
        assert!(gauge("verdict_judge_streams_memory_bytes") > 0.0);
        assert!(gauge("verdict_judge_tests_memory_bytes") > 0.0);
    }

    /// Held spans share one resource per version: the batches' own resources are freed
    /// with the batches even while their spans wait in the path buffer.
    #[test]
    fn held_spans_do_not_keep_their_batches_resources() {
        let cfg = JudgeConfig {
            decision_log: String::new(),
            ..Default::default()
        };
        let judge = Judge::new(&cfg).unwrap();
        judge.state.lock().any_live = true;
        let batches: Vec<Arc<Resource>> =
            (0..5).map(|i| resource("2", &format!("pod-{i}"))).collect();
        for (i, r) in batches.iter().enumerate() {
            judge.on_spans(
                &SpanBatch {
                    spans: vec![span(r, i as u8 + 1)],
                },
                1,
            );
        }
        assert_eq!(judge.state.lock().path.held_spans(), 5);
        // The first batch's resource stands for the version; the others only for their
        // batch (the local `batches`).
        assert!(Arc::strong_count(&batches[0]) > 1);
        for r in &batches[1..] {
            assert_eq!(Arc::strong_count(r), 1, "{}", r.instance);
        }
    }

    /// Runs of one resource (as OTLP batches come) count exactly as the same spans sent one
    /// per batch: sightings, served totals, stream counts, and the cap's refusals per span.
    #[test]
    fn runs_of_one_resource_count_as_single_spans() {
        let cfg = JudgeConfig {
            decision_log: String::new(),
            max_versions: 2,
            ..Default::default()
        };
        let (v1, v2, v3) = (
            resource("1", "pod"),
            resource("2", "pod"),
            resource("3", "pod"),
        );
        let mut spans = Vec::new();
        for (r, n) in [(&v1, 3), (&v2, 2), (&v3, 4), (&v1, 1)] {
            for id in 0..n {
                let mut s = span(r, spans.len() as u8);
                if id == 0 {
                    s.kind = SpanKind::Client;
                }
                spans.push(s);
            }
        }
        let grouped = Judge::new(&cfg).unwrap();
        grouped.on_spans(
            &SpanBatch {
                spans: spans.clone(),
            },
            7,
        );
        let single = Judge::new(&cfg).unwrap();
        for s in &spans {
            single.on_spans(
                &SpanBatch {
                    spans: vec![s.clone()],
                },
                7,
            );
        }
        let summary = |j: &Judge| {
            let st = j.state.lock();
            let svc = &st.services[&(Name::from("prod"), Name::from("checkout"))];
            let mut versions: Vec<_> = svc
                .versions
                .iter()
                .map(|(v, t)| {
                    let n: u64 = t.streams.values().map(|s| s.tick.n).sum();
                    (v.to_string(), t.served_total, t.last_seen, t.last_served, n)
                })
                .collect();
            versions.sort();
            (versions, st.overflow)
        };
        let got = summary(&grouped);
        assert_eq!(got, summary(&single));
        // v1: 4 spans, 2 served; v2: 2 spans, 1 served; v3 refused by the cap, span by span.
        assert_eq!(
            got,
            (
                vec![("1".to_string(), 2, 7, 7, 2), ("2".to_string(), 1, 7, 7, 1)],
                4
            )
        );
    }
}
