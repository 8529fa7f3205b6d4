//! The judge's once-a-second step: releases held traces into path observations, closes
//! the tick's counts, detects deployments and their end, feeds every live deployment's
//! tests, decides, logs changes, refreshes baseline thresholds and looks for incidents.

use super::decide::{self, Context};
use super::observe::peer_key;
use super::signal::{StratumTick, TestKey};
use super::track::{Counts, ServiceTrack, StreamKey, VersionTrack, SLOT_NS};
use super::{Deployment, Judge, JudgeTick, State};
use crate::analysis::series::SeriesStore;
use crate::clock::rfc3339;
use crate::model::{
    Decision, DeploymentKey, DeploymentVerdict, Incident, Name, Scope, Signal, UnixNanos,
};
use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::collections::BTreeMap;

type Snap = HashMap<Name, HashMap<StreamKey, Counts>>;

impl Judge {
    /// Runs one judging step at `now` (every second).
    pub fn tick(&self, series: &SeriesStore, now: UnixNanos) -> JudgeTick {
        use std::sync::atomic::Ordering::Relaxed;
        let cpu = crate::telemetry::cpu::thread_cpu_time;
        let start = cpu();
        let out = self.step(series, now);
        if let (Some(a), Some(b)) = (start, cpu()) {
            self.tick_cpu_ns
                .fetch_add(b.saturating_sub(a).as_nanos() as u64, Relaxed);
        }
        self.ticks.fetch_add(1, Relaxed);
        out
    }

    fn step(&self, _series: &SeriesStore, now: UnixNanos) -> JudgeTick {
        let cfg = &self.cfg;
        let mut st = self.state.lock();
        flush_paths(&mut st, cfg, now);
        // Deployments first (from first and last sightings, not from this tick's counts), so
        // that a new deployment's baseline hands over this tick's counts too.
        detect(&mut st, cfg, now);
        mark_judged(&mut st);
        let mut snaps: HashMap<(Name, Name), Snap> = HashMap::new();
        for (k, svc) in st.services.iter_mut() {
            let s: Snap = svc
                .versions
                .iter_mut()
                .map(|(v, vt)| (v.clone(), vt.close_tick(now)))
                .filter(|(_, c)| !c.is_empty())
                .collect();
            if !s.is_empty() {
                snaps.insert(k.clone(), s);
            }
        }
        let State {
            services,
            deployments,
            ..
        } = &mut *st;
        for (dk, dep) in deployments.iter_mut().filter(|(_, d)| d.ended.is_none()) {
            let sk = (dk.environment.clone(), dk.service.clone());
            if let (Some(svc), Some(snap)) = (services.get(&sk), snaps.get(&sk)) {
                feed(cfg, svc, snap, dk, dep, now);
            }
        }
        find_incidents(&mut st, now);
        let changed = self.decide_all(&mut st, now);
        lifecycle(&mut st, cfg, now);
        for svc in st.services.values_mut() {
            let live = svc.versions.values().any(|v| v.judged);
            svc.refresh_thresholds(
                (now, live),
                &cfg.quantiles,
                cfg.latency_margin_rel,
                cfg.promote_latency_margin_rel,
            );
        }
        st.any_live = st.deployments.values().any(|d| d.ended.is_none());
        JudgeTick {
            verdicts: st.deployments.values().map(|d| d.verdict.clone()).collect(),
            changed,
            incidents: st.incidents.clone(),
        }
    }

