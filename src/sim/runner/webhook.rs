//! The runner's alert sinks: an Alertmanager-webhook-compatible listener that records
//! every alert the analyzer sends, with the time it arrived, plus a Slack incoming-webhook
//! endpoint (`/slack`) and a PagerDuty Events API v2 endpoint (`/pagerduty/v2/enqueue`,
//! answering 202 as PagerDuty does) whose requests are kept raw with their arrival time.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Alerts kept at most (older ones are dropped and counted).
const MAX_ALERTS: usize = 100_000;

/// One alert as received.
#[derive(Debug, Clone)]
pub struct ReceivedAlert {
    pub at: Instant,
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default)]
    alerts: Vec<AlertBody>,
}

#[derive(Debug, Deserialize)]
struct AlertBody {
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// One request to the Slack or PagerDuty endpoint, kept raw.
#[derive(Debug, Clone)]
pub struct RawNotification {
    pub sink: &'static str,
    pub at: Instant,
    pub body: String,
}

/// What the sink has received so far.
#[derive(Clone, Default)]
pub struct Inbox {
    alerts: Arc<Mutex<Vec<ReceivedAlert>>>,
    raw: Arc<Mutex<Vec<RawNotification>>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Inbox {
    /// Alerts received for one environment, in arrival order.
    pub fn for_environment(&self, environment: &str) -> Vec<ReceivedAlert> {
        self.alerts
            .lock()
            .iter()
            .filter(|a| {
                a.labels
                    .get("environment")
                    .is_some_and(|e| e == environment)
            })
            .cloned()
            .collect()
    }

    /// Every alert received.
    pub fn all(&self) -> Vec<ReceivedAlert> {
        self.alerts.lock().clone()
    }

    /// When `sink` first received a notification that mentions every one of `needles`
    /// (e.g. the environment, the service and the version), at or after `since`.
    pub fn first_mention(&self, sink: &str, needles: &[&str], since: Instant) -> Option<Instant> {
        self.raw
            .lock()
            .iter()
            .filter(|n| n.sink == sink && n.at >= since)
            .find(|n| needles.iter().all(|x| n.body.contains(x)))
            .map(|n| n.at)
    }

    fn push_raw(&self, sink: &'static str, body: String) {
        let mut all = self.raw.lock();
        if all.len() >= MAX_ALERTS {
            all.remove(0);
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        all.push(RawNotification {
            sink,
            at: Instant::now(),
            body,
        });
    }

    fn push(&self, a: ReceivedAlert) {
        let mut all = self.alerts.lock();
        if all.len() >= MAX_ALERTS {
            all.remove(0);
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        all.push(a);
    }
}

async fn receive(State(inbox): State<Inbox>, Json(p): Json<Payload>) -> &'static str {
    let at = Instant::now();
    for a in p.alerts {
        tracing::debug!(status = %a.status, labels = ?a.labels, "alert received");
        inbox.push(ReceivedAlert {
            at,
            status: a.status,
            labels: a.labels,
            annotations: a.annotations,
        });
    }
    "ok"
}

async fn slack(State(inbox): State<Inbox>, body: String) -> &'static str {
    inbox.push_raw("slack", body);
    "ok"
}

async fn pagerduty(
    State(inbox): State<Inbox>,
    body: String,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    inbox.push_raw("pagerduty", body);
    (
        axum::http::StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "success", "message": "Event processed"})),
    )
}

/// Starts the listener on `addr` (e.g. `127.0.0.1:0`); returns its address and inbox.
pub async fn start(addr: &str, cancel: CancellationToken) -> std::io::Result<(SocketAddr, Inbox)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let inbox = Inbox::default();
    let app = Router::new()
        .route("/", post(receive))
        .route("/slack", post(slack))
        .route("/pagerduty/v2/enqueue", post(pagerduty))
        .route("/pagerduty/v2/change/enqueue", post(pagerduty))
        .route("/{*path}", post(receive))
        .with_state(inbox.clone());
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "webhook listener failed");
        }
    });
    Ok((bound, inbox))
}
