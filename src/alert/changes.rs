//! Deployment markers: when a deployment first appears in the judge's list, PagerDuty
//! sinks with `change_events: true` get a change event. Announced deployments are stored,
//! so a restart announces nothing twice; a deployment that leaves the list is forgotten
//! (not during the warm-up).

use super::config::SinkType;
use super::outbox::{ChangeEvent, Notification};
use super::store::Record;
use super::{Alerting, Inner};
use crate::model::{DeploymentVerdict, UnixNanos};
use std::collections::BTreeSet;

impl Alerting {
    /// Store records and change-event notifications for deployments that started or
    /// left since the last update.
    pub(super) fn plan_changes(
        &self,
        g: &mut Inner,
        verdicts: &[DeploymentVerdict],
        now: UnixNanos,
    ) -> (Vec<Record>, Vec<Notification>) {
        let targets: Vec<&str> = self
            .sinks
            .iter()
            .filter(|s| s.kind == SinkType::Pagerduty && s.config.change_events)
            .map(|s| s.name.as_str())
            .collect();
        if targets.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let events: Vec<ChangeEvent> = verdicts.iter().map(|v| self.change_event(v)).collect();
        let current: BTreeSet<String> = events.iter().map(ChangeEvent::key).collect();
        let mut records = Vec::new();
        // During the warm-up a restarted judge may not list every deployment yet: forget
        // none, or they would be announced again.
        let gone: Vec<String> = if g.book.in_warmup(now) {
            Vec::new()
        } else {
            g.announced.difference(&current).cloned().collect()
        };
        for key in gone {
            g.announced.remove(&key);
            records.push(Record::Unannounce { key });
        }
        let mut notes = Vec::new();
        for ev in events {
            let key = ev.key();
            if g.announced.contains(&key) || g.announced.len() >= self.config.max_alerts {
                continue;
            }
            g.announced.insert(key.clone());
            records.push(Record::Announce { key });
            for sink in &targets {
                g.next_id += 1;
                notes.push(Notification {
                    id: g.next_id,
                    sink: sink.to_string(),
                    group: ev.key(),
                    alerts: Vec::new(),
                    created_at: now,
                    durable: true,
                    change: Some(ev.clone()),
                });
            }
        }
        (records, notes)
    }

    fn change_event(&self, v: &DeploymentVerdict) -> ChangeEvent {
        ChangeEvent {
            environment: v.environment.to_string(),
            service: v.service.to_string(),
            version: v.version.to_string(),
            baseline_version: v.baseline_version.as_ref().map(ToString::to_string),
            started_at: v.started_at.clone(),
            link: super::rules::deployment_link(
                &self.external_url,
                &v.environment,
                &v.service,
                &v.version,
            ),
        }
    }
}
