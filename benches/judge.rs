//! Judge benchmarks: the cost per span of the judge's observations (`on_spans` and
//! `on_edges` for a 512-span batch of client/server pairs, its 256 calls grouped by edge
//! as a graph flush hands them on) and of one judging tick, on a
//! fleet of 200 services x 3 versions (the first serving 90 %) with 4 callees each and
//! every non-stable version a live deployment; and the path buffer held full, a second of
//! one-span traces taken in and released at a time.

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use verdict::analysis::config::StateConfig;
use verdict::analysis::graph::fixtures::{resource, span};
use verdict::analysis::graph::EdgeRuns;
use verdict::analysis::series::SeriesStore;
use verdict::analysis::Observer;
use verdict::judge::config::JudgeConfig;
use verdict::judge::Judge;
use verdict::model::{
    ConnectionType, EdgeCall, Name, NodeKind, Resource, SpanBatch, SpanKind, UnixNanos,
};

const SERVICES: usize = 200;
const VERSIONS: usize = 3;
const FANOUT: usize = 4;
const OPERATIONS: u64 = 10;
const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000_000_000_000;

/// A small deterministic generator (the bench needs no statistical quality).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A version: the first 90 % of the time.
    fn version(&mut self) -> usize {
        if self.below(10) < 9 {
            0
        } else {
            1 + self.below(VERSIONS as u64 - 1) as usize
        }
    }

    /// A latency spread over two decades around 3 ms.
    fn latency(&mut self) -> u64 {
        let u = (self.below(1 << 20) as f64 + 0.5) / (1 << 20) as f64;
        (3e6 * (4.0 * (u - 0.5)).exp()) as u64
    }
}

/// One 512-span batch (256 calls) and its edge calls, at `now`.
fn batch(
    g: &mut Gen,
    res: &[Vec<Arc<Resource>>],
    ops: &[Name],
    now: UnixNanos,
) -> (SpanBatch, EdgeRuns) {
    let (mut spans, mut edges) = (Vec::with_capacity(512), Vec::with_capacity(256));
    for _ in 0..256 {
        let caller = g.below(SERVICES as u64) as usize;
        let step = (SERVICES - 1) / FANOUT;
        let callee = (caller + 1 + g.below(FANOUT as u64) as usize * step) % SERVICES;
        let (cv, sv) = (g.version(), g.version());
        let trace = g.next();
        let server_ns = g.latency();
        let client_ns = server_ns + 300_000;
        let failed = g.below(100) == 0;
        let start = now - 2 * S;
        let mut server = span(
            &res[callee][sv],
            SpanKind::Server,
            trace,
            2,
            1,
            start,
            server_ns,
            failed,
        );
        server.operation = ops[g.below(OPERATIONS) as usize].clone();
        spans.push(span(
            &res[caller][cv],
            SpanKind::Client,
            trace,
            1,
            0,
            start,
            client_ns,
            failed,
        ));
        spans.push(server);
        let (c, s) = (&res[caller][cv], &res[callee][sv]);
        edges.push(EdgeCall {
            environment: c.environment.clone(),
            caller: c.service.clone(),
            caller_version: c.version.clone(),
            callee: s.service.clone(),
            callee_version: s.version.clone(),
            callee_kind: NodeKind::Service,
            connection_type: ConnectionType::Direct,
            client_ns: Some(client_ns),
            server_ns: Some(server_ns),
            failed,
            trace_id: spans[spans.len() - 1].trace_id,
            time_unix_nano: start + client_ns,
        });
    }
    (SpanBatch { spans }, EdgeRuns::from_calls(&edges, now))
}

/// A judge that has seen 70 s of the fleet's traffic (ticked every second), so every
/// service has a stable version with thresholds and its other versions are deployments.
fn warmed(g: &mut Gen) -> (Judge, SeriesStore, Vec<Vec<Arc<Resource>>>, Vec<Name>) {
    let cfg = JudgeConfig {
        decision_log: String::new(),
        ..Default::default()
    };
    let judge = Judge::new(&cfg).unwrap();
    let series = SeriesStore::new(&StateConfig::default());
    let res: Vec<Vec<Arc<Resource>>> = (0..SERVICES)
        .map(|s| {
            (0..VERSIONS)
                .map(|v| resource("prod", &format!("svc-{s:03}"), &format!("1.{v}.0")))
                .collect()
        })
        .collect();
    let ops: Vec<Name> = (0..OPERATIONS)
        .map(|o| Name::new(format!("GET /op{o}")))
        .collect();
    for sec in 0..70 {
        let now = T0 + sec * S;
        for _ in 0..8 {
            let (spans, edges) = batch(g, &res, &ops, now);
            judge.on_spans(&spans, now);
            judge.on_edges(&edges, now);
        }
        judge.tick(&series, now + S - 1);
    }
    (judge, series, res, ops)
}

