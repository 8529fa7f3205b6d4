//! A scriptable HTTP receiver on 127.0.0.1:0 standing in for a webhook endpoint, a Slack
//! incoming webhook or the PagerDuty Events API v2: it records every request, answers
//! from a script (then 202), can be switched down (503), and for PagerDuty checks each
//! event against the documented rules (answering 400 when one is broken).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One scripted answer.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// 429 or 503 with `Retry-After: secs`.
    RetryAfter(u16, u64),
}

/// One request received and how it was answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub body: serde_json::Value,
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    down: AtomicBool,
    pagerduty: bool,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

impl Receiver {
    /// A receiver for webhook or Slack payloads.
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// A receiver that validates PagerDuty Events API v2 events.
    pub async fn pagerduty() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(pagerduty: bool) -> Self {
        let shared = Arc::new(Shared {
            pagerduty,
            ..Shared::default()
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    /// Answers the next requests with these replies, in order.
    pub fn script(&self, replies: &[Reply]) {
        self.shared
            .script
            .lock()
            .unwrap()
            .extend(replies.iter().copied());
    }

    /// Makes the receiver answer 503 (down) or normally (up).
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

async fn handle(State(s): State<Arc<Shared>>, uri: Uri, _h: HeaderMap, body: Bytes) -> Response {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let (status, retry_after) = if s.down.load(Ordering::SeqCst) {
        (503, None)
    } else if let Some(r) = s.script.lock().unwrap().pop_front() {
        match r {
            Reply::Status(c) => (c, None),
            Reply::RetryAfter(c, secs) => (c, Some(secs)),
        }
    } else if s.pagerduty && !valid_pagerduty(uri.path(), &body) {
        (400, None)
    } else {
        (202, None)
    };
    s.log.lock().unwrap().push(Received {
        at: Instant::now(),
        path: uri.path().to_string(),
        body,
        status,
    });
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match retry_after {
        Some(secs) => (code, [("retry-after", secs.to_string())], "{}").into_response(),
        None => (code, "{\"status\":\"success\"}").into_response(),
    }
}

/// The Events API v2 rules PagerDuty documents for `/v2/enqueue`.
pub fn valid_pagerduty(path: &str, e: &serde_json::Value) -> bool {
    let s = |p: &str| e.pointer(p).and_then(|v| v.as_str());
    let size_ok = serde_json::to_vec(e).is_ok_and(|b| b.len() <= 512 * 1024);
    let base = path == "/v2/enqueue"
        && size_ok
        && s("/routing_key").is_some_and(|k| !k.is_empty())
        && s("/dedup_key").is_some_and(|k| !k.is_empty() && k.len() <= 255);
    match s("/event_action") {
        Some("trigger") => {
            base && s("/payload/summary")
                .is_some_and(|x| !x.is_empty() && x.chars().count() <= 1024)
                && s("/payload/source").is_some_and(|x| !x.is_empty())
                && s("/payload/severity")
                    .is_some_and(|x| ["critical", "error", "warning", "info"].contains(&x))
        }
        Some("resolve") | Some("acknowledge") => base,
        _ => false,
    }
}