    fn decide_all(&self, st: &mut State, now: UnixNanos) -> Vec<DeploymentVerdict> {
        let cfg = &self.cfg;
        let shed = st
            .shed_at
            .is_some_and(|t| now.saturating_sub(t) < 60_000_000_000)
            || (st.path.dropped_spans > 0
                && now.saturating_sub(st.path.last_drop) < 60_000_000_000);
        let incident_envs: HashSet<Name> =
            st.incidents.iter().map(|i| i.environment.clone()).collect();
        let mut changed = Vec::new();
        let mut log = self.log.lock();
        for (dk, dep) in st.deployments.iter_mut().filter(|(_, d)| d.ended.is_none()) {
            let rate = dep.recent.iter().sum::<u64>() as f64 / dep.recent.len().max(1) as f64;
            let ctx = Context {
                service: &dk.service,
                baseline: dep.baseline.as_ref(),
                requests: dep.requests,
                age_ns: now.saturating_sub(dep.started),
                rate,
                shed,
                incident_hold: incident_envs.contains(&dk.environment),
            };
            let (decision, reasons) = decide::decide(cfg, dep.tests.iter(), &ctx);
            let prev = dep.verdict.verdict;
            dep.verdict.requests = dep.requests;
            dep.verdict.baseline_version = dep.baseline.clone();
            if prev == Decision::Rollback {
                continue; // a rollback verdict stands
            }
            dep.verdict.verdict = decision;
            dep.verdict.reasons = reasons;
            if decision != prev {
                tracing::info!(deployment = %dk, from = prev.as_str(), to = decision.as_str(), "verdict changed");
                log.append(&dep.verdict, Some(prev), now);
                self.changes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                changed.push(dep.verdict.clone());
            }
        }
        log.flush();
        changed
    }
}

fn flush_paths(st: &mut State, cfg: &super::JudgeConfig, now: UnixNanos) {
    let live: HashSet<(Name, Name)> = st
        .deployments
        .iter()
        .filter(|(_, d)| d.ended.is_none())
        .map(|(k, _)| (k.environment.clone(), k.service.clone()))
        .collect();
    let mut obs = Vec::new();
    st.path.flush(
        now,
        live.is_empty(),
        &|e, s| live.contains(&(Name::from(e), Name::from(s))),
        &mut obs,
    );
    for o in obs {
        let ob = super::track::Obs {
            latency_ns: o.latency_ns,
            error: o.error,
            trace_id: Some(o.trace_id),
            n: 1,
        };
        st.observe(
            cfg,
            (&o.env, &o.service, &o.version),
            peer_key(Scope::Path, &o.peer),
            ob,
            now,
        );
    }
}

/// The baseline's history of one stream, counted against the current thresholds.
fn history(svc: &ServiceTrack, baseline: &Name, key: &StreamKey) -> Option<Counts> {
    let s = svc.versions.get(baseline)?.streams.get(key)?;
    let mut h = s.slots_since(0);
    let th = svc.thresholds.get(key)?;
    h.n_lat = h.hist.count();
    for i in 0..th.len {
        h.exc_base[i] = h.hist.count_above(th.base[i]);
        h.exc_cand[i] = h.hist.count_above(th.cand[i]);
        h.exc_promote[i] = h.hist.count_above(th.promote[i]);
    }
    (h.n > 0).then_some(h)
}

fn serving(svc: &ServiceTrack, v: &Name, cfg: &super::JudgeConfig, now: UnixNanos) -> bool {
    served_within(svc, v, cfg.stop_after.as_nanos() as u64, now)
}

/// A baseline silent this long is compared through its history: a replacement is judged
/// from its first seconds, not only once the old version has been declared stopped.
const BASELINE_SILENT_NS: u64 = 3_000_000_000;

fn served_within(svc: &ServiceTrack, v: &Name, within: u64, now: UnixNanos) -> bool {
    svc.versions
        .get(v)
        .is_some_and(|vt| now.saturating_sub(vt.last_served) < within)
}

/// Whether a baseline serves now (same-window comparison) rather than through its history.
fn baseline_live(svc: &ServiceTrack, baseline: &Name, now: UnixNanos) -> bool {
    served_within(svc, baseline, BASELINE_SILENT_NS, now)
}

