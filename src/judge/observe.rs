//! The judge's observations: spans, edge calls and request-duration metrics counted into
//! each service version's streams (runs of one resource with one track lookup), and spans
//! held for path attribution while a deployment is live.

use super::config::JudgeConfig;
use super::track::{self, Obs, ServiceTrack, StreamKey, VersionTrack};
use super::{Judge, State};
use crate::analysis::graph::{EdgeRuns, EdgeSample};
use crate::analysis::Observer;
use crate::model::{MetricBatch, Name, NodeKind, Scope, SpanBatch, SpanRecord, UnixNanos};
use ahash::AHashMap as HashMap;

/// The service's thresholds and the version's track for an observation, created when new
/// (within the caps; `overflow` counts refusals). One hash lookup each for the service and
/// the version: this runs for every span and every edge.
fn track<'a>(
    services: &'a mut HashMap<(Name, Name), ServiceTrack>,
    overflow: &mut u64,
    cfg: &JudgeConfig,
    (env, service, version): (&Name, &Name, &Name),
    now: UnixNanos,
) -> Option<(&'a track::ThresholdTable, &'a mut VersionTrack)> {
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
            refresh_phase: track::refresh_phase(env, service),
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
    thresholds: &track::ThresholdTable,
    overflow: &mut u64,
    (key, o): (StreamKey, Obs),
    cap: usize,
    now: UnixNanos,
) {
    if vt.keeps_streams {
        let th = thresholds.get(&key);
        if vt.observe(key, o, th.as_ref(), cap, now) {
            *overflow += 1;
        }
    }
}

impl State {
    /// Counts one observation of a stream; returns the version's track for the caller's
    /// bookkeeping.
    pub(super) fn observe(
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

    /// Counts one edge's calls (a run of a graph flush) into one stream of a version: the
    /// caller's outgoing or the callee's incoming stream for the peer. Latency is the
    /// caller's view (client span) when there was one.
    fn observe_calls(
        &mut self,
        cfg: &JudgeConfig,
        who: (&Name, &Name, &Name),
        key: StreamKey,
        calls: &[EdgeSample],
    ) {
        let Some(last) = calls.iter().map(|c| c.at).max() else {
            return;
        };
        let served = key.scope == Scope::Incoming;
        let cap = cfg.max_operations * 4;
        let Some((thresholds, vt)) = track(&mut self.services, &mut self.overflow, cfg, who, last)
        else {
            // Refused by the caps: every call counts, as one by one.
            self.overflow += calls.len() as u64 - 1;
            return;
        };
        vt.last_seen = vt.last_seen.max(last);
        if served {
            vt.last_served = vt.last_served.max(last);
        }
        if vt.keeps_streams {
            let th = thresholds.get(&key);
            let obs = calls.iter().map(|c| {
                let o = Obs {
                    latency_ns: c.client_ns().or(c.server_ns()),
                    error: c.failed,
                    trace_id: Some(c.trace_id),
                    n: 1,
                };
                (o, c.at)
            });
            self.overflow += vt.observe_many(key, obs, th.as_ref(), cap);
        }
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

pub(super) fn peer_key(scope: Scope, peer: &Name) -> StreamKey {
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

    fn on_edges(&self, runs: &EdgeRuns, _now: UnixNanos) {
        let mut st = self.state.lock();
        for run in runs.iter() {
            let k = run.key;
            st.observe_calls(
                &self.cfg,
                (&k.environment, &k.caller, &k.caller_version),
                peer_key(Scope::Outgoing, &k.callee),
                run.calls,
            );
            if run.callee_kind == NodeKind::Service && !k.callee_version.is_empty() {
                st.observe_calls(
                    &self.cfg,
                    (&k.environment, &k.callee, &k.callee_version),
                    peer_key(Scope::Incoming, &k.caller),
                    run.calls,
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