fn bench(c: &mut Criterion) {
    let mut g = Gen(7);
    let (judge, series, res, ops) = warmed(&mut g);
    let now = T0 + 70 * S;
    let batches: Vec<_> = (0..64).map(|_| batch(&mut g, &res, &ops, now)).collect();
    let listed = judge.deployments(None).len();
    eprintln!("judge bench: {listed} deployments listed after warm-up");
    let mut grp = c.benchmark_group("judge");
    grp.throughput(Throughput::Elements(512));
    let mut i = 0;
    grp.bench_function("observe 512 spans + 256 edge calls", |b| {
        b.iter(|| {
            let (spans, edges) = &batches[i % batches.len()];
            i += 1;
            judge.on_spans(black_box(spans), now);
            judge.on_edges(black_box(edges), now);
        })
    });
    // The same spans as an SDK or Collector sends them: grouped by resource (one run per
    // service version, about 55 spans each), 512 per batch.
    let mut grouped: Vec<_> = batches.iter().flat_map(|(b, _)| b.spans.clone()).collect();
    grouped.sort_by(|a, b| {
        (&a.resource.service, &a.resource.version).cmp(&(&b.resource.service, &b.resource.version))
    });
    let grouped: Vec<SpanBatch> = grouped
        .chunks(512)
        .map(|c| SpanBatch { spans: c.to_vec() })
        .collect();
    grp.bench_function("observe 512 spans grouped by resource", |b| {
        b.iter(|| {
            let spans = &grouped[i % grouped.len()];
            i += 1;
            judge.on_spans(black_box(spans), now);
        })
    });
    // A tick after a second of traffic (8 batches, fed outside the measurement).
    grp.throughput(Throughput::Elements(1));
    let mut t = now;
    grp.bench_function("tick after 4,096 spans", |b| {
        b.iter_batched(
            || {
                t += S;
                for k in 0..8 {
                    let (spans, edges) = &batches[(i + k) % batches.len()];
                    judge.on_spans(spans, t);
                    judge.on_edges(edges, t);
                }
                i += 8;
                t
            },
            |t| black_box(judge.tick(&series, t + S - 1)),
            BatchSize::PerIteration,
        )
    });
    grp.finish();
}

/// The path buffer full (200,000 spans, four times the default cap, of which new traces
/// take seven eighths, held for the default 5 s): each iteration is one second, releasing
/// the traces held 5 s before and taking 35,000 new one-span traces (the shape SDK-sized
/// requests under heavy load give it; the costliest per span, one trace each).
fn path_buffer(c: &mut Criterion) {
    use verdict::judge::path::PathBuffer;
    const PER_SECOND: u64 = 35_000;
    let r = resource("prod", "a", "1");
    // Six seconds of distinct traces, cycled: a trace id comes back after its release.
    let spans: Vec<_> = (0..6 * PER_SECOND)
        .map(|k| span(&r, SpanKind::Server, k + 1, 1, 0, T0, 1_000, false))
        .collect();
    let mut buf = PathBuffer::new(200_000, 5 * S);
    let mut t = T0;
    let mut next = 0usize;
    let mut out = Vec::new();
    let mut second = |buf: &mut PathBuffer, t: u64, out: &mut Vec<_>| {
        buf.flush(t, false, &|_: &str, _: &str| true, out);
        out.clear();
        for _ in 0..PER_SECOND {
            buf.hold(&spans[next], r.clone(), t);
            next = (next + 1) % spans.len();
        }
    };
    for _ in 0..6 {
        t += S;
        second(&mut buf, t, &mut out);
    }
    // New traces stop at seven eighths of the cap (the rest is kept for the later spans of
    // held traces): five seconds of 35,000 one-span traces fill exactly that.
    assert_eq!(buf.held_spans(), 175_000, "warmed to where new traces stop");
    assert_eq!(buf.dropped_spans, 0);
    let mut grp = c.benchmark_group("judge");
    grp.throughput(Throughput::Elements(PER_SECOND));
    grp.bench_function(
        "path buffer: one second full, 35,000 one-span traces",
        |b| {
            b.iter(|| {
                t += S;
                second(&mut buf, t, &mut out);
            })
        },
    );
    grp.finish();
    assert_eq!(buf.dropped_spans, 0, "the buffer stayed within its cap");
}

criterion_group!(benches, bench, path_buffer);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
