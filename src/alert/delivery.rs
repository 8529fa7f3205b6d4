//! Delivery: one worker per sink takes the head of its queue, sends it, and on failure
//! retries with exponential backoff and jitter (honouring `Retry-After`) while keeping the
//! order of that sink's notifications. A slow or dead sink delays no other sink.

use super::sink::{classify, Outcome, RenderContext};
use super::store::Record;
use super::Alerting;
use crate::clock::Clock;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First retry delay; doubles per failure up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Exponential backoff with "equal jitter": half fixed, half random.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let exp = BACKOFF_BASE
            .saturating_mul(1u32 << self.failures.min(16))
            .min(BACKOFF_MAX);
        self.failures += 1;
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// At most `limit` requests in any `window` (PagerDuty: 120 per minute per routing key).
#[derive(Debug)]
pub struct RateLimiter {
    limit: Option<u32>,
    window: Duration,
    sent: VecDeque<Instant>,
}

impl RateLimiter {
    pub fn new(limit: Option<u32>, window: Duration) -> Self {
        Self {
            limit,
            window,
            sent: VecDeque::new(),
        }
    }

    /// How long to wait before the next request may go.
    pub fn wait(&mut self, now: Instant) -> Duration {
        let Some(limit) = self.limit else {
            return Duration::ZERO;
        };
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.sent.pop_front();
        }
        if self.sent.len() < limit as usize {
            return Duration::ZERO;
        }
        self.sent.front().map_or(Duration::ZERO, |t| {
            (*t + self.window).saturating_duration_since(now)
        })
    }

    /// Records a request sent at `now`.
    pub fn record(&mut self, now: Instant) {
        if self.limit.is_some() {
            self.sent.push_back(now);
        }
    }
}

impl Alerting {
    /// Starts one delivery worker per sink. On `shutdown` they keep delivering for
    /// `flush_timeout`, then stop; whatever is left stays in the store for the next start.
    pub fn spawn_delivery(
        self: &Arc<Self>,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let workers: Vec<_> = (0..self.sinks.len())
            .map(|i| tokio::spawn(worker(self.clone(), i, clock.clone(), shutdown.clone())))
            .collect();
        tokio::spawn(async move {
            for w in workers {
                let _ = w.await;
            }
        })
    }

    fn head(&self, i: usize) -> Option<Arc<super::outbox::Notification>> {
        self.inner.lock().queues[i].items.front().cloned()
    }

    /// Ends the head notification `id` of sink `i`: delivered, or given up.
    fn finish(&self, i: usize, id: u64, delivered_at: Option<u64>) {
        let mut g = self.inner.lock();
        let Some(n) = g.queues[i].finish(id, delivered_at) else {
            return;
        };
        if n.durable {
            // Not fsynced: a lost acknowledgement only means one duplicate delivery.
            let rec = Record::Done {
                sink: n.sink.clone(),
                id,
            };
            if g.store.append(&[rec], false).is_err() {
                g.store_errors += 1;
            }
        }
    }

    fn count(&self, i: usize, f: impl FnOnce(&mut super::outbox::SinkCounters)) {
        f(&mut self.inner.lock().queues[i].counters);
    }
}

/// Sleeps for `d` unless shutdown's flush deadline comes first; false when it did.
async fn pause(
    d: Duration,
    deadline: &mut Option<Instant>,
    shutdown: &CancellationToken,
    flush: Duration,
) -> bool {
    let until = Instant::now() + d;
    loop {
        if let Some(dl) = *deadline {
            tokio::time::sleep_until(until.min(dl)).await;
            return Instant::now() < dl;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return true,
            _ = shutdown.cancelled() => *deadline = Some(Instant::now() + flush),
        }
    }
}

