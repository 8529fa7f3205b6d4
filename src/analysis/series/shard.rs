//! One lock shard of the store: the services whose (environment, service) hash falls in
//! it, each with its versions and series, and the cap and overflow rules applied when a
//! new series appears.

use super::{Counters, OVERFLOW};
use crate::analysis::ring::{Ring, SlotIdx};
use crate::model::{Name, SpanKind, UnixNanos};
use hashbrown::HashTable;
use std::sync::atomic::Ordering;

/// Most version-specific overflow series a service may add beyond its cap; past them, its
/// data goes to the service-wide overflow series (version [`OVERFLOW`]).
pub(super) const OVERFLOW_SERIES_PER_SERVICE: usize = 16;

/// A series of one (version, operation, kind) of a service.
#[derive(Debug)]
pub(super) struct Series {
    pub hash: u64,
    pub version: Name,
    pub operation: Name,
    pub kind: SpanKind,
    pub overflow: bool,
    /// From spans.
    pub spans: Ring,
    /// From request-duration metrics; only used while `spans` holds no data.
    pub metrics: Option<Box<Ring>>,
}

impl Series {
    fn new(hash: u64, version: &Name, operation: &Name, kind: SpanKind, overflow: bool) -> Self {
        Self {
            hash,
            version: version.clone(),
            operation: operation.clone(),
            kind,
            overflow,
            spans: Ring::default(),
            metrics: None,
        }
    }

    /// The ring that speaks for this series: spans win whenever the series has any.
    pub fn source(&self) -> Option<&Ring> {
        if self.spans.has_data() {
            Some(&self.spans)
        } else {
            self.metrics.as_deref()
        }
    }

    /// Rolls both rings; a metrics ring left without data is freed.
    pub fn roll(&mut self, slot: SlotIdx, oldest_kept: SlotIdx) {
        self.spans.roll(slot, oldest_kept);
        if let Some(m) = &mut self.metrics {
            m.roll(slot, oldest_kept);
            if !m.has_data() {
                self.metrics = None;
            }
        }
    }

    pub fn has_data(&self) -> bool {
        self.spans.has_data() || self.metrics.as_ref().is_some_and(|m| m.has_data())
    }

    pub fn heap_bytes(&self) -> usize {
        self.spans.heap_bytes()
            + self
                .metrics
                .as_ref()
                .map_or(0, |m| m.heap_bytes() + std::mem::size_of::<Ring>())
    }
}

/// When a version of a service was seen (any span kind or metric).
#[derive(Debug, Clone)]
pub(super) struct VersionInfo {
    pub version: Name,
    pub first_seen: UnixNanos,
    pub last_seen: UnixNanos,
}

/// One (environment, service) with its versions and series.
#[derive(Debug)]
pub(super) struct ServiceEntry {
    pub hash: u64,
    pub environment: Name,
    pub service: Name,
    pub versions: Vec<VersionInfo>,
    /// Boxed: a series is about 200 bytes and a table of a few dozen keeps a third to a
    /// half of its slots empty (inline, the tables held about 6 MiB of empty room under a
    /// 1,000-service load).
    pub series: HashTable<Box<Series>>,
    /// Series counted against the per-service cap (overflow series are not).
    pub regular: usize,
    pub overflow: usize,
}

impl ServiceEntry {
    pub fn new(hash: u64, environment: &Name, service: &Name) -> Self {
        Self {
            hash,
            environment: environment.clone(),
            service: service.clone(),
            versions: Vec::new(),
            series: HashTable::new(),
            regular: 0,
            overflow: 0,
        }
    }

    /// Marks `version` seen at `now` and returns its name as stored (the overflow version
    /// once the service holds as many versions as its series cap allows).
    pub fn touch_version(&mut self, version: &Name, now: UnixNanos, max_versions: usize) -> Name {
        if let Some(v) = self.versions.iter_mut().find(|v| v.version == *version) {
            v.last_seen = v.last_seen.max(now);
            return v.version.clone();
        }
        let name = if self.versions.len() >= max_versions {
            Name::new_static(OVERFLOW)
        } else {
            version.clone()
        };
        if name != *version {
            return self.touch_version(&name, now, usize::MAX);
        }
        self.versions.push(VersionInfo {
            version: name.clone(),
            first_seen: now,
            last_seen: now,
        });
        name
    }
}

/// What identifies a series inside its service, with its precomputed hash.
pub(super) struct SeriesKey<'a> {
    pub hash: u64,
    pub version: &'a Name,
    pub operation: &'a Name,
    pub kind: SpanKind,
}

/// Limits applied when a series is created.
pub(super) struct Caps<'a> {
    pub max_series: usize,
    pub per_service: usize,
    pub counters: &'a Counters,
    pub hasher: &'a ahash::RandomState,
}

