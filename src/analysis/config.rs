//! Configuration of the per-version state (section `state`): time slots, horizon, caps
//! and retirement of the series kept by [`super::series::SeriesStore`].

use crate::config::Validate;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Section `state`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StateConfig {
    /// Length of one time slot; queries round to whole slots. Default `1m`. Shorter slots
    /// answer short windows more exactly but cost a frozen histogram each (see
    /// docs/design/state.md for the memory figures behind the default).
    #[serde(with = "humantime_serde")]
    pub slot: Duration,
    /// How far back closed slots are kept; must cover the longest query window (the API's
    /// default window is 5 minutes). Default `5m`.
    #[serde(with = "humantime_serde")]
    pub horizon: Duration,
    /// A version that sends nothing for this long is retired with all its series. Default
    /// `15m` (the verdict API keeps listing deployments for at least 15 minutes).
    #[serde(with = "humantime_serde")]
    pub version_idle: Duration,
    /// Most series in total; new series beyond it go to the global overflow series.
    /// Default `100000`.
    pub max_series: usize,
    /// Most series per (environment, service); new ones beyond it go to the version's
    /// overflow series. Default `1000`.
    pub max_series_per_service: usize,
    /// Most (environment, service) pairs; data of new services beyond it goes to the global
    /// overflow service. Default `10000`.
    pub max_services: usize,
    /// Number of lock shards (rounded up to a power of two). Default `64`.
    pub shards: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            slot: Duration::from_secs(60),
            horizon: Duration::from_secs(300),
            version_idle: Duration::from_secs(900),
            max_series: 100_000,
            max_series_per_service: 1_000,
            max_services: 10_000,
            shards: 64,
        }
    }
}

impl StateConfig {
    /// Slot length in nanoseconds (at least 1 ms).
    pub fn slot_ns(&self) -> u64 {
        (self.slot.as_nanos() as u64).max(1_000_000)
    }

    /// Closed slots kept behind the open one.
    pub fn horizon_slots(&self) -> u64 {
        (self.horizon.as_nanos() as u64)
            .div_ceil(self.slot_ns())
            .max(1)
    }
}

impl Validate for StateConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        if self.slot < Duration::from_secs(1) {
            problems.push(format!("{path}.slot: must be at least 1s"));
        }
        if self.horizon < self.slot {
            problems.push(format!("{path}.horizon: must be at least one slot"));
        } else if self.horizon.as_nanos() / self.slot.as_nanos().max(1) > 3_600 {
            problems.push(format!(
                "{path}.horizon: at most 3600 slots (horizon / slot), memory grows with each"
            ));
        }
        if self.version_idle < self.slot {
            problems.push(format!("{path}.version_idle: must be at least one slot"));
        }
        for (field, v) in [
            ("max_series", self.max_series),
            ("max_series_per_service", self.max_series_per_service),
            ("max_services", self.max_services),
        ] {
            if v == 0 {
                problems.push(format!("{path}.{field}: must be at least 1"));
            }
        }
        if self.shards == 0 || self.shards > 4096 {
            problems.push(format!("{path}.shards: must be between 1 and 4096"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_all_reported() {
        let mut p = Vec::new();
        StateConfig::default().validate("state", &mut p);
        assert!(p.is_empty(), "{p:?}");
        let bad = StateConfig {
            slot: Duration::from_millis(10),
            horizon: Duration::from_millis(5),
            max_series: 0,
            shards: 0,
            ..Default::default()
        };
        bad.validate("state", &mut p);
        let all = p.join("\n");
        for f in [
            "state.slot",
            "state.horizon",
            "state.max_series",
            "state.shards",
        ] {
            assert!(all.contains(f), "{f} missing in {all}");
        }
    }

    #[test]
    fn horizon_counts_whole_slots() {
        let c = StateConfig {
            slot: Duration::from_secs(60),
            horizon: Duration::from_secs(150),
            ..Default::default()
        };
        assert_eq!(c.horizon_slots(), 3);
        assert_eq!(c.slot_ns(), 60_000_000_000);
    }
}
