//! Recovery: replays the store's records into the alert book and the list of
//! notifications still undelivered, in their original order.

use super::lifecycle::Book;
use super::outbox::Notification;
use super::sink::SinkSpec;
use super::store::Record;
use std::collections::BTreeMap;

/// What replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Undelivered notifications for configured sinks, oldest first.
    pub pending: Vec<Notification>,
    /// Highest notification id ever stored (new ids continue after it).
    pub next_id: u64,
    pub queued: usize,
    /// Undelivered notifications of sinks no longer configured (dropped).
    pub unknown_sink: usize,
}

/// Applies records in order: later alert states replace earlier ones, `Done` cancels its
/// `Enqueue`.
pub fn replay(records: Vec<Record>, book: &mut Book, sinks: &[SinkSpec]) -> Replay {
    let mut pending: BTreeMap<(u64, String), Notification> = BTreeMap::new();
    let mut r = Replay::default();
    let flat = records.into_iter().flat_map(|rec| match rec {
        Record::Batch { records } => records,
        one => vec![one],
    });
    for rec in flat {
        match rec {
            Record::Alert(a) => book.restore(a),
            Record::Forget { fingerprint } => book.forget(&fingerprint),
            Record::Enqueue(n) => {
                r.next_id = r.next_id.max(n.id);
                pending.insert((n.id, n.sink.clone()), n);
            }
            Record::Done { sink, id } => {
                r.next_id = r.next_id.max(id);
                pending.remove(&(id, sink));
            }
            // Batches are written flat (one level), see Store::append.
            Record::Batch { .. } => {}
        }
    }
    for (_, n) in pending {
        if sinks.iter().any(|s| s.name == n.sink) {
            r.pending.push(n);
        } else {
            r.unknown_sink += 1;
        }
    }
    r.queued = r.pending.len();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::config::{SinkConfig, SinkType};

    fn note(id: u64, sink: &str) -> Notification {
        Notification {
            id,
            sink: sink.into(),
            group: "g".into(),
            alerts: vec![],
            created_at: 0,
            durable: true,
        }
    }

    #[test]
    fn done_cancels_enqueue_and_unknown_sinks_are_dropped() {
        let sinks = vec![SinkSpec {
            name: "a".into(),
            kind: SinkType::Webhook,
            config: SinkConfig::webhook("http://x"),
        }];
        let recs = vec![
            Record::Batch {
                records: vec![Record::Enqueue(note(1, "a")), Record::Enqueue(note(2, "a"))],
            },
            Record::Enqueue(note(3, "gone")),
            Record::Done {
                sink: "a".into(),
                id: 1,
            },
        ];
        let mut book = Book::new(0, std::time::Duration::from_secs(1), 10);
        let r = replay(recs, &mut book, &sinks);
        assert_eq!(r.pending.iter().map(|n| n.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!((r.next_id, r.unknown_sink), (3, 1));
    }
}
