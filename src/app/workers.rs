//! Analysis workers: take decoded batches off the ingest queue and record them into the
//! analyzer. On shutdown the queue is closed to new items and drained before they exit.

use crate::analysis::Analyzer;
use crate::clock::Clock;
use crate::receiver::queue::{IngestQueue, IngestReceiver};
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts `n` workers sharing the queue's consumer side. They stop once `drain` is
/// cancelled and every queued item has been recorded.
pub fn spawn(
    n: usize,
    queue: Arc<IngestQueue>,
    rx: IngestReceiver,
    analyzer: Arc<Analyzer>,
    clock: Arc<dyn Clock>,
    drain: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let rx = Arc::new(Mutex::new(rx));
    (0..n.max(1))
        .map(|_| {
            let (queue, rx, analyzer, clock, drain) = (
                queue.clone(),
                rx.clone(),
                analyzer.clone(),
                clock.clone(),
                drain.clone(),
            );
            tokio::spawn(async move { work(&queue, &rx, &analyzer, clock.as_ref(), &drain).await })
        })
        .collect()
}

async fn work(
    queue: &IngestQueue,
    rx: &Mutex<IngestReceiver>,
    analyzer: &Analyzer,
    clock: &dyn Clock,
    drain: &CancellationToken,
) {
    loop {
        let item = {
            let mut guard = rx.lock().await;
            tokio::select! {
                biased;
                item = guard.recv() => item,
                _ = drain.cancelled() => {
                    guard.close();
                    guard.recv().await
                }
            }
        };
        let Some(item) = item else { break };
        let n = item.len();
        analyzer.record(&item, clock.now());
        queue.release(n);
    }
}
