//! The hot path: spans and metric points into their series. A batch is walked in runs of
//! one resource (OTLP groups spans by resource), so a run locks its shard once, hashes its
//! service once and touches its version once; within a run a span whose operation and kind
//! repeat the previous span's reuses its hash. Nothing is allocated per span.

use super::shard::{series_hash, service_hash, Caps, Series, SeriesKey, ServiceEntry};
use super::{Counters, SeriesStore, ShardMap, OVERFLOW};
use crate::analysis::histogram::MAX_TRACKABLE_NS;
use crate::analysis::ring::SlotIdx;
use crate::model::{
    DurationMetric, MetricBatch, Name, Resource, SpanBatch, SpanKind, SpanRecord, UnixNanos,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The slot being written and the oldest one kept.
#[derive(Clone, Copy)]
struct At {
    now: UnixNanos,
    slot: SlotIdx,
    oldest: SlotIdx,
}

/// Counts gathered over a run and added to the shared counters once.
#[derive(Default)]
struct RunCounts {
    overflow_items: u64,
    clamped: u64,
    superseded: u64,
}

impl RunCounts {
    fn publish(&self, c: &Counters) {
        crate::telemetry::add_counts([
            (&c.overflow_items, self.overflow_items),
            (&c.clamped_values, self.clamped),
            (&c.metric_points_superseded, self.superseded),
        ]);
    }
}

/// Something recorded per resource run: a span or a metric point.
trait Item {
    fn resource(&self) -> &Arc<Resource>;
    fn operation(&self) -> &Name;
    fn kind(&self) -> SpanKind;
    fn record(&self, series: &mut Series, at: At, counts: &mut RunCounts);
}

impl Item for SpanRecord {
    fn resource(&self) -> &Arc<Resource> {
        &self.resource
    }
    fn operation(&self) -> &Name {
        &self.operation
    }
    fn kind(&self) -> SpanKind {
        self.kind
    }

    #[inline]
    fn record(&self, series: &mut Series, at: At, counts: &mut RunCounts) {
        let d = self.duration_ns();
        counts.clamped += d.is_some_and(|d| d > MAX_TRACKABLE_NS) as u64;
        series.spans.roll(at.slot, at.oldest);
        series.spans.record(d, self.error);
    }
}

impl Item for DurationMetric {
    fn resource(&self) -> &Arc<Resource> {
        &self.resource
    }
    fn operation(&self) -> &Name {
        &self.operation
    }
    fn kind(&self) -> SpanKind {
        self.kind
    }

    /// Spans win: a series whose span ring holds data ignores metric points.
    fn record(&self, series: &mut Series, at: At, counts: &mut RunCounts) {
        series.roll(at.slot, at.oldest);
        if series.spans.has_data() {
            counts.superseded += 1;
            return;
        }
        counts.clamped += self
            .buckets
            .iter()
            .filter(|(ns, _)| *ns > MAX_TRACKABLE_NS)
            .map(|(_, n)| n)
            .sum::<u64>();
        let ring = series.metrics.get_or_insert_with(Default::default);
        ring.roll(at.slot, at.oldest);
        let errors = if self.error { self.count } else { 0 };
        ring.record_many(self.count, errors, &self.buckets);
    }
}

impl SeriesStore {
    /// Records spans of every kind; each counts one request of its series at `now`'s slot.
    pub fn record_spans(&self, batch: &SpanBatch, now: UnixNanos) {
        let n = batch.spans.len() as u64;
        self.counters.spans.fetch_add(n, Ordering::Relaxed);
        self.record_items(&batch.spans, now);
    }

    /// Records request-duration metric deltas into the series of their (version, operation,
    /// kind), unless spans already speak for that series.
    pub fn record_metrics(&self, batch: &MetricBatch, now: UnixNanos) {
        let n = batch.points.len() as u64;
        self.counters.metric_points.fetch_add(n, Ordering::Relaxed);
        self.record_items(&batch.points, now);
    }

    fn record_items<T: Item>(&self, items: &[T], now: UnixNanos) {
        let slot = self.slot_of(now);
        let at = At {
            now,
            slot,
            oldest: self.oldest_kept(slot),
        };
        let mut counts = RunCounts::default();
        for run in crate::model::resource_runs(items, |item| item.resource()) {
            self.record_run(run, at, &mut counts);
        }
        counts.publish(&self.counters);
    }

    /// Records a run of items of one resource under one shard lock.
    fn record_run<T: Item>(&self, run: &[T], at: At, counts: &mut RunCounts) {
        let res = run[0].resource();
        let h = service_hash(&self.hasher, &res.environment, &res.service);
        let mut map = self.shard(h).lock();
        match self.service_entry(&mut map, h, res) {
            Some(entry) => self.record_into(entry, &res.version, run, at, counts),
            None => {
                counts.overflow_items += run.len() as u64;
                self.record_global(run, at, counts);
            }
        }
    }

    /// The entry of a service, created under the `max_services` cap; None past it.
    fn service_entry<'m>(
        &self,
        map: &'m mut ShardMap,
        h: u64,
        res: &Resource,
    ) -> Option<&'m mut ServiceEntry> {
        let eq = |e: &ServiceEntry| e.service == res.service && e.environment == res.environment;
        match map.find_entry(h, eq) {
            Ok(found) => Some(found.into_mut()),
            Err(absent) => {
                let reserved = self
                    .counters
                    .services
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < self.cfg.max_services).then_some(n + 1)
                    })
                    .is_ok();
                reserved.then(|| {
                    let e = ServiceEntry::new(h, &res.environment, &res.service);
                    absent
                        .into_table()
                        .insert_unique(h, e, |e| e.hash)
                        .into_mut()
                })
            }
        }
    }

    fn caps(&self) -> Caps<'_> {
        Caps {
            max_series: self.cfg.max_series,
            per_service: self.cfg.max_series_per_service,
            counters: &self.counters,
            hasher: &self.hasher,
        }
    }

    /// Records a run into a service's series, spilling to the global overflow past the
    /// store-wide series cap.
    fn record_into<T: Item>(
        &self,
        entry: &mut ServiceEntry,
        version: &Name,
        run: &[T],
        at: At,
        counts: &mut RunCounts,
    ) {
        let version = entry.touch_version(version, at.now, self.cfg.max_series_per_service);
        let caps = self.caps();
        let mut last: Option<(&Name, SpanKind, u64)> = None;
        for item in run {
            let (op, kind) = (item.operation(), item.kind());
            let hash = match last {
                Some((o, k, h)) if k == kind && o == op => h,
                _ => series_hash(&self.hasher, &version, op, kind),
            };
            last = Some((op, kind, hash));
            let key = SeriesKey {
                hash,
                version: &version,
                operation: op,
                kind,
            };
            match entry.series_mut(&key, &caps) {
                Some(series) => {
                    counts.overflow_items += series.overflow as u64;
                    item.record(series, at, counts);
                }
                None => {
                    counts.overflow_items += 1;
                    self.record_global(std::slice::from_ref(item), at, counts);
                }
            }
        }
    }

    /// Records items into the global overflow service (locked after any shard lock).
    fn record_global<T: Item>(&self, run: &[T], at: At, counts: &mut RunCounts) {
        let mut global = self.global_overflow.lock();
        let overflow = Name::new_static(OVERFLOW);
        global.touch_version(&overflow, at.now, usize::MAX);
        let caps = self.caps();
        for item in run {
            let series = global.overflow_series_of(&overflow, item.kind(), &caps);
            item.record(series, at, counts);
        }
    }
}
