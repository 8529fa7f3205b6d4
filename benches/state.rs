//! Criterion bench of the per-version state's hot path: `record_spans` per span for
//! realistic 512-span batches spread over a fleet of 30,000 series, and a worst case where
//! every span has its own resource; and reading and writing a closed slot's frozen
//! histogram. Run: `cargo bench --bench state`.

#[path = "state/fixture.rs"]
mod fixture;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use verdict::analysis::config::StateConfig;
use verdict::analysis::series::SeriesStore;
use verdict::model::{SpanBatch, SpanKind, SpanRecord};

const NOW: u64 = 1_700_000_000_000_000_000;
const BATCH: usize = 512;

/// Batches as a Collector forwards them: 8 resources of 64 spans, operations interleaved,
/// one span in five a CLIENT span.
fn mixed_batches(fleet: &[fixture::Deployment], n: usize, rng: &mut SmallRng) -> Vec<SpanBatch> {
    (0..n)
        .map(|_| {
            let mut spans = Vec::with_capacity(BATCH);
            for _ in 0..8 {
                let d = &fleet[rng.random_range(0..fleet.len())];
                let mut run = Vec::new();
                fixture::fill_spans(d, 7, NOW, rng, &mut run);
                run.shuffle(rng);
                run.truncate(BATCH / 8);
                for s in &mut run {
                    if rng.random_ratio(1, 5) {
                        s.kind = SpanKind::Client;
                    }
                }
                spans.extend(run);
            }
            SpanBatch { spans }
        })
        .collect()
}

/// The worst case: every span from another resource, so no run shares a lock or a hash.
fn scattered_batches(batches: &[SpanBatch], rng: &mut SmallRng) -> Vec<SpanBatch> {
    let mut all: Vec<SpanRecord> = batches
        .iter()
        .flat_map(|b| b.spans.iter().cloned())
        .collect();
    all.shuffle(rng);
    all.chunks(BATCH)
        .map(|c| SpanBatch { spans: c.to_vec() })
        .collect()
}

fn bench_record(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(7);
    let fleet = fixture::fleet(1_000, 3, 10, 1);
    let mixed = mixed_batches(&fleet, 256, &mut rng);
    let scattered = scattered_batches(&mixed, &mut rng);
    let store = SeriesStore::new(&StateConfig::default());
    // Warm the store with every series of the fleet so lookups hit, as in steady state.
    let mut warm = Vec::new();
    for d in &fleet {
        warm.clear();
        fixture::fill_spans(d, 1, NOW, &mut rng, &mut warm);
        store.record_spans(
            &SpanBatch {
                spans: warm.clone(),
            },
            NOW,
        );
    }
    let mut g = c.benchmark_group("state_record_spans");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, batches) in [
        ("mixed_8_resources", &mixed),
        ("one_resource_per_span", &scattered),
    ] {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % batches.len();
                store.record_spans(black_box(&batches[i]), NOW)
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("state_query");
    g.bench_function("service_versions_3x10_5m", |b| {
        b.iter(|| {
            store.service_versions(
                "prod",
                black_box("service-0042"),
                NOW - 300_000_000_000,
                NOW + 1,
            )
        })
    });
    g.finish();
}

/// Reading a closed slot back (what every window sum does per slot): a 10 s slot of a
/// thin stream and a busy minute's, at the load generator's latency (log-normal, median
/// 3.3 ms).
fn bench_frozen(c: &mut Criterion) {
    use rand_distr::{Distribution, LogNormal};
    use verdict::analysis::histogram::LatencyHistogram;
    let d = LogNormal::new(15.0, 0.6).expect("valid parameters");
    let mut rng = SmallRng::seed_from_u64(7);
    let mut g = c.benchmark_group("frozen_slot");
    for n in [200usize, 3_000] {
        let mut h = LatencyHistogram::new();
        for _ in 0..n {
            h.record(d.sample(&mut rng) as u64);
        }
        let frozen = h.freeze();
        let mut acc = LatencyHistogram::new();
        acc.merge(&h);
        g.throughput(Throughput::Elements(h.buckets().count() as u64));
        g.bench_function(format!("merge_{n}_samples"), |b| {
            b.iter(|| {
                acc.reset();
                acc.merge_frozen(black_box(&frozen));
            })
        });
        g.bench_function(format!("freeze_{n}_samples"), |b| {
            b.iter(|| black_box(&h).freeze())
        });
    }
    g.finish();
}

criterion_group!(benches, bench_record, bench_frozen);
criterion_main!(benches);