fn feed(
    cfg: &super::JudgeConfig,
    svc: &ServiceTrack,
    snap: &Snap,
    dk: &DeploymentKey,
    dep: &mut Deployment,
    now: UnixNanos,
) {
    let empty = HashMap::new();
    let cand = snap.get(&dk.version).unwrap_or(&empty);
    let base_serving = dep
        .baseline
        .as_ref()
        .is_some_and(|b| baseline_live(svc, b, now));
    let base = dep
        .baseline
        .as_ref()
        .and_then(|b| snap.get(b))
        .unwrap_or(&empty);
    let zero = Counts::default();
    let mut groups: BTreeMap<TestKey, Vec<(&StreamKey, &Counts)>> = BTreeMap::new();
    for (k, c) in cand {
        groups
            .entry(TestKey {
                scope: k.scope,
                peer: k.peer.clone(),
            })
            .or_default()
            .push((k, c));
    }
    let tick_requests: u64 = cand
        .iter()
        .filter(|(k, _)| k.scope == Scope::SelfScope)
        .map(|(_, c)| c.n)
        .sum();
    dep.requests += tick_requests;
    dep.recent.push_back(tick_requests);
    if dep.recent.len() > 10 {
        dep.recent.pop_front();
    }
    if !cand.is_empty() {
        dep.last_traffic = now;
    }
    let nq = cfg.quantiles.len().min(super::track::MAXQ);
    for (tk, members) in groups {
        if tk.scope != Scope::SelfScope
            && !dep.tests.contains_key(&tk)
            && dep.tests.keys().filter(|k| k.scope == tk.scope).count() >= cfg.max_peers
        {
            continue; // beyond the peers the alpha was split over
        }
        let hists: Vec<Option<Counts>> = members
            .iter()
            .map(|(k, _)| {
                if base_serving {
                    None
                } else {
                    dep.baseline.as_ref().and_then(|b| history(svc, b, k))
                }
            })
            .collect();
        let strata: Vec<StratumTick<'_>> = members
            .iter()
            .zip(&hists)
            .map(|((k, c), h)| StratumTick {
                key: k,
                cand: c,
                base: base_serving.then(|| base.get(*k).unwrap_or(&zero)),
                history: h.as_ref(),
            })
            .collect();
        let t = dep.tests.entry(tk).or_default();
        t.update(&strata, 1.0 + cfg.error_margin_rel, nq);
        if let Some(vt) = svc.versions.get(&dk.version) {
            for (k, _) in &members {
                if let Some(s) = vt.streams.get(k) {
                    t.exemplars = s.exemplars.newest_first().take(3).collect();
                }
            }
        }
    }
}

pub(crate) fn new_deployment(
    env: &Name,
    service: &Name,
    version: &Name,
    baseline: Option<Name>,
    started: UnixNanos,
) -> Deployment {
    let verdict = DeploymentVerdict {
        environment: env.clone(),
        service: service.clone(),
        version: version.clone(),
        baseline_version: baseline.clone(),
        verdict: Decision::Inconclusive,
        started_at: rfc3339(started),
        requests: 0,
        reasons: vec![super::query::coverage(
            "deployment detected; no requests judged yet",
        )],
    };
    Deployment {
        baseline,
        started,
        tests: BTreeMap::new(),
        requests: 0,
        last_traffic: started,
        ended: None,
        verdict,
        recent: Default::default(),
    }
}

/// Starts deployments for new versions; picks each service's running version.
fn detect(st: &mut State, cfg: &super::JudgeConfig, now: UnixNanos) {
    let grace = cfg.startup_grace.as_nanos() as u64;
    let stop = cfg.stop_after.as_nanos() as u64;
    let State {
        services,
        deployments,
        waiting,
        ..
    } = st;
    let mut new = Vec::new();
    for ((env, name), svc) in services.iter_mut() {
        if svc.versions.is_empty() || now.saturating_sub(svc.first_seen) < grace {
            continue;
        }
        if svc.stable.is_none() {
            svc.stable = super::stable::pick(&svc.versions);
        }
        for (v, vt) in &svc.versions {
            let key = DeploymentKey {
                environment: env.clone(),
                service: name.clone(),
                version: v.clone(),
            };
            if Some(v) == svc.stable.as_ref()
                || deployments.contains_key(&key)
                || now.saturating_sub(vt.last_seen) >= stop
            {
                continue;
            }
            new.push((vt.first_seen, key, svc.stable.clone()));
        }
    }
    let live = super::live_deployments(deployments);
    let room = cfg.max_deployments.saturating_sub(live);
    if new.len() > room {
        // Oldest versions first; the rest wait for a deployment to end.
        new.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        if *waiting == 0 {
            tracing::warn!(
                live,
                waiting = new.len() - room,
                max_deployments = cfg.max_deployments,
                "judge.max_deployments reached: new versions wait until a deployment ends"
            );
        }
    }
    *waiting = new.len().saturating_sub(room);
    for (first_seen, key, baseline) in new.into_iter().take(room) {
        tracing::info!(deployment = %key, baseline = ?baseline, "deployment detected");
        let d = new_deployment(
            &key.environment,
            &key.service,
            &key.version,
            baseline,
            first_seen,
        );
        deployments.insert(key, d);
    }
}

