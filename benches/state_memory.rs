//! Memory runner for the per-version state (issue #2's target: at most 150 MiB RSS for the
//! whole process holding 1,000 services x 3 versions x 10 operations under sustained load,
//! flat over time). Fills every series with ~20 lognormal-latency spans per second of
//! simulated time for several horizons and prints, once per simulated minute, the series
//! count, the store's own estimate and the process's VmRSS / VmHWM.
//!
//! Run: `cargo bench --bench state_memory` (env: STATE_MEM_SERVICES=1000,
//! STATE_MEM_VERSIONS=3, STATE_MEM_OPS=10, STATE_MEM_RATE=20 spans/s per series,
//! STATE_MEM_MINUTES=15, STATE_MEM_SLOT=1m, STATE_MEM_HORIZON=5m).

#[path = "state/fixture.rs"]
mod fixture;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::time::{Duration, Instant};
use verdict::analysis::config::StateConfig;
use verdict::analysis::series::SeriesStore;
use verdict::model::SpanBatch;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_duration(name: &str, default: Duration) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|v| humantime::parse_duration(&v).ok())
        .unwrap_or(default)
}

/// (VmRSS, VmHWM) of this process in MiB.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks every bench for its list
    }
    let (services, versions, ops) = (
        env_num("STATE_MEM_SERVICES", 1_000),
        env_num("STATE_MEM_VERSIONS", 3),
        env_num("STATE_MEM_OPS", 10),
    );
    let rate = env_num("STATE_MEM_RATE", 20);
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then one
    // simulated minute is a smoke test that the runner works, not a measurement.
    let measuring = std::env::args().any(|a| a == "--bench");
    let minutes = env_num("STATE_MEM_MINUTES", if measuring { 15 } else { 1 }) as u64;
    let cfg = StateConfig {
        slot: env_duration("STATE_MEM_SLOT", StateConfig::default().slot),
        horizon: env_duration("STATE_MEM_HORIZON", StateConfig::default().horizon),
        ..Default::default()
    };
    let (rss0, _) = rss_mib();
    let fleet = fixture::fleet(services, versions, ops, 1);
    let store = SeriesStore::new(&cfg);
    let mut rng = SmallRng::seed_from_u64(2);
    let mut buf = Vec::with_capacity(ops * rate);
    println!(
        "series={} slot={:?} horizon={:?} rate={rate}/s per series; baseline RSS {rss0:.1} MiB",
        services * versions * ops,
        cfg.slot,
        cfg.horizon
    );
    println!("minute  series  estimate_MiB  VmRSS_MiB  VmHWM_MiB  record_ns_per_span");
    let (mut spans, mut busy) = (0u64, Duration::ZERO);
    for sec in 0..minutes * 60 {
        let now = T0 + sec * SEC;
        store.tick(now);
        for d in &fleet {
            buf.clear();
            fixture::fill_spans(d, rate, now, &mut rng, &mut buf);
            let batch = SpanBatch {
                spans: std::mem::take(&mut buf),
            };
            let t = Instant::now();
            store.record_spans(&batch, now);
            busy += t.elapsed();
            spans += batch.spans.len() as u64;
            buf = batch.spans;
        }
        if (sec + 1) % 60 == 0 {
            let (rss, hwm) = rss_mib();
            println!(
                "{:>6}  {:>6}  {:>12.1}  {:>9.1}  {:>9.1}  {:>18.1}",
                (sec + 1) / 60,
                store.series_count(),
                store.memory_estimate() as f64 / (1 << 20) as f64,
                rss,
                hwm,
                busy.as_nanos() as f64 / spans.max(1) as f64
            );
        }
    }
    let now = T0 + minutes * 60 * SEC;
    let t = Instant::now();
    let all = store.services(None, now - 300 * SEC, now);
    println!(
        "services(None, 5m): {} services in {:.1} ms",
        all.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
}
