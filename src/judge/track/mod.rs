//! Ingest side of the judge: per (environment, service, version) and per stream (scope,
//! peer, operation) counters for the current tick, counted against the thresholds the
//! baseline set at the previous tick (each stream's counts and history are in
//! [`super::stream`]). Called from the analysis workers: constant work per observation.

pub use super::stream::{Counts, Stream, StreamKey, Thresholds, MAXQ, SLOTS, SLOT_NS};
use crate::model::{Name, UnixNanos};
use ahash::AHashMap as HashMap;
pub use streams::Streams;
pub use thresholds::ThresholdTable;

mod streams;
mod thresholds;

/// Name of the stratum that collects operations beyond the cap.
pub const OTHER: &str = "_other";

/// One version of a service.
#[derive(Debug, Default)]
pub struct VersionTrack {
    /// Its own streams and those naming a peer, in two tables.
    pub streams: Streams,
    pub first_seen: UnixNanos,
    pub last_seen: UnixNanos,
    /// Last time it served a request (server span, incoming call or request metric).
    pub last_served: UnixNanos,
    pub served_total: u64,
    /// Whether server spans arrived (metrics are then used only as a fallback).
    pub has_server_spans: bool,
    pub k8s: Option<Name>,
    /// A live deployment's candidate or baseline: its streams also keep each tick's
    /// latency histogram (the tests' windows read it) and exemplars. Set by the tick; a new
    /// version starts judged.
    pub judged: bool,
    /// Whether it keeps streams at all (per-tick counts and history): judged versions and
    /// the service's stable version, whose history gives thresholds, incident checks and
    /// replacement baselines. Other versions (deployments waiting for a slot, ended ones)
    /// only keep their sightings; their streams are dropped. Set by the tick; a new version
    /// starts with streams.
    pub keeps_streams: bool,
    /// A resource of this version, shared by the spans the path buffer holds for it.
    pub resource: Option<std::sync::Arc<crate::model::Resource>>,
    /// Ticks closed so far (wrapping): numbers the streams' tick counts.
    pub ticks: u32,
    /// The slot every stream's history was last rolled to by a tick.
    pub(super) rolled_slot: u64,
    /// The incident check's sums of the own streams' earlier slots, with what they were
    /// summed from: they change only when a slot closes or expires, not every second.
    pub older_self: Option<OlderSelf>,
}

/// Requests, errors and median latency of a version's own (self-scope) streams in the
/// slots before `slot - 2`, summed when its streams held `streams` streams whose closed
/// slots had changed `changes` times in all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OlderSelf {
    pub slot: u64,
    pub streams: usize,
    pub changes: u64,
    pub n: u64,
    pub err: u64,
    pub median: u64,
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

    /// Counts an observation at `now`: into the history, and into the tick against `th`
    /// (the service's thresholds for the stream). True when the stream cap sent it to the
    /// overflow stream.
    pub fn observe(
        &mut self,
        key: StreamKey,
        o: Obs,
        th: Option<&Thresholds>,
        cap: usize,
        now: UnixNanos,
    ) -> bool {
        self.observe_many(key, std::iter::once((o, now)), th, cap) > 0
    }

    /// Counts observations of one stream (each with its time), looking the stream up once.
    /// Returns how many the stream cap sent to the overflow stream.
    pub fn observe_many(
        &mut self,
        mut key: StreamKey,
        obs: impl Iterator<Item = (Obs, UnixNanos)>,
        th: Option<&Thresholds>,
        cap: usize,
    ) -> u64 {
        use std::collections::hash_map::Entry;
        let full = self.streams.len() >= cap;
        let mut overflow = false;
        let table = self.streams.table_mut(key.scope);
        let s = match table.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) if !full => v.insert(Box::default()),
            Entry::Vacant(v) => {
                key = v.into_key();
                key.op = OTHER.into();
                if !key.peer.is_empty() {
                    key.peer = OTHER.into();
                }
                overflow = true;
                table.entry(key).or_default()
            }
        };
        let mut n = 0;
        for (o, now) in obs {
            s.count(&o, th, self.judged, (self.ticks, now));
            n += 1;
        }
        if overflow {
            n
        } else {
            0
        }
    }

    /// The version's own (self-scope) streams: its server spans per operation.
    pub fn own_streams(&self) -> impl Iterator<Item = &Stream> {
        self.streams.own().values().map(|s| s.as_ref())
    }

    /// Requests, errors and median latency of the own streams' slots before `slot - 2`
    /// (every stream rolled to `slot`: the open slots are not among them), summed again only
    /// when a closed slot was pushed, merged or dropped since the last call or `slot` moved.
    pub fn older_self(&mut self, slot: u64) -> OlderSelf {
        let (streams, changes) = self
            .own_streams()
            .fold((0, 0u64), |(n, c), s| (n + 1, c + s.closed_changes as u64));
        if let Some(c) = self
            .older_self
            .filter(|c| (c.slot, c.streams, c.changes) == (slot, streams, changes))
        {
            return c;
        }
        let mut older = Counts::default();
        for s in self.own_streams() {
            s.add_slots(|i| i + 3 <= slot, &mut older);
        }
        let c = OlderSelf {
            slot,
            streams,
            changes,
            n: older.n,
            err: older.err,
            median: older.hist.quantile(0.5).unwrap_or(0),
        };
        self.older_self = Some(c);
        c
    }

    /// Closes the tick of every stream; returns this tick's counts per stream when the
    /// version is judged (no test reads the others' ticks: they are dropped).
    /// The others' streams are only rolled, once per slot: within a slot a roll changes
    /// nothing (every stream is at the slot already, and a new one starts in it), and their
    /// tick counts start over when next counted.
    pub fn close_tick(&mut self, now: UnixNanos) -> HashMap<StreamKey, Counts> {
        let slot = now / SLOT_NS;
        let tick = self.ticks;
        self.ticks = tick.wrapping_add(1);
        let roll = slot != self.rolled_slot;
        self.rolled_slot = slot;
        if !self.judged {
            if roll {
                for s in self.streams.values_mut() {
                    s.roll_history(slot);
                }
            }
            return HashMap::new();
        }
        self.streams
            .iter_mut()
            .filter_map(|(k, s)| {
                let c = s.close_tick(slot, tick);
                (c.n > 0).then(|| (k.clone(), c))
            })
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
    pub thresholds: ThresholdTable,
    /// The stable version the thresholds were last computed from in full.
    pub thresholds_of: Option<Name>,
    /// Whether that full pass was made while a deployment of the service was live.
    pub thresholds_live: bool,
    /// The second within [`QUIET_REFRESH_SECS`] at which a quiet service refreshes (spread
    /// over the services by name, so their passes do not all fall in one tick).
    pub refresh_phase: u64,
}

