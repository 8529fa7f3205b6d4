//! Graph benchmarks: pairing throughput per core (spans/s through `Graph::record_spans`,
//! pairs completing in shuffled order across batches) and memory per in-flight span
//! (bytes the pairing store holds per waiting span, measured with a counting allocator).

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use verdict::analysis::graph::config::GraphConfig;
use verdict::analysis::graph::fixtures::{resource, span, with_peer};
use verdict::analysis::graph::Graph;
use verdict::model::{NodeKind, SpanBatch, SpanKind, SpanRecord};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const T0: u64 = 1_700_000_000_000_000_000;

/// `calls` traces of a small topology: user -> frontend -> {checkout v1/v2 -> payment
/// v1/v2, postgres}; spans shuffled, so half the pairs meet server-first.
fn workload(calls: u64) -> Vec<SpanRecord> {
    let fe = resource("prod", "frontend", "v1");
    let co = [
        resource("prod", "checkout", "v1"),
        resource("prod", "checkout", "v2"),
    ];
    let pay = [
        resource("prod", "payment", "v1"),
        resource("prod", "payment", "v2"),
    ];
    let mut spans = Vec::with_capacity(calls as usize * 5);
    for t in 1..=calls {
        let (c, p) = (&co[(t % 2) as usize], &pay[(t / 2 % 2) as usize]);
        spans.push(span(&fe, SpanKind::Server, t, 1, 0, T0, 9_000_000, false));
        spans.push(span(
            &fe,
            SpanKind::Client,
            t,
            2,
            1,
            T0,
            8_000_000 + t % 1000,
            false,
        ));
        spans.push(span(
            c,
            SpanKind::Server,
            t,
            3,
            2,
            T0,
            7_000_000 + t % 777,
            t % 50 == 0,
        ));
        spans.push(span(
            c,
            SpanKind::Client,
            t,
            4,
            3,
            T0,
            3_000_000 + t % 333,
            false,
        ));
        spans.push(span(
            p,
            SpanKind::Server,
            t,
            5,
            4,
            T0,
            2_000_000 + t % 111,
            false,
        ));
        if t % 4 == 0 {
            spans.push(with_peer(
                span(c, SpanKind::Client, t, 6, 3, T0, 500_000, false),
                NodeKind::Database,
                "postgresql/shop",
            ));
        }
    }
    let mut seed = 42u64;
    for i in (1..spans.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        spans.swap(i, (seed >> 33) as usize % (i + 1));
    }
    spans
}

fn batches(spans: &[SpanRecord], size: usize) -> Vec<SpanBatch> {
    spans
        .chunks(size)
        .map(|c| SpanBatch { spans: c.to_vec() })
        .collect()
}

fn pairing_throughput(c: &mut Criterion) {
    let spans = workload(20_000);
    let input = batches(&spans, 512);
    let mut g = c.benchmark_group("graph");
    g.throughput(Throughput::Elements(spans.len() as u64));
    g.sample_size(20);
    g.bench_function("record_spans_paired_shuffled", |b| {
        b.iter_batched(
            || Graph::new(&GraphConfig::default()),
            |graph| {
                let mut out = Vec::with_capacity(1024);
                for (i, batch) in input.iter().enumerate() {
                    graph.record_spans(batch, T0 + i as u64 * 1_000_000, &mut out);
                    out.clear();
                }
                // The buffered calls are applied to the edge windows too.
                black_box(graph.flush());
                black_box(graph)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Live heap bytes per waiting span: `n` client spans that never pair (worst case: every
/// entry holds a full half with a peer).
fn memory_per_in_flight_span() {
    let n = 100_000u64;
    let fe = resource("prod", "frontend", "v1");
    let spans: Vec<SpanRecord> = (1..=n)
        .map(|t| {
            with_peer(
                span(&fe, SpanKind::Client, t, 1, 9, T0, 1_000, false),
                NodeKind::Service,
                "ghost",
            )
        })
        .collect();
    let batch = SpanBatch { spans };
    let cfg = GraphConfig {
        max_pending: 1_000_000,
        ..GraphConfig::default()
    };
    let before = LIVE.load(Ordering::Relaxed);
    let graph = Graph::new(&cfg);
    let mut out = Vec::new();
    graph.record_spans(&batch, T0, &mut out);
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(graph.pending() as u64, n);
    println!(
        "graph/memory_per_in_flight_span: {:.1} bytes per waiting span ({} spans, {} bytes; \
         entry struct {} bytes; verdict_graph_store_memory_bytes estimates {:.1} per span)",
        (after - before) as f64 / n as f64,
        n,
        after - before,
        verdict::analysis::graph::pairing::entry_bytes(),
        graph.pairing_memory_bytes() as f64 / n as f64
    );
    black_box(graph);
}

criterion_group!(benches, pairing_throughput);

fn main() {
    memory_per_in_flight_span();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
