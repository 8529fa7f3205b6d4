//! Tests of the traffic generator: each injected effect changes exactly the spans it
//! claims to (and no others), and a seed reproduces the traces.

use super::scenario::Scenario;
use super::span::SimSpan;
use super::topology::Topology;
use super::traffic::TrafficGen;
use crate::model::SpanKind;
use std::collections::HashMap;
use std::sync::Arc;

fn spans(effects: &str, rollout: &str, n: usize, seed: u64) -> Vec<SimSpan> {
    let yaml = format!(
        "name: t\nseed: {seed}\nrate: 50\nduration: 600s\nrollouts: [{rollout}]\neffects: [{effects}]\nexpect: {{final_verdict: [rollback]}}\n"
    );
    let scenario = Arc::new(Scenario::from_yaml("t", &yaml).expect("scenario"));
    let topo = Arc::new(Topology::load("otel-demo").expect("topology"));
    let mut g = TrafficGen::new(topo, scenario, 1_000_000_000_000).expect("generator");
    (0..n).flat_map(|_| g.next_trace().spans).collect()
}

fn dur(s: &SimSpan) -> u64 {
    s.end_unix_nano - s.start_unix_nano
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn quantile(mut v: Vec<u64>, q: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q) as usize]
}

fn served(all: &[SimSpan], service: &str, version: &str) -> Vec<u64> {
    all.iter()
        .filter(|s| {
            s.kind == SpanKind::Server
                && s.resource.service == service
                && s.resource.version == version
        })
        .map(dur)
        .collect()
}

#[test]
fn client_delay_shows_only_in_the_callers_client_spans() {
    let all = spans(
        "{kind: client_delay, service: currency, version: '2.3.0', at: 0s, extra: 15ms}",
        "{service: currency, version: '2.3.0', steps: [{at: 0s, weight: 50}]}",
        1500,
        1,
    );
    let by_id: HashMap<([u8; 16], [u8; 8]), &SimSpan> =
        all.iter().map(|s| ((s.trace_id, s.span_id), s)).collect();
    let (mut gap_new, mut gap_old) = (Vec::new(), Vec::new());
    for server in all
        .iter()
        .filter(|s| s.kind == SpanKind::Server && s.resource.service == "currency")
    {
        let client = by_id[&(server.trace_id, server.parent_span_id)];
        let gap = dur(client) - dur(server);
        if server.resource.version == "2.3.0" {
            gap_new.push(gap)
        } else {
            gap_old.push(gap)
        }
    }
    assert!(
        gap_new.iter().all(|g| *g >= 15_000_000),
        "every client span to the canary is 15 ms longer"
    );
    assert!(
        median(gap_old.clone()) < 2_000_000,
        "old callee: only network time"
    );
    let (new, old) = (
        median(served(&all, "currency", "2.3.0")),
        median(served(&all, "currency", "2.2.0")),
    );
    assert!(
        new < old * 3 / 2 && old < new * 3 / 2,
        "server spans unchanged ({new} vs {old})"
    );
}

#[test]
fn tail_only_latency_moves_the_p99_not_the_median() {
    let all = spans(
        "{kind: latency, service: product-catalog, version: '2.3.0', at: 0s, factor: 10, extra: 100ms, fraction: 0.03}",
        "{service: product-catalog, version: '2.3.0', steps: [{at: 0s, weight: 50}]}",
        1500,
        2,
    );
    let (new, old) = (
        served(&all, "product-catalog", "2.3.0"),
        served(&all, "product-catalog", "2.2.0"),
    );
    assert!(
        median(new.clone()) < median(old.clone()) * 3 / 2,
        "medians alike"
    );
    assert!(
        quantile(new, 0.99) > quantile(old, 0.99) + 80_000_000,
        "the canary's p99 is 100 ms higher"
    );
}

#[test]
fn a_global_database_incident_slows_every_version() {
    let all = spans(
        "{kind: database_latency, database: postgresql, at: 0s, factor: 5}",
        "{service: product-catalog, version: '2.3.0', steps: [{at: 0s, weight: 50}]}",
        800,
        3,
    );
    let calm = spans(
        "",
        "{service: product-catalog, version: '2.3.0', steps: [{at: 0s, weight: 50}]}",
        800,
        3,
    );
    let pg = |v: &[SimSpan], version: &str| -> Vec<u64> {
        v.iter()
            .filter(|s| {
                s.attr_str("db.system.name") == Some("postgresql") && s.resource.version == version
            })
            .map(dur)
            .collect()
    };
    for version in ["2.2.0", "2.3.0"] {
        let (slow, normal) = (median(pg(&all, version)), median(pg(&calm, version)));
        assert!(slow > 3 * normal, "{version}: {slow} vs {normal}");
    }
    let redis = |v: &[SimSpan]| -> Vec<u64> {
        v.iter()
            .filter(|s| s.attr_str("db.system.name") == Some("redis"))
            .map(dur)
            .collect()
    };
    assert!(
        median(redis(&all)) < 2 * median(redis(&calm)),
        "other databases unaffected"
    );
}

#[test]
fn a_seed_reproduces_the_traces_and_another_does_not() {
    let r = "{service: cart, version: '2.3.0', steps: [{at: 0s, weight: 30}]}";
    let e = "{kind: errors, service: cart, version: '2.3.0', at: 0s, rate: 0.2}";
    assert_eq!(spans(e, r, 100, 9), spans(e, r, 100, 9));
    assert_ne!(spans(e, r, 100, 9), spans(e, r, 100, 10));
}