/// Seconds between full recomputations of a service's thresholds; in between only streams
/// without one get theirs. A threshold is the stable version's quantile over its last
/// minute, so a few seconds of age change it little, and recomputing every stream's every
/// second was most of the judge's fixed cost per tick (docs/benchmarks.md section 3).
pub const THRESHOLD_REFRESH_SECS: u64 = 5;

/// Seconds between full recomputations for a service without a live deployment: its
/// thresholds wait for the next deployment (whose detection refreshes them at once), and
/// they are only cut points that candidate and baseline are both counted against, so
/// their age costs a test no soundness. Most services of a fleet are quiet at any time.
pub const QUIET_REFRESH_SECS: u64 = 60;

/// A service's second within [`QUIET_REFRESH_SECS`] (FNV-1a of its environment and name:
/// the same in every run).
pub fn refresh_phase(env: &str, service: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in env.bytes().chain([0]).chain(service.bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % QUIET_REFRESH_SECS
}

impl ServiceTrack {
    /// Recomputes thresholds from the stable version: its last minute when that has enough
    /// data, else its whole history. While a deployment of the service is `live`: in full
    /// every [`THRESHOLD_REFRESH_SECS`] seconds, and in between only for streams that have
    /// none yet and received data since they were last found too thin. Without one: in full
    /// every [`QUIET_REFRESH_SECS`] seconds only. In full at once when the stable version
    /// changed or a deployment went live.
    pub fn refresh_thresholds(
        &mut self,
        (now, live): (UnixNanos, bool),
        quantiles: &[f64],
        margin: f64,
        promote_margin: f64,
    ) {
        let margins = (margin, promote_margin);
        let Some(stable) = self.stable.as_ref().and_then(|v| self.versions.get_mut(v)) else {
            return;
        };
        let secs = now / 1_000_000_000;
        let changed = self.thresholds_of != self.stable || (live && !self.thresholds_live);
        let full = changed
            || if live {
                secs % THRESHOLD_REFRESH_SECS == 0
            } else {
                (secs + self.refresh_phase) % QUIET_REFRESH_SECS == 0
            };
        if !full && !live {
            return;
        }
        let recent_from = (now / SLOT_NS).saturating_sub(6);
        // Entries are written in place; a full pass drops those it did not write.
        let table = &mut self.thresholds;
        if full {
            table.begin_full(margins);
        }
        // One buffer sums every stream's slots: it grows once instead of per stream.
        let mut sum = Counts::default();
        for (k, s) in stable.streams.iter_mut() {
            // A thin stream without new data would fail again (its history only loses
            // requests), so it is skipped in full passes too; a thin one has no threshold.
            if s.too_thin || (!full && s.thresholded) {
                continue;
            }
            if let Some(th) = threshold_of(s, recent_from, &mut sum, quantiles, margins) {
                table.insert(k, &th.base[..th.len]);
            }
        }
        if full {
            table.end_full();
            self.thresholds_of = self.stable.clone();
            self.thresholds_live = live;
        }
    }
}

/// The threshold a stream's history gives (summed in `sum`), None when too thin: its last
/// minute when that holds 50 latencies, else its whole history when that holds 10. Marked
/// thin until it passes; `margins` are the candidate's and the promotion's.
fn threshold_of(
    s: &mut Stream,
    recent_from: u64,
    sum: &mut Counts,
    quantiles: &[f64],
    (margin, promote_margin): (f64, f64),
) -> Option<Thresholds> {
    s.too_thin = true;
    s.thresholded = false;
    // Requests bound the latency count from above, so counting them first skips the
    // merges that cannot reach 50 (the last minute) or 10 (the whole history): the thin
    // streams of a wide graph.
    let total = s.history_requests();
    let recent = total >= 50 && s.requests_since(recent_from) >= 50;
    if !recent && total < 10 {
        return None;
    }
    let mut sum_since = |from: u64| {
        (sum.n, sum.err) = (0, 0);
        sum.hist.clear();
        s.add_slots(|i| i >= from, sum);
        sum.hist.count()
    };
    let mut latencies = sum_since(if recent { recent_from } else { 0 });
    if recent && latencies < 50 {
        latencies = sum_since(0);
    }
    if latencies < 10 {
        return None;
    }
    (s.too_thin, s.thresholded) = (false, true);
    let len = quantiles.len().min(MAXQ);
    let mut th = Thresholds {
        len,
        ..Default::default()
    };
    sum.hist
        .quantiles_into(&quantiles[..len], &mut th.base[..len]);
    for i in 0..len {
        let b = th.base[i] as f64;
        th.cand[i] = (b * (1.0 + margin)) as u64;
        th.promote[i] = (b * (1.0 + promote_margin)) as u64;
    }
    Some(th)
}

#[cfg(test)]
mod tests;
