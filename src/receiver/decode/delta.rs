//! Cumulative-to-delta conversion for histogram metric streams (metrics path). Keeps the
//! last cumulative point per stream in a bounded map (cap + TTL, overflow counted), so
//! that analysis only ever sees per-interval counts. Tolerates restarts (new start time or
//! counts going down), duplicates (client retries) and out-of-order points.

use super::metrics::MetricStats;
use crate::clock::{Clock, SystemClock};
use crate::model::UnixNanos;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

/// Histogram buckets in their exported layout.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Buckets {
    /// `counts[i]` for `(bounds[i-1], bounds[i]]`; `counts.len() == bounds.len() + 1`, or
    /// both empty for a count-only point.
    Explicit { bounds: Vec<f64>, counts: Vec<u64> },
    /// Exponential: `counts[k]` for index `offset + k` at `scale`, plus the zero bucket.
    Exponential {
        scale: i32,
        zero: u64,
        offset: i32,
        counts: Vec<u64>,
    },
}

/// One histogram data point reduced to what conversion and analysis need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub start: UnixNanos,
    pub time: UnixNanos,
    pub count: u64,
    pub max: Option<f64>,
    pub buckets: Buckets,
}

struct Stream {
    start: UnixNanos,
    time: UnixNanos,
    count: u64,
    /// Last cumulative buckets; `None` for delta streams (only duplicates are tracked).
    buckets: Option<Buckets>,
    seen_at: UnixNanos,
}

struct Inner {
    streams: HashMap<u64, Stream>,
    /// When conversion began: cumulative streams that started after it are new and their
    /// first point is a complete delta (the Collector's `initial_value: auto`).
    started_at: UnixNanos,
    last_sweep: UnixNanos,
    evicted: u64,
    overflowed: u64,
}

/// Bounded per-stream state converting cumulative histograms to deltas. `Send + Sync`;
/// shared by all receiver workers.
pub struct DeltaConverter {
    inner: Mutex<Inner>,
    max_streams: usize,
    ttl_ns: u64,
    hasher: ahash::RandomState,
}

impl DeltaConverter {
    /// At most `max_streams` streams are tracked; a stream unseen for `stream_ttl` is
    /// forgotten. Points of new streams beyond the cap are dropped and counted. Conversion
    /// starts now (wall clock): see [`DeltaConverter::with_start`].
    pub fn new(max_streams: usize, stream_ttl: Duration) -> Self {
        Self::with_start(max_streams, stream_ttl, SystemClock.now())
    }

    /// As [`DeltaConverter::new`], with the start time given (replay, tests). The first
    /// point of a cumulative stream whose start time is at or after `started_at` is taken
    /// whole; earlier streams' first points only set the baseline.
    pub fn with_start(max_streams: usize, stream_ttl: Duration, started_at: UnixNanos) -> Self {
        Self {
            inner: Mutex::new(Inner {
                streams: HashMap::new(),
                started_at,
                last_sweep: 0,
                evicted: 0,
                overflowed: 0,
            }),
            max_streams,
            ttl_ns: u64::try_from(stream_ttl.as_nanos()).unwrap_or(u64::MAX),
            hasher: ahash::RandomState::new(),
        }
    }

    /// Streams currently tracked.
    pub fn streams(&self) -> usize {
        self.inner.lock().streams.len()
    }

    /// Streams forgotten after their TTL, since creation.
    pub fn evicted_total(&self) -> u64 {
        self.inner.lock().evicted
    }

    /// Points dropped because the stream cap was reached, since creation.
    pub fn overflow_total(&self) -> u64 {
        self.inner.lock().overflowed
    }

    /// The hasher streams are keyed with (keyed per process).
    pub(crate) fn hasher(&self) -> &ahash::RandomState {
        &self.hasher
    }

    /// Passes a delta point through, dropping an exact repeat of the stream's last point.
    pub(crate) fn delta(
        &self,
        key: u64,
        s: Sample,
        now: UnixNanos,
        stats: &mut MetricStats,
    ) -> Option<Sample> {
        let mut inner = self.inner.lock();
        self.sweep(&mut inner, now);
        if let Some(st) = inner.streams.get_mut(&key) {
            st.seen_at = now;
            if st.start == s.start && st.time == s.time {
                stats.duplicates += 1;
                return None;
            }
            (st.start, st.time, st.count) = (s.start, s.time, s.count);
            return Some(s);
        }
        let stream = Stream {
            start: s.start,
            time: s.time,
            count: s.count,
            buckets: None,
            seen_at: now,
        };
        self.insert(&mut inner, key, stream, now, stats)
            .then_some(s)
    }

    /// Converts a cumulative point to the delta since the stream's previous point.
    pub(crate) fn cumulative(
        &self,
        key: u64,
        s: Sample,
        now: UnixNanos,
        stats: &mut MetricStats,
    ) -> Option<Sample> {
        let mut inner = self.inner.lock();
        let started_at = inner.started_at;
        self.sweep(&mut inner, now);
        let Some(st) = inner.streams.get_mut(&key) else {
            let fresh = s.start != 0 && s.start >= started_at;
            let stream = Stream {
                start: s.start,
                time: s.time,
                count: s.count,
                buckets: Some(s.buckets.clone()),
                seen_at: now,
            };
            if !self.insert(&mut inner, key, stream, now, stats) {
                return None;
            }
            if fresh {
                return Some(s);
            }
            stats.first_points += 1;
            return None;
        };
        st.seen_at = now;
        next_delta(st, s, stats)
    }

