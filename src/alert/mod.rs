//! Alerting: turns verdicts into alerts with a stable identity and delivers them through
//! a durable outbox to Alertmanager, PagerDuty, webhooks and Slack.
//!
//! Flow: judge tick -> [`Alerting::update`] -> [`rules`] (desired alerts) -> [`lifecycle`]
//! (transitions) -> [`store`] (fsynced) -> [`outbox`] (a bounded queue per sink) ->
//! [`delivery`] (one worker per sink, retries) -> [`sink`] (request formats).

pub mod config;
pub mod delivery;
pub mod lifecycle;
mod metrics;
pub mod outbox;
mod recover;
pub mod rules;
pub mod sink;
pub mod store;
pub mod view;

use config::{AlertingConfig, SinkType};
use lifecycle::{AlertRecord, AlertStatus, Book};
use outbox::{Notification, SinkQueue};
use parking_lot::Mutex;
use sink::SinkSpec;
use std::sync::Arc;
use store::{Record, Store};

pub use crate::model::UnixNanos;
pub use view::{AlertView, DeliveryView};

/// Failures opening the alerting.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("alerting.sinks[{0}]: no type")]
    SinkType(usize),
}

/// The alerting component: alert book, outbox and sink workers' shared state.
pub struct Alerting {
    sinks: Vec<SinkSpec>,
    external_url: String,
    config: AlertingConfig,
    started_at: UnixNanos,
    inner: Mutex<Inner>,
    /// Wakes sink `i`'s worker when something was queued.
    wake: Vec<tokio::sync::Notify>,
}

struct Inner {
    book: Book,
    queues: Vec<SinkQueue>,
    /// Sink name -> position in `queues`.
    index: std::collections::HashMap<String, usize>,
    store: Store,
    next_id: u64,
    store_errors: u64,
    refused: u64,
    truncated_bytes: u64,
}

