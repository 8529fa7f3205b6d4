//! The outbox: notifications planned from alert transitions (one HTTP request each), held
//! in a bounded queue per sink until its worker delivers them, with per-sink counters and
//! the delivery state of every alert at every sink (for the API).

use super::config::SinkType;
use super::lifecycle::{AlertRecord, AlertStatus};
use crate::model::UnixNanos;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// One request's worth of alerts for one sink.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    /// Unique per store (never reused).
    pub id: u64,
    pub sink: String,
    pub group: String,
    /// Snapshots of the alerts carried.
    pub alerts: Vec<AlertRecord>,
    pub created_at: UnixNanos,
    /// Stored in the log (transitions); re-notifications and the watchdog are not, as
    /// they are planned again after a restart.
    pub durable: bool,
}

/// Splits alerts into request-sized groups for a sink type: Alertmanager takes them all
/// at once, PagerDuty one event per alert, webhook and Slack one per deployment group.
pub fn batch(kind: SinkType, alerts: Vec<AlertRecord>) -> Vec<(String, Vec<AlertRecord>)> {
    match kind {
        SinkType::Alertmanager if !alerts.is_empty() => vec![("*".to_string(), alerts)],
        SinkType::Alertmanager => Vec::new(),
        SinkType::Pagerduty => alerts
            .into_iter()
            .map(|a| (a.group.clone(), vec![a]))
            .collect(),
        SinkType::Webhook | SinkType::Slack => {
            let mut groups: BTreeMap<String, Vec<AlertRecord>> = BTreeMap::new();
            for a in alerts {
                groups.entry(a.group.clone()).or_default().push(a);
            }
            groups.into_iter().collect()
        }
    }
}

/// Counters of one sink, rendered into `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SinkCounters {
    /// Requests accepted by the receiver.
    pub sent: u64,
    /// Requests that failed (any reason).
    pub failed: u64,
    /// Failed requests that will be retried.
    pub retried: u64,
    /// Notifications given up because the receiver rejected them (4xx but 408/429).
    pub rejected: u64,
    /// Notifications dropped because the queue was full.
    pub overflowed: u64,
    /// Notifications given up because they grew older than `max_notification_age`.
    pub expired: u64,
}

/// Where an alert stands at one sink.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Delivery {
    /// Status of the alert last accepted by the sink.
    pub delivered: Option<AlertStatus>,
    pub delivered_at: Option<UnixNanos>,
    /// Notifications carrying this alert still queued.
    pub pending: u32,
    pub last_error: Option<String>,
}

/// The bounded queue of one sink.
#[derive(Debug)]
pub struct SinkQueue {
    pub items: VecDeque<Arc<Notification>>,
    pub capacity: usize,
    pub counters: SinkCounters,
    /// Per alert fingerprint.
    pub delivery: HashMap<String, Delivery>,
    /// When this sink last got re-notifications / the watchdog.
    pub last_repeat: UnixNanos,
    pub last_watchdog: Option<UnixNanos>,
}

impl SinkQueue {
    pub fn new(capacity: usize, last_repeat: UnixNanos) -> Self {
        Self {
            items: VecDeque::new(),
            capacity,
            counters: SinkCounters::default(),
            delivery: HashMap::new(),
            last_repeat,
            last_watchdog: None,
        }
    }

    /// Queues a notification; when full, drops the oldest and returns it.
    pub fn push(&mut self, n: Arc<Notification>) -> Option<Arc<Notification>> {
        for a in &n.alerts {
            self.delivery
                .entry(a.fingerprint.clone())
                .or_default()
                .pending += 1;
        }
        self.items.push_back(n);
        if self.items.len() > self.capacity {
            let old = self.items.pop_front()?;
            self.counters.overflowed += 1;
            self.unpend(&old);
            return Some(old);
        }
        None
    }