    fn insert(
        &self,
        inner: &mut Inner,
        key: u64,
        stream: Stream,
        now: UnixNanos,
        stats: &mut MetricStats,
    ) -> bool {
        if inner.streams.len() >= self.max_streams {
            inner.last_sweep = 0;
            self.sweep(inner, now);
        }
        if inner.streams.len() >= self.max_streams {
            inner.overflowed += 1;
            stats.stream_overflow += 1;
            return false;
        }
        inner.streams.insert(key, stream);
        true
    }

    /// Forgets streams unseen for the TTL; runs at most every quarter TTL.
    fn sweep(&self, inner: &mut Inner, now: UnixNanos) {
        if now.saturating_sub(inner.last_sweep) < self.ttl_ns / 4 {
            return;
        }
        inner.last_sweep = now;
        let before = inner.streams.len();
        let ttl = self.ttl_ns;
        inner
            .streams
            .retain(|_, st| now.saturating_sub(st.seen_at) < ttl);
        inner.evicted += (before - inner.streams.len()) as u64;
    }
}

/// The delta between a stream's stored cumulative state and a newer point; updates state.
fn next_delta(st: &mut Stream, s: Sample, stats: &mut MetricStats) -> Option<Sample> {
    let restarted = s.start != 0 && st.start != 0 && s.start > st.start;
    if !restarted && (s.start < st.start || s.time < st.time) {
        stats.out_of_order += 1;
        return None;
    }
    if !restarted && s.time == st.time {
        stats.duplicates += 1;
        return None;
    }
    let diff = match (&st.buckets, restarted) {
        (Some(prev), false) if s.count >= st.count => subtract(&s.buckets, prev),
        _ => None,
    };
    let (prev_time, prev_count) = (st.time, st.count);
    (st.start, st.time, st.count) = (s.start, s.time, s.count);
    st.buckets = Some(s.buckets.clone());
    let Some(buckets) = diff else {
        // A restart: the point counts everything since the new start.
        stats.resets += 1;
        return Some(s);
    };
    // `subtract` only succeeds when `s.count >= prev_count`.
    let count = s.count - prev_count;
    if count == 0 {
        return None;
    }
    Some(Sample {
        start: prev_time,
        time: s.time,
        count,
        max: s.max,
        buckets,
    })
}

/// `cur - prev` bucket by bucket, `None` when incompatible or any bucket went down.
fn subtract(cur: &Buckets, prev: &Buckets) -> Option<Buckets> {
    match (cur, prev) {
        (
            Buckets::Explicit { bounds, counts },
            Buckets::Explicit {
                bounds: pb,
                counts: pc,
            },
        ) if bounds == pb && counts.len() == pc.len() => {
            let counts = sub_all(counts, pc)?;
            Some(Buckets::Explicit {
                bounds: bounds.clone(),
                counts,
            })
        }
        (Buckets::Exponential { .. }, Buckets::Exponential { .. }) => subtract_exp(cur, prev),
        _ => None,
    }
}

fn sub_all(cur: &[u64], prev: &[u64]) -> Option<Vec<u64>> {
    cur.iter()
        .zip(prev)
        .map(|(c, p)| c.checked_sub(*p))
        .collect()
}

/// Exponential buckets: bring both to the coarser scale, align offsets, subtract.
fn subtract_exp(cur: &Buckets, prev: &Buckets) -> Option<Buckets> {
    let scale = exp_scale(cur).min(exp_scale(prev));
    let (cz, co, cc) = exp_at_scale(cur, scale);
    let (pz, po, pc) = exp_at_scale(prev, scale);
    let zero = cz.checked_sub(pz)?;
    let lo = if cc.is_empty() {
        po
    } else if pc.is_empty() {
        co
    } else {
        co.min(po)
    };
    let hi = (co + cc.len() as i64).max(po + pc.len() as i64);
    let mut counts = Vec::with_capacity((hi - lo).max(0) as usize);
    for idx in lo..hi {
        let get = |o: i64, c: &[u64]| {
            usize::try_from(idx - o)
                .ok()
                .and_then(|i| c.get(i))
                .copied()
        };
        let c = get(co, &cc).unwrap_or(0);
        let p = get(po, &pc).unwrap_or(0);
        counts.push(c.checked_sub(p)?);
    }
    Some(Buckets::Exponential {
        scale,
        zero,
        offset: i32::try_from(lo).ok()?,
        counts,
    })
}

fn exp_scale(b: &Buckets) -> i32 {
    match b {
        Buckets::Exponential { scale, .. } => *scale,
        Buckets::Explicit { .. } => 0,
    }
}

/// Re-buckets an exponential histogram to a coarser `scale`: index `i` maps to
/// `i >> (scale_from - scale)` (floor division, so negative indexes work too).
pub(crate) fn exp_at_scale(b: &Buckets, scale: i32) -> (u64, i64, Vec<u64>) {
    let Buckets::Exponential {
        scale: from,
        zero,
        offset,
        counts,
    } = b
    else {
        return (0, 0, Vec::new());
    };
    let shift = (from - scale).clamp(0, 63) as u32;
    if counts.is_empty() {
        return (*zero, i64::from(*offset) >> shift, Vec::new());
    }
    let first = i64::from(*offset) >> shift;
    let last = (i64::from(*offset) + counts.len() as i64 - 1) >> shift;
    let mut out = vec![0u64; (last - first + 1) as usize];
    for (k, c) in counts.iter().enumerate() {
        let idx = (i64::from(*offset) + k as i64) >> shift;
        out[(idx - first) as usize] += c;
    }
    (*zero, first, out)
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