impl ServiceEntry {
    /// The series for `key`, created when new; when the per-service cap is reached, the
    /// overflow series that takes its data instead. `None` only when the store-wide cap is
    /// reached: the caller then records into the global overflow service.
    #[inline]
    pub fn series_mut(&mut self, key: &SeriesKey<'_>, caps: &Caps<'_>) -> Option<&mut Series> {
        let ServiceEntry {
            series,
            regular,
            overflow,
            ..
        } = self;
        let eq = |s: &Series| {
            s.kind == key.kind && s.operation == *key.operation && s.version == *key.version
        };
        match series.find_entry(key.hash, |s| eq(s)) {
            Ok(found) => Some(found.into_mut()),
            Err(absent) => {
                let table = absent.into_table();
                if *regular >= caps.per_service {
                    caps.counters
                        .capped_per_service
                        .fetch_add(1, Ordering::Relaxed);
                    return Some(overflow_series(table, overflow, key, caps));
                }
                if !caps.counters.reserve_series(caps.max_series) {
                    return None;
                }
                *regular += 1;
                let s = Series::new(key.hash, key.version, key.operation, key.kind, false);
                let s = table.insert_unique(key.hash, Box::new(s), |s| s.hash);
                Some(s.into_mut())
            }
        }
    }

    /// The overflow series of `version` and `kind` (created when missing).
    pub fn overflow_series_of(
        &mut self,
        version: &Name,
        kind: SpanKind,
        caps: &Caps<'_>,
    ) -> &mut Series {
        let op = Name::new_static(OVERFLOW);
        let key = SeriesKey {
            hash: 0,
            version,
            operation: &op,
            kind,
        };
        overflow_series(&mut self.series, &mut self.overflow, &key, caps)
    }

    /// Rolls every series to `slot`, drops series left without data and versions idle
    /// since `idle_before`. Returns the versions retired.
    pub fn tick(
        &mut self,
        slot: SlotIdx,
        oldest_kept: SlotIdx,
        idle_before: UnixNanos,
    ) -> Vec<Name> {
        let retired: Vec<Name> = self
            .versions
            .iter()
            .filter(|v| v.last_seen < idle_before)
            .map(|v| v.version.clone())
            .collect();
        self.versions.retain(|v| v.last_seen >= idle_before);
        let (mut regular, mut overflow) = (0, 0);
        self.series.retain(|s| {
            s.roll(slot, oldest_kept);
            let keep = s.has_data() && !retired.contains(&s.version);
            if keep {
                if s.overflow {
                    overflow += 1
                } else {
                    regular += 1
                }
            }
            keep
        });
        self.regular = regular;
        self.overflow = overflow;
        retired
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Heap bytes held by this service (series structs, histograms, version list).
    pub fn heap_bytes(&self) -> usize {
        self.series.capacity() * (std::mem::size_of::<Box<Series>>() + 1)
            + self.series.len() * std::mem::size_of::<Series>()
            + self.series.iter().map(|s| s.heap_bytes()).sum::<usize>()
            + self.versions.capacity() * std::mem::size_of::<VersionInfo>()
    }
}

/// The version's overflow series, or the service-wide one (version [`OVERFLOW`]) when the
/// service already holds [`OVERFLOW_SERIES_PER_SERVICE`] overflow series.
fn overflow_series<'t>(
    table: &'t mut HashTable<Box<Series>>,
    overflow: &mut usize,
    key: &SeriesKey<'_>,
    caps: &Caps<'_>,
) -> &'t mut Series {
    let op = Name::new_static(OVERFLOW);
    let wide = Name::new_static(OVERFLOW);
    let matches = |s: &Series, v: &Name| s.overflow && s.kind == key.kind && s.version == *v;
    let mut version = key.version;
    let mut hash = series_hash(caps.hasher, version, &op, key.kind);
    if table.find(hash, |s| matches(s, version)).is_none()
        && *overflow >= OVERFLOW_SERIES_PER_SERVICE
    {
        version = &wide;
        hash = series_hash(caps.hasher, version, &op, key.kind);
    }
    match table.entry(hash, |s| matches(s, version), |s| s.hash) {
        hashbrown::hash_table::Entry::Occupied(e) => e.into_mut(),
        hashbrown::hash_table::Entry::Vacant(v) => {
            *overflow += 1;
            caps.counters.series.fetch_add(1, Ordering::Relaxed);
            v.insert(Box::new(Series::new(hash, version, &op, key.kind, true)))
                .into_mut()
        }
    }
}

/// Hash of a series key within its service.
pub(super) fn series_hash(
    h: &ahash::RandomState,
    version: &Name,
    operation: &Name,
    kind: SpanKind,
) -> u64 {
    h.hash_one((version.as_str(), operation.as_str(), kind as u8))
}

/// Hash of an (environment, service) pair.
pub(super) fn service_hash(h: &ahash::RandomState, environment: &str, service: &str) -> u64 {
    h.hash_one((environment, service))
}