    /// Removes the head if it is notification `id`, and marks its alerts delivered when
    /// `delivered_at` is given.
    pub fn finish(
        &mut self,
        id: u64,
        delivered_at: Option<UnixNanos>,
    ) -> Option<Arc<Notification>> {
        if self.items.front().map(|n| n.id) != Some(id) {
            return None;
        }
        let n = self.items.pop_front()?;
        self.unpend(&n);
        if let Some(t) = delivered_at {
            for a in &n.alerts {
                let d = self.delivery.entry(a.fingerprint.clone()).or_default();
                d.delivered = Some(a.status);
                d.delivered_at = Some(t);
                d.last_error = None;
            }
        }
        Some(n)
    }

    /// Notes a failed attempt on the alerts of the head notification.
    pub fn note_error(&mut self, error: &str) {
        let Some(n) = self.items.front().cloned() else {
            return;
        };
        for a in &n.alerts {
            self.delivery
                .entry(a.fingerprint.clone())
                .or_default()
                .last_error = Some(error.to_string());
        }
    }

    fn unpend(&mut self, n: &Notification) {
        for a in &n.alerts {
            if let Some(d) = self.delivery.get_mut(&a.fingerprint) {
                d.pending = d.pending.saturating_sub(1);
            }
        }
    }

    /// Whether a notification carrying this alert is queued.
    pub fn has_pending(&self, fingerprint: &str) -> bool {
        self.delivery
            .get(fingerprint)
            .is_some_and(|d| d.pending > 0)
    }

    /// Age of the oldest queued notification.
    pub fn oldest_age(&self, now: UnixNanos) -> u64 {
        self.items
            .front()
            .map_or(0, |n| now.saturating_sub(n.created_at))
    }
}

/// Builds the notifications for one sink from alerts, numbering them from `next_id`.
pub fn plan(
    sink: &str,
    kind: SinkType,
    alerts: Vec<AlertRecord>,
    durable: bool,
    now: UnixNanos,
    next_id: &mut u64,
) -> Vec<Notification> {
    batch(kind, alerts)
        .into_iter()
        .map(|(group, alerts)| {
            *next_id += 1;
            Notification {
                id: *next_id,
                sink: sink.to_string(),
                group,
                alerts,
                created_at: now,
                durable,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(fp: &str, group: &str) -> AlertRecord {
        AlertRecord {
            fingerprint: fp.into(),
            labels: Default::default(),
            annotations: Default::default(),
            group: group.into(),
            status: AlertStatus::Firing,
            starts_at: 1,
            ends_at: None,
        }
    }

    #[test]
    fn batches_by_sink_type() {
        let a = vec![alert("1", "g1"), alert("2", "g1"), alert("3", "g2")];
        assert_eq!(batch(SinkType::Alertmanager, a.clone()).len(), 1);
        assert_eq!(batch(SinkType::Pagerduty, a.clone()).len(), 3);
        let w = batch(SinkType::Webhook, a);
        assert_eq!((w.len(), w[0].1.len()), (2, 2));
    }

    #[test]
    fn queue_is_bounded_and_tracks_pending_and_delivery() {
        let mut q = SinkQueue::new(2, 0);
        let mut id = 0;
        let mut ns = plan(
            "s",
            SinkType::Pagerduty,
            vec![alert("1", "g"), alert("2", "g"), alert("3", "g")],
            true,
            5,
            &mut id,
        );
        ns.reverse();
        assert!(q.push(Arc::new(ns.pop().unwrap())).is_none());
        assert!(q.push(Arc::new(ns.pop().unwrap())).is_none());
        let dropped = q.push(Arc::new(ns.pop().unwrap())).unwrap();
        assert_eq!((dropped.id, q.counters.overflowed), (1, 1));
        assert!(!q.has_pending("1") && q.has_pending("2"));
        assert!(q.finish(3, Some(9)).is_none(), "only the head can finish");
        q.finish(2, Some(9)).unwrap();
        assert_eq!(q.delivery["2"].delivered, Some(AlertStatus::Firing));
        assert_eq!(q.oldest_age(15), 10);
    }
}
