//! Lifecycle: the book of alerts and their transitions. Each judge tick the desired set
//! from [`super::rules`] is applied: new conditions fire, vanished ones resolve (but not
//! during the warm-up after a restart), long-resolved ones are forgotten.

use super::rules::{Desired, Labels};
use crate::model::UnixNanos;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether an alert fires.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// The state of one alert, as stored and as carried by notifications.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertRecord {
    /// [`super::rules::fingerprint`] of `labels`.
    pub fingerprint: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// Notification group (the culprit deployment).
    pub group: String,
    pub status: AlertStatus,
    pub starts_at: UnixNanos,
    /// When it resolved.
    pub ends_at: Option<UnixNanos>,
}

impl AlertRecord {
    pub fn firing(&self) -> bool {
        self.status == AlertStatus::Firing
    }
}

/// What one application of the desired set changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Alerts that started firing or resolved (to store and notify).
    pub transitions: Vec<AlertRecord>,
    /// Fingerprints forgotten (resolved longer ago than the retention).
    pub forgotten: Vec<String>,
    /// New alerts refused because the book is full.
    pub refused: u64,
}

/// Every alert known: firing, and resolved within the retention.
#[derive(Debug)]
pub struct Book {
    alerts: BTreeMap<String, AlertRecord>,
    /// No resolve before this time (set at open: now + warm-up).
    warmup_until: UnixNanos,
    retention: u64,
    cap: usize,
}

impl Book {
    pub fn new(warmup_until: UnixNanos, retention: std::time::Duration, cap: usize) -> Self {
        Self {
            alerts: BTreeMap::new(),
            warmup_until,
            retention: retention.as_nanos() as u64,
            cap,
        }
    }

    /// Restores a stored record (later records replace earlier ones).
    pub fn restore(&mut self, r: AlertRecord) {
        self.alerts.insert(r.fingerprint.clone(), r);
    }

    pub fn forget(&mut self, fingerprint: &str) {
        self.alerts.remove(fingerprint);
    }

    pub fn get(&self, fingerprint: &str) -> Option<&AlertRecord> {
        self.alerts.get(fingerprint)
    }

    pub fn all(&self) -> impl Iterator<Item = &AlertRecord> {
        self.alerts.values()
    }

    pub fn firing(&self) -> impl Iterator<Item = &AlertRecord> {
        self.alerts.values().filter(|a| a.firing())
    }

    /// Whether resolves are held back at `now`.
    pub fn in_warmup(&self, now: UnixNanos) -> bool {
        now < self.warmup_until
    }

    /// Applies the desired set at `now` and returns the transitions.
    pub fn apply(&mut self, desired: BTreeMap<String, Desired>, now: UnixNanos) -> Changes {
        let mut ch = Changes::default();
        self.resolve_vanished(&desired, now, &mut ch);
        for (fp, d) in desired {
            self.fire(fp, d, now, &mut ch);
        }
        self.forget_old(now, &mut ch);
        ch
    }

    fn fire(&mut self, fp: String, d: Desired, now: UnixNanos, ch: &mut Changes) {
        match self.alerts.get_mut(&fp) {
            // Still firing: keep the newest words, but that is no transition.
            Some(a) if a.firing() => a.annotations = d.annotations,
            known => {
                if known.is_none() && self.alerts.len() >= self.cap {
                    ch.refused += 1;
                    return;
                }
                let rec = AlertRecord {
                    fingerprint: fp.clone(),
                    labels: d.labels,
                    annotations: d.annotations,
                    group: d.group,
                    status: AlertStatus::Firing,
                    starts_at: now,
                    ends_at: None,
                };
                ch.transitions.push(rec.clone());
                self.alerts.insert(fp, rec);
            }
        }
    }

    fn resolve_vanished(
        &mut self,
        desired: &BTreeMap<String, Desired>,
        now: UnixNanos,
        ch: &mut Changes,
    ) {
        if self.in_warmup(now) {
            return;
        }
        for (fp, a) in self.alerts.iter_mut() {
            if a.firing() && !desired.contains_key(fp) {
                a.status = AlertStatus::Resolved;
                a.ends_at = Some(now);
                ch.transitions.push(a.clone());
            }
        }
    }

    fn forget_old(&mut self, now: UnixNanos, ch: &mut Changes) {
        let retention = self.retention;
        let old: Vec<String> = self
            .alerts
            .values()
            .filter(|a| a.ends_at.is_some_and(|e| now.saturating_sub(e) > retention))
            .map(|a| a.fingerprint.clone())
            .collect();
        for fp in old {
            self.alerts.remove(&fp);
            ch.forgotten.push(fp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn want(names: &[&str]) -> BTreeMap<String, Desired> {
        names
            .iter()
            .map(|n| {
                let mut labels = Labels::new();
                labels.insert("alertname".into(), n.to_string());
                let d = Desired {
                    labels,
                    annotations: Labels::new(),
                    group: "g".into(),
                };
                (n.to_string(), d)
            })
            .collect()
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn fires_once_resolves_once_and_refires() {
        let mut b = Book::new(0, Duration::from_secs(60), 10);
        assert_eq!(b.apply(want(&["a"]), S).transitions.len(), 1);
        assert!(b.apply(want(&["a"]), 2 * S).transitions.is_empty());
        let ch = b.apply(want(&[]), 3 * S);
        assert_eq!(ch.transitions[0].status, AlertStatus::Resolved);
        assert_eq!(ch.transitions[0].ends_at, Some(3 * S));
        let ch = b.apply(want(&["a"]), 4 * S);
        assert_eq!(
            (ch.transitions[0].status, ch.transitions[0].starts_at),
            (AlertStatus::Firing, 4 * S)
        );
    }

    #[test]
    fn no_resolve_during_warmup_then_forget_after_retention() {
        let mut b = Book::new(10 * S, Duration::from_secs(5), 10);
        b.apply(want(&["a"]), S);
        assert!(b.apply(want(&[]), 9 * S).transitions.is_empty());
        assert_eq!(b.apply(want(&[]), 10 * S).transitions.len(), 1);
        assert_eq!(b.apply(want(&[]), 16 * S).forgotten, vec!["a".to_string()]);
    }

    #[test]
    fn refuses_new_alerts_past_the_cap() {
        let mut b = Book::new(0, Duration::from_secs(5), 1);
        let ch = b.apply(want(&["a", "b"]), S);
        assert_eq!((ch.transitions.len(), ch.refused), (1, 1));
    }
}