async fn worker(al: Arc<Alerting>, i: usize, clock: Arc<dyn Clock>, shutdown: CancellationToken) {
    let spec = al.sinks[i].clone();
    let flush = al.config.flush_timeout;
    let max_age = al.config.max_notification_age.as_nanos() as u64;
    let client = match reqwest::Client::builder()
        .timeout(spec.config.timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(sink = %spec.name, error = %e, "cannot build an HTTP client; sink disabled");
            return;
        }
    };
    let mut backoff = Backoff::default();
    let mut limiter = RateLimiter::new(spec.config.rate(), spec.config.rate_window);
    let mut deadline: Option<Instant> = None;
    loop {
        if shutdown.is_cancelled() && deadline.is_none() {
            deadline = Some(Instant::now() + flush);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let Some(n) = al.head(i) else {
            if deadline.is_some() {
                break;
            }
            tokio::select! {
                _ = al.wake[i].notified() => {},
                _ = shutdown.cancelled() => {},
            }
            continue;
        };
        let now = clock.now();
        if now.saturating_sub(n.created_at) > max_age {
            tracing::warn!(sink = %spec.name, id = n.id, "notification expired undelivered");
            al.count(i, |c| c.expired += 1);
            al.finish(i, n.id, None);
            continue;
        }
        let wait = limiter.wait(Instant::now());
        if !wait.is_zero() {
            if !pause(wait, &mut deadline, &shutdown, flush).await {
                break;
            }
            continue;
        }
        limiter.record(Instant::now());
        let req = spec.render(
            &n,
            RenderContext {
                external_url: &al.external_url,
                now,
            },
        );
        let outcome = send(&client, &req).await;
        match outcome {
            Outcome::Delivered => {
                backoff.reset();
                al.count(i, |c| c.sent += 1);
                al.finish(i, n.id, Some(clock.now()));
                tracing::debug!(sink = %spec.name, id = n.id, alerts = n.alerts.len(), "notification delivered");
            }
            Outcome::Reject { error } => {
                backoff.reset();
                tracing::warn!(sink = %spec.name, id = n.id, %error, "notification rejected; not retried");
                al.count(i, |c| {
                    c.failed += 1;
                    c.rejected += 1;
                });
                al.inner.lock().queues[i].note_error(&error);
                al.finish(i, n.id, None);
            }
            Outcome::Retry { error, retry_after } => {
                let d = backoff.next_delay().max(retry_after.unwrap_or_default());
                tracing::warn!(sink = %spec.name, id = n.id, %error, retry_in_ms = d.as_millis() as u64, "notification failed; will retry");
                al.count(i, |c| {
                    c.failed += 1;
                    c.retried += 1;
                });
                al.inner.lock().queues[i].note_error(&error);
                if !pause(d, &mut deadline, &shutdown, flush).await {
                    break;
                }
            }
        }
    }
    let left = al.queued(i);
    if left > 0 {
        tracing::info!(sink = %spec.name, undelivered = left, "delivery stopped; the rest stays in the store");
    }
}

async fn send(client: &reqwest::Client, req: &super::sink::OutRequest) -> Outcome {
    match client.post(&req.url).json(&req.body).send().await {
        Ok(resp) => {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            classify(resp.status().as_u16(), retry_after.as_deref())
        }
        Err(e) => Outcome::Retry {
            error: format!("transport: {e}"),
            retry_after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!(first >= BACKOFF_BASE / 2 && first <= BACKOFF_BASE);
        for _ in 0..30 {
            assert!(b.next_delay() <= BACKOFF_MAX);
        }
        b.reset();
        assert!(b.next_delay() <= BACKOFF_BASE);
    }

    #[test]
    fn rate_limiter_allows_limit_per_window() {
        let mut r = RateLimiter::new(Some(2), Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(r.wait(t0).is_zero());
        r.record(t0);
        r.record(t0 + Duration::from_secs(1));
        assert_eq!(r.wait(t0 + Duration::from_secs(2)), Duration::from_secs(8));
        assert!(r.wait(t0 + Duration::from_secs(10)).is_zero());
    }
}
