//! The SDK-batched load shape: requests arrive as OpenTelemetry SDKs send them and
//! Collectors forward them, many spans of one resource together (an SDK exports up to 512
//! spans of its process per request), and the client and server spans of a call come from
//! two processes, so they travel in different requests.

use super::batch::{
    add_call, encode_request, server_latency, CycleSpans, EncodedBatch, ResourceKey, Shape,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;

/// Builds one cycle of requests: enough calls that each (service, version) has about
/// `per_resource` spans, cut per resource into blocks of at most `per_resource` spans (one
/// SDK export each), shuffled, and packed whole into requests of at most
/// `shape.spans_per_batch` spans. Every call has both spans in the cycle, so a sender that
/// renumbers all requests of a cycle alike keeps every pair.
pub fn encode_cycle(
    shape: &Shape,
    env: &str,
    seed: u64,
    now: u64,
    per_resource: usize,
) -> Vec<EncodedBatch> {
    let per_resource = per_resource.clamp(1, shape.spans_per_batch.max(1));
    let mut rng = StdRng::seed_from_u64(seed);
    let latency = server_latency();
    let mut spans = CycleSpans::default();
    let calls = (shape.services * shape.versions * per_resource).div_ceil(2);
    for _ in 0..calls {
        add_call(shape, &mut rng, &latency, now, &mut spans);
    }
    let mut blocks = blocks(std::mem::take(&mut spans.by_resource), per_resource);
    blocks.shuffle(&mut rng);
    pack(blocks, shape.spans_per_batch)
        .into_iter()
        .map(|request| encode_request(request, &spans, env, shape.error_rate))
        .collect()
}

/// Each resource's spans cut into blocks of at most `size`.
fn blocks(
    by_resource: BTreeMap<ResourceKey, Vec<Span>>,
    size: usize,
) -> Vec<(ResourceKey, Vec<Span>)> {
    let mut out = Vec::new();
    for (key, mut spans) in by_resource {
        while spans.len() > size {
            let rest = spans.split_off(size);
            out.push((key, std::mem::replace(&mut spans, rest)));
        }
        out.push((key, spans));
    }
    out
}

/// Blocks packed in order into requests of at most `max` spans (a block is never split).
fn pack(
    blocks: Vec<(ResourceKey, Vec<Span>)>,
    max: usize,
) -> Vec<BTreeMap<ResourceKey, Vec<Span>>> {
    let mut requests = Vec::new();
    let (mut current, mut n) = (BTreeMap::<ResourceKey, Vec<Span>>::new(), 0);
    for (key, spans) in blocks {
        if n > 0 && n + spans.len() > max {
            requests.push(std::mem::take(&mut current));
            n = 0;
        }
        n += spans.len();
        current.entry(key).or_default().extend(spans);
    }
    if n > 0 {
        requests.push(current);
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SpanKind;
    use crate::receiver::decode::decode_traces_proto;
    use std::collections::{BTreeSet, HashMap};

    fn shape() -> Shape {
        Shape::fleet_for_tests(40)
    }

    /// Requests hold few resources with many spans each; every call's two spans are in the
    /// cycle, mostly in different requests, and renumbering a cycle alike keeps the pairs.
    #[test]
    fn a_cycle_batches_by_resource_and_pairs_across_requests() {
        let now = 1_800_000_000_000_000_000;
        let cycle = encode_cycle(&shape(), "prod", 5, now, 64);
        // 40 x 3 resources x 64 spans = 7,680 spans: at least 15 requests of 512.
        assert!((15..40).contains(&cycle.len()), "{} requests", cycle.len());
        let (mut spans, mut resources) = (0, 0);
        // trace id -> (request of the client span, request of the server span)
        let mut ends: HashMap<[u8; 16], (Option<usize>, Option<usize>)> = HashMap::new();
        let mut renumbered_traces = BTreeSet::new();
        for (i, b) in cycle.iter().enumerate() {
            assert_eq!(b.spans, b.end_times.len(), "request {i}");
            let d = decode_traces_proto(&b.body, now).unwrap();
            assert!(d.spans.len() <= 512 && d.spans.len() == b.spans);
            spans += d.spans.len();
            let set: BTreeSet<_> = d
                .spans
                .iter()
                .map(|s| (s.resource.service.clone(), s.resource.version.clone()))
                .collect();
            resources += set.len();
            for s in &d.spans {
                let e = ends.entry(s.trace_id).or_default();
                match s.kind {
                    SpanKind::Client => e.0 = Some(i),
                    _ => e.1 = Some(i),
                }
            }
            let again = decode_traces_proto(&b.renumbered_as(9, i as u64), now).unwrap();
            renumbered_traces.extend(again.spans.iter().map(|s| s.trace_id));
        }
        assert_eq!(spans, 40 * 3 * 64);
        let per_request = resources as f64 / cycle.len() as f64;
        assert!(
            per_request < 20.0,
            "{per_request} resources per request (120 in all)"
        );
        let split = ends
            .values()
            .filter(|(c, s)| c.is_some() && s.is_some() && c != s)
            .count();
        assert!(ends.values().all(|(c, s)| c.is_some() && s.is_some()));
        assert!(
            split * 10 > ends.len() * 8,
            "{split} of {} calls split",
            ends.len()
        );
        assert_eq!(renumbered_traces.len(), ends.len(), "one trace id per call");
        assert!(renumbered_traces.iter().all(|t| !ends.contains_key(t)));
    }

    #[test]
    fn blocks_never_exceed_their_size_and_packing_keeps_every_span() {
        let now = 1_800_000_000_000_000_000;
        let mut spans = CycleSpans::default();
        let mut rng = StdRng::seed_from_u64(1);
        let latency = server_latency();
        for _ in 0..1000 {
            add_call(&shape(), &mut rng, &latency, now, &mut spans);
        }
        let b = blocks(std::mem::take(&mut spans.by_resource), 16);
        assert!(b.iter().all(|(_, s)| !s.is_empty() && s.len() <= 16));
        let requests = pack(b, 100);
        let counts: Vec<usize> = requests
            .iter()
            .map(|r| r.values().map(Vec::len).sum())
            .collect();
        assert!(counts.iter().all(|&n| n <= 100), "{counts:?}");
        assert_eq!(counts.iter().sum::<usize>(), 2000);
    }
}
