//! Ingest side of the judge: per (environment, service, version) and per stream (scope,
//! peer, operation) counters for the current tick, counted against the thresholds the
//! baseline set at the previous tick, plus rolling 10 s slots that give baselines, history
//! and thresholds. Called from the analysis workers: constant work per observation.

use crate::analysis::histogram::LatencyHistogram;
use crate::model::{Name, Scope, UnixNanos};
use ahash::AHashMap as HashMap;
use std::collections::VecDeque;

/// Most latency quantiles a judge tests.
pub const MAXQ: usize = 4;
/// Width of a history slot.
pub const SLOT_NS: u64 = 10_000_000_000;
/// History slots kept per stream (5 minutes of 10 s slots that had data).
pub const SLOTS: usize = 30;
/// Trace ids kept per stream as exemplars.
const EXEMPLARS: usize = 4;
/// Name of the stratum that collects operations beyond the cap.
pub const OTHER: &str = "_other";

/// One stream of a version: `peer` names the other end (edges, path), empty for self;
/// `op` is the stratum (operation), empty for edges and path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub scope: Scope,
    pub peer: Name,
    pub op: Name,
}

/// Counts of one stream over one tick (or slot, or window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub n: u64,
    pub err: u64,
    /// Requests with valid latency counted against thresholds.
    pub n_lat: u64,
    /// Above the baseline threshold `tau_q`.
    pub exc_base: [u64; MAXQ],
    /// Above the candidate threshold `(1 + margin) tau_q`.
    pub exc_cand: [u64; MAXQ],
    /// Above the promotion threshold `(1 + promote margin) tau_q`.
    pub exc_promote: [u64; MAXQ],
    pub hist: LatencyHistogram,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.n += o.n;
        self.err += o.err;
        self.n_lat += o.n_lat;
        for i in 0..MAXQ {
            self.exc_base[i] += o.exc_base[i];
            self.exc_cand[i] += o.exc_cand[i];
            self.exc_promote[i] += o.exc_promote[i];
        }
        self.hist.merge(&o.hist);
    }
}

/// Thresholds for one stream: `base[i]` is the baseline's q-quantile, `cand[i]` the same
/// raised by the latency margin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Thresholds {
    pub base: [u64; MAXQ],
    pub cand: [u64; MAXQ],
    /// The quantile raised by the promotion margin.
    pub promote: [u64; MAXQ],
    pub len: usize,
}

/// One stream of one version.
#[derive(Debug, Default)]
pub struct Stream {
    pub tick: Counts,
    /// (slot index, counts) for slots that had data, oldest first.
    pub slots: VecDeque<(u64, Counts)>,
    pub exemplars: VecDeque<[u8; 16]>,
}

impl Stream {
    /// Counts of slots at or after `from_slot`.
    pub fn slots_since(&self, from_slot: u64) -> Counts {
        let mut c = Counts::default();
        for (_, s) in self.slots.iter().filter(|(i, _)| *i >= from_slot) {
            c.add(s);
        }
        c
    }

    /// Moves the tick's counts into the current slot and returns them.
    fn close_tick(&mut self, slot: u64) -> Counts {
        let t = std::mem::take(&mut self.tick);
        if t.n > 0 {
            match self.slots.back_mut() {
                Some((i, c)) if *i == slot => c.add(&t),
                _ => {
                    self.slots.push_back((slot, t.clone()));
                    if self.slots.len() > SLOTS {
                        self.slots.pop_front();
                    }
                }
            }
        }
        t
    }
}

/// One version of a service.
#[derive(Debug, Default)]
pub struct VersionTrack {
    pub streams: HashMap<StreamKey, Stream>,
    pub first_seen: UnixNanos,
    pub last_seen: UnixNanos,
    /// Last time it served a request (server span, incoming call or request metric).
    pub last_served: UnixNanos,
    pub served_total: u64,
    /// Whether server spans arrived (metrics are then used only as a fallback).
    pub has_server_spans: bool,
    pub k8s: Option<Name>,
}

