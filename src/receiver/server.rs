//! The connection loop both receivers share: accept under a connection cap, set
//! TCP_NODELAY, give a new connection a deadline for its first bytes (slow-client
//! defence), serve it with hyper, and on shutdown stop accepting, let in-flight requests
//! finish (HTTP/2 GOAWAY, HTTP/1 close after the current response) within a deadline.

use crate::receiver::reply::ReplyBody;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connection-level settings.
#[derive(Debug, Clone, Copy)]
pub struct ConnSettings {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub max_concurrent_streams: u32,
}

/// HTTP/2 flow-control windows large enough that one 512-span request (about 300 KB)
/// is not throttled by the 64 KiB defaults.
const STREAM_WINDOW: u32 = 4 << 20;
const CONN_WINDOW: u32 = 16 << 20;
const MAX_FRAME: u32 = 256 << 10;
const MAX_HEADER_LIST: u32 = 16 << 10;

/// A hyper connection builder with the limits of reliability.md trap 4: HTTP/1 header
/// timeout, HTTP/2 keepalive, stream and reset-flood caps.
pub fn builder(s: &ConnSettings, http2_only: bool) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(s.header_read_timeout)
        .max_headers(100);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(s.keepalive_interval)
        .keep_alive_timeout(s.keepalive_timeout)
        .max_concurrent_streams(s.max_concurrent_streams)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_pending_accept_reset_streams(Some(32))
        .max_local_error_reset_streams(Some(256));
    if http2_only {
        b = b.http2_only();
    }
    b
}

/// Serves `listener` until `shutdown`, then drains connections for at most
/// `shutdown_timeout`.
pub async fn run<S, F>(
    listener: TcpListener,
    builder: auto::Builder<TokioExecutor>,
    service: S,
    s: ConnSettings,
    shutdown: CancellationToken,
    name: &'static str,
) where
    S: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<ReplyBody>, Infallible>> + Send + 'static,
{
    let builder = Arc::new(builder);
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(s.max_connections));
    while let Some((stream, permit)) = accept(&listener, &slots, &shutdown, name).await {
        let _ = stream.set_nodelay(true);
        let conn = serve_conn(
            stream,
            builder.clone(),
            service.clone(),
            s.header_read_timeout,
            shutdown.clone(),
            permit,
        );
        tracker.spawn(conn);
    }
    drop(listener);
    tracker.close();
    tracing::info!(
        receiver = name,
        open = tracker.len(),
        "stopped accepting; finishing in-flight requests"
    );
    if tokio::time::timeout(s.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            receiver = name,
            open = tracker.len(),
            "connections still open after the shutdown timeout"
        );
    }
}

/// Next connection and its slot, or None once shutdown began.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    shutdown: &CancellationToken,
    name: &str,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return None,
            p = slots.clone().acquire_owned() => p.ok()?,
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => return Some((stream, permit)),
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(receiver = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_conn<S, F>(
    stream: TcpStream,
    builder: Arc<auto::Builder<TokioExecutor>>,
    service: S,
    first_bytes: Duration,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) where
    S: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<ReplyBody>, Infallible>> + Send + 'static,
{
    let mut probe = [0u8; 1];
    match tokio::time::timeout(first_bytes, stream.peek(&mut probe)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return,
    }
    let conn = builder.serve_connection(TokioIo::new(stream), hyper::service::service_fn(service));
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