impl Alerting {
    /// Opens (or recovers) the store and builds the sinks; `extra_webhooks` come from
    /// `--webhook URL`. Recovered notifications are queued again; firing alerts keep
    /// firing and are not resolved before `now + warmup`.
    pub fn open(
        cfg: &AlertingConfig,
        extra_webhooks: &[String],
        external_url: &str,
        now: UnixNanos,
    ) -> Result<Arc<Self>, AlertError> {
        let sinks = build_sinks(cfg, extra_webhooks)?;
        let (store, recovered) = Store::open(&cfg.store_path)?;
        let warmup_until = now + cfg.warmup.as_nanos() as u64;
        let mut book = Book::new(warmup_until, cfg.resolved_retention, cfg.max_alerts);
        let queues = sinks
            .iter()
            .map(|s| {
                // Alertmanager gets a refresh right away (it may have expired our alerts).
                let last = if s.kind == SinkType::Alertmanager {
                    0
                } else {
                    now
                };
                SinkQueue::new(s.config.queue_capacity, last)
            })
            .collect();
        let mut inner = Inner {
            book: Book::new(0, cfg.resolved_retention, cfg.max_alerts),
            queues,
            index: sinks
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.clone(), i))
                .collect(),
            store,
            next_id: 0,
            store_errors: 0,
            refused: 0,
            truncated_bytes: recovered.truncated_bytes,
        };
        let replay = recover::replay(recovered.records, &mut book, &sinks);
        inner.book = book;
        inner.next_id = replay.next_id;
        for n in replay.pending {
            inner.push(n);
        }
        let snapshot = inner.snapshot();
        inner.store.compact(&snapshot)?;
        tracing::info!(
            path = %cfg.store_path.display(),
            firing = inner.book.firing().count(),
            undelivered = replay.queued,
            dropped_unknown_sink = replay.unknown_sink,
            truncated_bytes = recovered.truncated_bytes,
            "alert store recovered"
        );
        let wake = sinks.iter().map(|_| tokio::sync::Notify::new()).collect();
        Ok(Arc::new(Self {
            sinks,
            external_url: external_url.trim_end_matches('/').to_string(),
            config: cfg.clone(),
            started_at: now,
            inner: Mutex::new(inner),
            wake,
        }))
    }

    /// Applies the judge's full current output (every verdict, live and recent, and every
    /// incident): fires, resolves, stores and queues notifications, plans re-notifications.
    pub fn update(
        &self,
        verdicts: &[crate::model::DeploymentVerdict],
        incidents: &[crate::model::Incident],
        now: UnixNanos,
    ) {
        let desired = rules::desired(
            verdicts,
            incidents,
            &self.config.severity,
            &self.external_url,
        );
        let mut g = self.inner.lock();
        let ch = g.book.apply(desired, now);
        g.refused += ch.refused;
        let mut records: Vec<Record> = ch.transitions.iter().cloned().map(Record::Alert).collect();
        for fp in &ch.forgotten {
            records.push(Record::Forget {
                fingerprint: fp.clone(),
            });
            g.queues
                .iter_mut()
                .for_each(|q| drop(q.delivery.remove(fp)));
        }
        let notes = self.plan_transitions(&mut g, &ch.transitions, now);
        records.extend(notes.iter().cloned().map(Record::Enqueue));
        if let Err(e) = g.store.append(&records, true) {
            g.store_errors += 1;
            tracing::error!(error = %e, "alert store append failed; notifications kept in memory only");
        }
        for n in notes {
            g.push(n);
        }
        self.plan_repeats(&mut g, now);
        self.plan_watchdog(&mut g, now);
        self.maybe_compact(&mut g);
        drop(g);
        self.wake.iter().for_each(tokio::sync::Notify::notify_one);
        for t in &ch.transitions {
            tracing::info!(alert = %t.labels.get("alertname").map_or("", String::as_str), group = %t.group, fingerprint = %t.fingerprint, status = t.status.as_str(), "alert transition");
        }
    }

    /// Durable notifications for the transitions, per sink (webhook groups also carry the
    /// group's other firing alerts, as Alertmanager's webhook does).
    fn plan_transitions(
        &self,
        g: &mut Inner,
        transitions: &[AlertRecord],
        now: UnixNanos,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        for s in &self.sinks {
            let mut alerts: Vec<AlertRecord> = transitions
                .iter()
                .filter(|a| s.config.route.matches(&a.labels))
                .cloned()
                .collect();
            if alerts.is_empty() {
                continue;
            }
            if s.kind == SinkType::Webhook {
                let groups: std::collections::BTreeSet<&str> =
                    alerts.iter().map(|a| a.group.as_str()).collect();
                let extra: Vec<AlertRecord> = g
                    .book
                    .firing()
                    .filter(|a| {
                        groups.contains(a.group.as_str()) && s.config.route.matches(&a.labels)
                    })
                    .filter(|a| !transitions.iter().any(|t| t.fingerprint == a.fingerprint))
                    .cloned()
                    .collect();
                alerts.extend(extra);
            }
            out.extend(outbox::plan(
                &s.name,
                s.kind,
                alerts,
                true,
                now,
                &mut g.next_id,
            ));
        }
        out
    }

    /// Re-sends firing alerts to sinks whose interval elapsed and whose queue is empty (a
    /// backlogged sink gets fresh state from the queued notifications anyway).
    fn plan_repeats(&self, g: &mut Inner, now: UnixNanos) {
        for (i, s) in self.sinks.iter().enumerate() {
            let due =
                now.saturating_sub(g.queues[i].last_repeat) >= s.config.repeat().as_nanos() as u64;
            if !due || !g.queues[i].items.is_empty() {
                continue;
            }
            g.queues[i].last_repeat = now;
            let alerts: Vec<AlertRecord> = g
                .book
                .firing()
                .filter(|a| s.config.route.matches(&a.labels))
                .cloned()
                .collect();
            for n in outbox::plan(&s.name, s.kind, alerts, false, now, &mut g.next_id) {
                g.push(n);
            }
        }
    }

    /// Sends the always-firing watchdog alert to every sink routed for it, each interval.
    fn plan_watchdog(&self, g: &mut Inner, now: UnixNanos) {
        if !self.config.watchdog.enabled {
            return;
        }
        let d = rules::watchdog(&self.external_url);
        let alert = AlertRecord {
            fingerprint: rules::fingerprint(&d.labels),
            labels: d.labels,
            annotations: d.annotations,
            group: d.group,
            status: AlertStatus::Firing,
            starts_at: self.started_at,
            ends_at: None,
        };
        let every = self.config.watchdog.interval.as_nanos() as u64;
        for (i, s) in self.sinks.iter().enumerate() {
            let due = g.queues[i]
                .last_watchdog
                .is_none_or(|t| now.saturating_sub(t) >= every);
            if !due || !s.config.route.matches(&alert.labels) {
                continue;
            }
            g.queues[i].last_watchdog = Some(now);
            for n in outbox::plan(
                &s.name,
                s.kind,
                vec![alert.clone()],
                false,
                now,
                &mut g.next_id,
            ) {
                g.push(n);
            }
        }
    }

    fn maybe_compact(&self, g: &mut Inner) {
        if g.store.bytes() < self.config.compact_bytes {
            return;
        }
        let snapshot = g.snapshot();
        if let Err(e) = g.store.compact(&snapshot) {
            g.store_errors += 1;
            tracing::error!(error = %e, "alert store compaction failed");
        }
    }

    /// The configured sinks (names and types), in worker order.
    pub fn sinks(&self) -> &[SinkSpec] {
        &self.sinks
    }

    /// The base URL used in links.
    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    /// Notifications still queued for a sink (for tests and shutdown logs).
    pub fn queued(&self, sink: usize) -> usize {
        self.inner
            .lock()
            .queues
            .get(sink)
            .map_or(0, |q| q.items.len())
    }
}

impl Inner {
    /// Queues a notification; one pushed out of a full queue is recorded as done.
    fn push(&mut self, n: Notification) {
        // Invariant: notifications are only planned for configured sinks (recovery
        // drops those of sinks no longer configured).
        let Some(&i) = self.index.get(&n.sink) else {
            return;
        };
        if let Some(old) = self.queues[i].push(Arc::new(n)) {
            tracing::warn!(sink = %old.sink, id = old.id, "alert queue full: oldest notification dropped");
            if old.durable {
                let _ = self.store.append(
                    &[Record::Done {
                        sink: old.sink.clone(),
                        id: old.id,
                    }],
                    false,
                );
            }
        }
    }

    /// Every alert and undelivered durable notification, for compaction.
    fn snapshot(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self.book.all().cloned().map(Record::Alert).collect();
        for q in &self.queues {
            out.extend(
                q.items
                    .iter()
                    .filter(|n| n.durable)
                    .map(|n| Record::Enqueue((**n).clone())),
            );
        }
        out
    }
}

fn build_sinks(
    cfg: &AlertingConfig,
    extra_webhooks: &[String],
) -> Result<Vec<SinkSpec>, AlertError> {
    let mut out = Vec::new();
    for (i, s) in cfg.sinks.iter().enumerate() {
        let kind = s.kind.ok_or(AlertError::SinkType(i))?;
        out.push(SinkSpec {
            name: config::sink_name(s, i),
            kind,
            config: s.clone(),
        });
    }
    for (i, url) in extra_webhooks.iter().enumerate() {
        let s = config::SinkConfig::webhook(url);
        out.push(SinkSpec {
            name: format!("webhook-cli-{i}"),
            kind: SinkType::Webhook,
            config: s,
        });
    }
    Ok(out)
}