/// One observation for a stream.
#[derive(Debug, Clone, Copy)]
pub struct Obs {
    pub latency_ns: Option<u64>,
    pub error: bool,
    pub trace_id: Option<[u8; 16]>,
    pub n: u64,
}

impl VersionTrack {
    pub fn new(now: UnixNanos) -> Self {
        Self {
            first_seen: now,
            last_seen: now,
            ..Default::default()
        }
    }

    /// Counts an observation against `th` (the service's thresholds for the stream).
    pub fn observe(
        &mut self,
        mut key: StreamKey,
        o: Obs,
        th: Option<&Thresholds>,
        cap: usize,
    ) -> bool {
        use std::collections::hash_map::Entry;
        let full = self.streams.len() >= cap;
        let mut overflow = false;
        let s = match self.streams.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) if !full => v.insert(Stream::default()),
            Entry::Vacant(v) => {
                key = v.into_key();
                key.op = OTHER.into();
                if !key.peer.is_empty() {
                    key.peer = OTHER.into();
                }
                overflow = true;
                self.streams.entry(key).or_default()
            }
        };
        let t = &mut s.tick;
        t.n += o.n;
        let bad_err = o.error;
        if o.error {
            t.err += o.n;
        }
        let mut slow = false;
        if let Some(lat) = o.latency_ns {
            t.hist.record_n(lat, o.n);
            if let Some(th) = th {
                t.n_lat += o.n;
                for i in 0..th.len {
                    if lat > th.base[i] {
                        t.exc_base[i] += o.n;
                    }
                    if lat > th.cand[i] {
                        t.exc_cand[i] += o.n;
                        slow = i + 1 == th.len;
                    }
                    if lat > th.promote[i] {
                        t.exc_promote[i] += o.n;
                    }
                }
            }
        }
        if let (Some(id), true) = (o.trace_id, bad_err || slow) {
            if s.exemplars.len() >= EXEMPLARS {
                s.exemplars.pop_front();
            }
            s.exemplars.push_back(id);
        }
        overflow
    }

    /// Closes the tick of every stream; returns this tick's counts per stream.
    pub fn close_tick(&mut self, now: UnixNanos) -> HashMap<StreamKey, Counts> {
        let slot = now / SLOT_NS;
        self.streams
            .iter_mut()
            .map(|(k, s)| (k.clone(), s.close_tick(slot)))
            .filter(|(_, c)| c.n > 0)
            .collect()
    }
}

/// One service of one environment.
#[derive(Debug, Default)]
pub struct ServiceTrack {
    pub first_seen: UnixNanos,
    pub versions: HashMap<Name, VersionTrack>,
    /// The running version: the baseline of new deployments.
    pub stable: Option<Name>,
    pub thresholds: HashMap<StreamKey, Thresholds>,
}

impl ServiceTrack {
    /// Recomputes thresholds from the stable version: its last minute when that has enough
    /// data, else its whole history.
    pub fn refresh_thresholds(
        &mut self,
        now: UnixNanos,
        quantiles: &[f64],
        margin: f64,
        promote_margin: f64,
    ) {
        let Some(stable) = self.stable.as_ref().and_then(|v| self.versions.get(v)) else {
            return;
        };
        let recent_from = (now / SLOT_NS).saturating_sub(6);
        let mut out = HashMap::new();
        for (k, s) in &stable.streams {
            let mut c = s.slots_since(recent_from);
            if c.hist.count() < 50 {
                c = s.slots_since(0);
            }
            if c.hist.count() < 10 {
                continue;
            }
            let mut th = Thresholds {
                len: quantiles.len().min(MAXQ),
                ..Default::default()
            };
            for (i, q) in quantiles.iter().take(MAXQ).enumerate() {
                let b = c.hist.quantile(*q).unwrap_or(0);
                th.base[i] = b;
                th.cand[i] = (b as f64 * (1.0 + margin)) as u64;
                th.promote[i] = (b as f64 * (1.0 + promote_margin)) as u64;
            }
            out.insert(k.clone(), th);
        }
        self.thresholds = out;
    }
}