/// Flags the candidates and baselines of live deployments: only their ticks are read, and
/// only their streams keep each tick's latency histogram (the tests' windows read it). A
/// baseline picked in this tick lacks that histogram for this one tick; its counts and
/// threshold exceedances are there. Versions that are neither judged nor stable lose
/// their streams.
fn mark_judged(st: &mut State) {
    let judged: HashSet<(&Name, &Name, &Name)> = st
        .deployments
        .iter()
        .filter(|(_, d)| d.ended.is_none())
        .flat_map(|(dk, d)| {
            std::iter::once(&dk.version)
                .chain(d.baseline.as_ref())
                .map(move |v| (&dk.environment, &dk.service, v))
        })
        .collect();
    // Stable versions keep their streams (thresholds, incidents, future baselines); until
    // a service has one, all its versions do.
    for ((env, name), svc) in st.services.iter_mut() {
        for (v, vt) in svc.versions.iter_mut() {
            vt.judged = judged.contains(&(env, name, v));
            vt.keeps_streams = vt.judged || svc.stable.as_ref().is_none_or(|s| s == v);
            if !vt.keeps_streams && !vt.streams.is_empty() {
                vt.streams = Default::default();
                vt.older_self = None;
            }
        }
    }
}

/// Ends, completes and retires deployments; retires idle versions.
fn lifecycle(st: &mut State, cfg: &super::JudgeConfig, now: UnixNanos) {
    let stop = cfg.stop_after.as_nanos() as u64;
    let retire = cfg.retire_after.as_nanos() as u64;
    let latest: HashMap<(Name, Name), UnixNanos> =
        st.deployments.iter().fold(HashMap::new(), |mut m, (k, d)| {
            let e = m
                .entry((k.environment.clone(), k.service.clone()))
                .or_insert(0);
            *e = (*e).max(d.started);
            m
        });
    let State {
        services,
        deployments,
        ..
    } = st;
    for (dk, dep) in deployments.iter_mut().filter(|(_, d)| d.ended.is_none()) {
        let sk = (dk.environment.clone(), dk.service.clone());
        let Some(svc) = services.get_mut(&sk) else {
            continue;
        };
        let cand_seen = svc
            .versions
            .get(&dk.version)
            .map(|v| v.last_seen)
            .unwrap_or(0);
        if now.saturating_sub(cand_seen) >= stop && now.saturating_sub(dep.started) >= stop {
            let state = match dep.verdict.verdict {
                Decision::Rollback => "rolled_back",
                _ if latest.get(&sk).is_some_and(|t| *t > dep.started) => "superseded",
                _ => "stopped",
            };
            dep.ended = Some((state, now));
        } else if dep.verdict.verdict == Decision::Promote
            && !dep
                .baseline
                .as_ref()
                .is_some_and(|b| serving(svc, b, cfg, now))
        {
            svc.stable = Some(dk.version.clone());
            dep.ended = Some(("promoted", now));
        }
        if let Some((s, _)) = dep.ended {
            tracing::info!(deployment = %dk, state = s, "deployment ended");
        }
    }
    deployments.retain(|_, d| {
        d.ended
            .is_none_or(|(_, t)| now.saturating_sub(t.max(d.last_traffic)) < retire)
    });
    let referenced: HashSet<(Name, Name, Name)> = deployments
        .iter()
        .flat_map(|(k, d)| {
            let mut v = vec![(k.environment.clone(), k.service.clone(), k.version.clone())];
            if let Some(b) = &d.baseline {
                v.push((k.environment.clone(), k.service.clone(), b.clone()));
            }
            v
        })
        .collect();
    for ((env, name), svc) in services.iter_mut() {
        let stable = svc.stable.clone();
        svc.versions.retain(|v, vt| {
            Some(v) == stable.as_ref()
                || referenced.contains(&(env.clone(), name.clone(), v.clone()))
                || now.saturating_sub(vt.last_seen) < retire
        });
    }
    services.retain(|_, s| !s.versions.is_empty());
}

