//! Time as an input: the analysis core is handed `now`, so tests are deterministic and
//! recorded telemetry can be replayed faster than real time with a clock that follows it.

use crate::model::UnixNanos;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Source of "now" for the loops that drive analysis, judging and alerting.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixNanos;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixNanos {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }
}

/// A clock moved by hand (tests) or by the data (replay).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(start: UnixNanos) -> Self {
        Self(AtomicU64::new(start))
    }

    /// Sets the time; never moves backwards.
    pub fn advance_to(&self, t: UnixNanos) {
        self.0.fetch_max(t, Ordering::AcqRel);
    }

    pub fn advance_by(&self, d: std::time::Duration) {
        self.0.fetch_add(d.as_nanos() as u64, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixNanos {
        self.0.load(Ordering::Acquire)
    }
}

/// Formats unix nanoseconds as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(t: UnixNanos) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(t as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let dt = dt
        .replace_nanosecond(dt.millisecond() as u32 * 1_000_000)
        .unwrap_or(dt);
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Parses RFC 3339 into unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<UnixNanos> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|d| d.unix_timestamp_nanos().max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_never_goes_back() {
        let c = ManualClock::new(100);
        c.advance_to(50);
        assert_eq!(c.now(), 100);
        c.advance_to(200);
        assert_eq!(c.now(), 200);
    }

    #[test]
    fn rfc3339_roundtrip() {
        let t = 1_700_000_000_123_000_000;
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
    }
}
