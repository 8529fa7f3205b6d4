//! `verdict loadgen`: the end-to-end load runner. It pre-encodes realistic 512-span trace
//! batches, sends them as raw bytes over several gRPC connections for a while, retries
//! refused requests (as OTLP exporters do) and reports accepted spans per second.

pub mod batch;
pub mod client;
pub mod cycle;

use batch::Shape;
use bytes::Bytes;
use client::{RawOtlpClient, SendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `verdict loadgen` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// OTLP/gRPC endpoint to load.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    pub target: String,
    /// How long to send.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// gRPC connections (HTTP/2), each with its own TCP connection.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 4)]
    pub inflight: usize,
    /// Distinct services.
    #[arg(long, default_value_t = 1000)]
    pub services: usize,
    /// Versions per service.
    #[arg(long, default_value_t = 3)]
    pub versions: usize,
    /// Operations per service.
    #[arg(long, default_value_t = 10)]
    pub operations: usize,
    /// Spans per request.
    #[arg(long, default_value_t = 512)]
    pub batch_spans: usize,
    /// Distinct pre-encoded requests cycled through (each send renumbers its trace ids, so
    /// no request repeats an earlier one's traces).
    #[arg(long, default_value_t = 64)]
    pub distinct_batches: usize,
    /// `deployment.environment.name` of the generated resources.
    #[arg(long, default_value = "bench")]
    pub environment: String,
    /// Fraction of failed calls.
    #[arg(long, default_value_t = 0.01)]
    pub error_rate: f64,
    /// Callees per service: 0 (default) lets any service call any other, the worst case
    /// for the graph and the judge; K gives each service K fixed callees.
    #[arg(long, default_value_t = 0)]
    pub fanout: usize,
    /// Share of each service's spans from its first version, the others sharing the rest
    /// (canaries); unset: all versions alike.
    #[arg(long)]
    pub stable_share: Option<f64>,
    /// 0 (default): each request holds both spans of each of its calls, so about as many
    /// resources as spans (the worst case). N: requests shaped as SDKs and Collectors send
    /// them, blocks of up to N spans of one (service, version), a call's client and server
    /// spans in different requests (`--distinct-batches` is then ignored: the cycle has as
    /// many requests as give every resource about N spans).
    #[arg(long, default_value_t = 0)]
    pub spans_per_resource: usize,
}

/// What a load run achieved.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub accepted_spans: u64,
    pub rejected_spans: u64,
    pub requests: u64,
    /// Refusals that were retried (queue full, overload).
    pub retries: u64,
    /// Requests that failed for good.
    pub errors: u64,
    pub elapsed: Duration,
    pub bytes_per_request: usize,
}

impl Report {
    pub fn spans_per_second(&self) -> f64 {
        self.accepted_spans as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    rejected: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
}

/// Runs the load generator (blocking) and prints its report.
pub fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(load(&args))?;
    println!(
        "accepted_spans={} spans_per_s={:.0} requests={} rejected_spans={} retries={} errors={} elapsed_s={:.2} bytes_per_request={}",
        report.accepted_spans,
        report.spans_per_second(),
        report.requests,
        report.rejected_spans,
        report.retries,
        report.errors,
        report.elapsed.as_secs_f64(),
        report.bytes_per_request
    );
    Ok(())
}

/// Pre-encodes the batches, connects, and sends for `args.duration`.
pub async fn load(args: &LoadgenArgs) -> anyhow::Result<Report> {
    let shape = Shape {
        services: args.services.max(1),
        versions: args.versions.max(1),
        operations: args.operations.max(1),
        spans_per_batch: args.batch_spans.max(2),
        error_rate: args.error_rate.clamp(0.0, 1.0),
        fanout: args.fanout,
        stable_share: args.stable_share,
    };
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let per_resource = args.spans_per_resource;
    let batches: Arc<Vec<batch::EncodedBatch>> = Arc::new(if per_resource > 0 {
        cycle::encode_cycle(&shape, &args.environment, 0, now, per_resource)
    } else {
        (0..args.distinct_batches.max(1))
            .map(|i| batch::encode_batch(&shape, &args.environment, i as u64, now))
            .collect()
    });
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counters = Arc::new(Counters::default());
    let deadline = Instant::now() + args.duration;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections.max(1) {
        let client = RawOtlpClient::connect(&args.target).await?;
        for _ in 0..args.inflight.max(1) {
            let (client, batches, counters) = (client.clone(), batches.clone(), counters.clone());
            let sent = sent.clone();
            tasks.push(tokio::spawn(async move {
                let next = || {
                    let k = sent.fetch_add(1, Ordering::Relaxed);
                    let len = batches.len() as u64;
                    let b = &batches[(k % len) as usize];
                    // A cycle's requests share their trace-id change (calls span requests).
                    let ids = if per_resource > 0 { k / len } else { k };
                    (Bytes::from(b.renumbered_as(ids, k)), b.spans as u64)
                };
                send_loop(client, next, deadline, &counters).await
            }));
        }
    }
    for t in tasks {
        t.await?;
    }
    Ok(Report {
        accepted_spans: counters.accepted.load(Ordering::Relaxed),
        rejected_spans: counters.rejected.load(Ordering::Relaxed),
        requests: counters.requests.load(Ordering::Relaxed),
        retries: counters.retries.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        bytes_per_request: batches.iter().map(|b| b.body.len()).sum::<usize>() / batches.len(),
    })
}

async fn send_loop(
    mut client: RawOtlpClient,
    next: impl Fn() -> (Bytes, u64),
    deadline: Instant,
    c: &Counters,
) {
    while Instant::now() < deadline {
        let (body, spans) = next();
        loop {
            match client.export_traces(body.clone()).await {
                Ok(rejected) => {
                    c.requests.fetch_add(1, Ordering::Relaxed);
                    c.accepted
                        .fetch_add(spans.saturating_sub(rejected), Ordering::Relaxed);
                    c.rejected.fetch_add(rejected, Ordering::Relaxed);
                    break;
                }
                Err(SendError::Retryable(delay)) => {
                    c.retries.fetch_add(1, Ordering::Relaxed);
                    if Instant::now() >= deadline {
                        break;
                    }
                    // The server's hint is in seconds; a load runner retries sooner.
                    tokio::time::sleep(delay.min(Duration::from_millis(5))).await;
                }
                Err(SendError::Failed(status)) => {
                    if c.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        tracing::warn!(code = ?status.code(), message = status.message(), "export failed");
                    }
                    break;
                }
            }
        }
    }
}
