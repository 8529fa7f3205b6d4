//! Shared fixture of the state benches: a fleet of services x versions x operations with
//! lognormal latencies, and span batches laid out as OTLP exporters send them (spans
//! grouped by resource).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use std::sync::Arc;
use verdict::model::{Name, Resource, SpanKind, SpanRecord};

/// One (service, version) with its operations' latency distributions.
pub struct Deployment {
    pub resource: Arc<Resource>,
    pub ops: Vec<(Name, LogNormal<f64>)>,
}

/// `services` x `versions` deployments of `ops` operations each; medians from 1 ms to
/// 200 ms, sigma 0.4 to 1.0.
pub fn fleet(services: usize, versions: usize, ops: usize, seed: u64) -> Vec<Deployment> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(services * versions);
    for s in 0..services {
        for v in 0..versions {
            let resource = Arc::new(Resource {
                environment: "prod".into(),
                service: format!("service-{s:04}").into(),
                version: format!("1.{v}.0").into(),
                instance: format!("pod-{s}-{v}").into(),
                k8s_deployment: None,
            });
            let ops = (0..ops)
                .map(|o| {
                    let median_ns = rng.random_range(1e6f64..2e8);
                    let sigma = rng.random_range(0.4f64..1.0);
                    let d = LogNormal::new(median_ns.ln(), sigma).expect("valid lognormal");
                    (Name::from(format!("GET /api/v1/op{o}")), d)
                })
                .collect();
            out.push(Deployment { resource, ops });
        }
    }
    out
}

/// Fills `out` with `per_op` server spans of every operation of `d` (2 % errors), ending
/// at `now`; reuses `out`'s allocation.
pub fn fill_spans(
    d: &Deployment,
    per_op: usize,
    now: u64,
    rng: &mut SmallRng,
    out: &mut Vec<SpanRecord>,
) {
    for (op, dist) in &d.ops {
        for _ in 0..per_op {
            let ns = dist.sample(rng) as u64;
            out.push(SpanRecord {
                resource: d.resource.clone(),
                trace_id: [1; 16],
                span_id: [2; 8],
                parent_span_id: [3; 8],
                operation: op.clone(),
                kind: SpanKind::Server,
                start_unix_nano: now.saturating_sub(ns),
                end_unix_nano: now,
                error: rng.random_ratio(1, 50),
                timing_valid: true,
                peer: None,
            });
        }
    }
}
