//! OTLP receivers: gRPC and HTTP endpoints that decode, normalize and queue telemetry for
//! analysis, answering clients as the OTLP specification says. Flow: `server` (accept,
//! connection limits) -> `grpc` / `http` (protocol, framing) -> `limits` (size, deadline,
//! decompression) -> `export` (decode, count, queue) -> the ingest `queue`.

pub mod config;
pub mod decode;
pub mod export;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod loadgen;

pub mod metrics;
pub mod queue;
pub mod reply;
pub mod server;

pub use config::ReceiverConfig;
pub use metrics::ReceiverMetrics;

use crate::clock::Clock;
use decode::DeltaConverter;
use export::{Exporter, Limits};
use queue::IngestQueue;
use server::ConnSettings;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the receivers could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("cannot listen for OTLP/{transport} on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: String,
        source: std::io::Error,
    },
}

/// The running receivers: their bound addresses (useful with port 0) and their tasks.
pub struct ReceiverHandles {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl ReceiverHandles {
    /// Resolves once both servers stopped after shutdown: they stopped accepting and their
    /// in-flight requests finished (or the shutdown timeout passed).
    pub async fn join(self) {
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "receiver task failed");
            }
        }
    }
}

/// Binds both receivers and serves until `shutdown` is cancelled.
pub async fn spawn(
    cfg: &ReceiverConfig,
    queue: Arc<IngestQueue>,
    metrics: Arc<ReceiverMetrics>,
    deltas: Arc<DeltaConverter>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<ReceiverHandles, ReceiverError> {
    let grpc = bind("grpc", &cfg.grpc_addr).await?;
    let http = bind("http", &cfg.http_addr).await?;
    let (grpc_addr, http_addr) = (
        local_addr(&grpc, "grpc", cfg)?,
        local_addr(&http, "http", cfg)?,
    );
    let ex = Arc::new(Exporter {
        queue,
        metrics,
        deltas,
        clock,
        limits: Limits {
            max_request_bytes: cfg.max_request_bytes,
            request_timeout: cfg.request_timeout,
            retry_after: cfg.retry_after,
        },
        inflight: Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent_requests)),
    });
    let s = settings(cfg);
    let grpc_ex = ex.clone();
    let grpc_service = move |req| grpc::handle(grpc_ex.clone(), req);
    let http_service = move |req| http::handle(ex.clone(), req);
    let tasks = vec![
        tokio::spawn(server::run(
            grpc,
            server::builder(&s, true),
            grpc_service,
            s,
            shutdown.clone(),
            "grpc",
        )),
        tokio::spawn(server::run(
            http,
            server::builder(&s, false),
            http_service,
            s,
            shutdown,
            "http",
        )),
    ];
    tracing::info!(grpc = %grpc_addr, http = %http_addr, "OTLP receivers listening");
    Ok(ReceiverHandles {
        grpc_addr,
        http_addr,
        tasks,
    })
}

fn settings(cfg: &ReceiverConfig) -> ConnSettings {
    ConnSettings {
        max_connections: cfg.max_connections,
        header_read_timeout: cfg.header_read_timeout,
        shutdown_timeout: cfg.shutdown_timeout,
        keepalive_interval: cfg.keepalive_interval,
        keepalive_timeout: cfg.keepalive_timeout,
        max_concurrent_streams: cfg.max_concurrent_streams,
    }
}

async fn bind(transport: &'static str, addr: &str) -> Result<TcpListener, ReceiverError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ReceiverError::Bind {
            transport,
            addr: addr.to_string(),
            source,
        })
}

fn local_addr(
    l: &TcpListener,
    transport: &'static str,
    cfg: &ReceiverConfig,
) -> Result<SocketAddr, ReceiverError> {
    l.local_addr().map_err(|source| ReceiverError::Bind {
        transport,
        addr: if transport == "grpc" {
            cfg.grpc_addr.clone()
        } else {
            cfg.http_addr.clone()
        },
        source,
    })
}