/// A running version's own recent (30 s) vs earlier behaviour, for services whose change
/// cannot come from a deployment: not being replaced, not next to a replacement, and not
/// named by a live deployment's regression.
fn find_incidents(st: &mut State, now: UnixNanos) {
    let slot = now / SLOT_NS;
    let replacing: HashSet<(Name, Name)> = st
        .deployments
        .iter()
        .filter(|(k, d)| {
            d.ended.is_none()
                && d.baseline.as_ref().is_none_or(|b| {
                    !st.services
                        .get(&(k.environment.clone(), k.service.clone()))
                        .is_some_and(|s| baseline_live(s, b, now))
                })
        })
        .map(|(k, _)| (k.environment.clone(), k.service.clone()))
        .collect();
    // Nodes a live deployment's regression already explains (its callees' errors, its
    // callers' waits): a canary's harm is the canary's, not an incident.
    let explained: HashSet<(Name, Name)> = st
        .deployments
        .iter()
        .filter(|(_, d)| d.ended.is_none() && d.verdict.verdict == Decision::Rollback)
        .flat_map(|(k, d)| {
            let env = k.environment.clone();
            d.verdict
                .reasons
                .iter()
                .filter(|r| r.regression)
                .flat_map(|r| [r.caller.clone(), r.callee.clone()])
                .flatten()
                .map(move |n| (env.clone(), n))
        })
        .collect();
    let mut changed = Vec::new();
    for ((env, name), svc) in st.services.iter_mut() {
        if explained.contains(&(env.clone(), name.clone())) {
            continue;
        }
        let Some(vt) = svc.stable.as_ref().and_then(|v| svc.versions.get_mut(v)) else {
            continue;
        };
        if replacing.contains(&(env.clone(), name.clone())) {
            continue;
        }
        // Either end of a call may carry a replacement's change: callers see its slowness,
        // callees see the errors its new requests provoke.
        let calls_replacement = !replacing.is_empty()
            && vt.streams.peers().keys().any(|k| {
                matches!(k.scope, Scope::Outgoing | Scope::Incoming)
                    && replacing.contains(&(env.clone(), k.peer.clone()))
            });
        if calls_replacement {
            continue;
        }
        if let Some((signal, what)) = self_change(vt, slot) {
            changed.push((env.clone(), name.clone(), signal, what));
        }
    }
    let mut found = Vec::new();
    for (env, name, signal, what) in changed {
        let started = st
            .incidents
            .iter()
            .find(|i| i.environment == env && i.node == name)
            .map(|i| i.started_at.clone())
            .unwrap_or_else(|| rfc3339(now));
        found.push(Incident {
            summary: format!("{name} changed without a deployment: {what}"),
            environment: env,
            node: name,
            signal,
            started_at: started,
        });
    }
    st.incidents = found;
}

/// Whether a running version's own last 30 s differ from its earlier history: errors at
/// least twice the earlier rate plus 5 points, or a median 1.5 times the earlier one.
fn self_change(vt: &mut VersionTrack, slot: u64) -> Option<(Signal, String)> {
    let older = vt.older_self(slot);
    let mut recent = Counts::default();
    for s in vt.own_streams() {
        s.add_slots(|i| i + 3 > slot, &mut recent);
    }
    if older.n < 100 || recent.n < 30 {
        return None;
    }
    let (re, oe) = (
        recent.err as f64 / recent.n as f64,
        older.err as f64 / older.n as f64,
    );
    let (rp, op) = (
        recent.hist.quantile(0.5).unwrap_or(0) as f64,
        older.median as f64,
    );
    if re >= 2.0 * oe + 0.05 {
        Some((
            Signal::ErrorRate,
            format!("error rate {:.1}% vs {:.1}% before", re * 100.0, oe * 100.0),
        ))
    } else if op > 0.0 && rp >= 1.5 * op {
        Some((
            Signal::Latency,
            format!(
                "median latency {:.1} ms vs {:.1} ms before",
                rp / 1e6,
                op / 1e6
            ),
        ))
    } else {
        None
    }
}
