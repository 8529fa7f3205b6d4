//! Tests of the judge's observations and memory gauges.

use super::*;
use crate::analysis::Observer;
use crate::model::{Resource, SpanBatch, SpanKind, SpanRecord};
use std::sync::Arc;

/// A resource of `checkout` in `prod`.
fn resource(version: &str, instance: &str) -> Arc<Resource> {
    Arc::new(Resource {
        environment: "prod".into(),
        service: "checkout".into(),
        version: version.into(),
        instance: instance.into(),
        k8s_deployment: None,
    })
}

fn span(resource: &Arc<Resource>, id: u8) -> SpanRecord {
    SpanRecord {
        resource: resource.clone(),
        trace_id: [id; 16],
        span_id: [id; 8],
        parent_span_id: [0; 8],
        operation: "GET /".into(),
        kind: SpanKind::Server,
        start_unix_nano: 0,
        end_unix_nano: 1_000,
        error: false,
        timing_valid: true,
        peer: None,
    }
}

/// Versions that are neither judged nor stable (here one waiting for a deployment
/// slot) keep their sightings but no streams; the stable version and the live
/// deployment's candidate keep theirs.
#[test]
fn only_judged_and_stable_versions_keep_streams() {
    let cfg = JudgeConfig {
        decision_log: String::new(),
        max_deployments: 1,
        ..Default::default()
    };
    let judge = Judge::new(&cfg).unwrap();
    let series = crate::analysis::series::SeriesStore::new(&Default::default());
    let (v1, v2, v3) = (
        resource("1", "pod"),
        resource("2", "pod"),
        resource("3", "pod"),
    );
    const S: u64 = 1_000_000_000;
    let feed = |rs: &[&Arc<Resource>], t: u64| {
        let spans = rs.iter().map(|r| span(r, t as u8)).collect();
        judge.on_spans(&SpanBatch { spans }, t * S);
        judge.tick(&series, t * S);
    };
    for t in 1..=20 {
        feed(&[&v1], t);
    }
    feed(&[&v1, &v2], 21);
    for t in 22..=40 {
        feed(&[&v1, &v2, &v3], t);
    }
    let st = judge.state.lock();
    let svc = &st.services[&(Name::from("prod"), Name::from("checkout"))];
    assert_eq!(svc.stable.as_deref(), Some("1"));
    let streams = |v: &str| svc.versions[v].streams.len();
    assert!(
        streams("1") > 0 && streams("2") > 0,
        "stable and candidate keep streams"
    );
    assert_eq!(streams("3"), 0, "the waiting version keeps none");
    let waiting = &svc.versions["3"];
    assert!(!waiting.keeps_streams);
    assert_eq!((waiting.served_total, waiting.last_seen), (19, 40 * S));
    assert_eq!(st.waiting, 1);
    let kept = streams("1") + streams("2");
    drop(st);
    // The memory gauges see what is kept: streams of two versions, one deployment's tests.
    let mut w = crate::telemetry::PromWriter::new();
    crate::telemetry::ExportMetrics::export_metrics(&judge, &mut w);
    let page = w.finish();
    let gauge = |name: &str| -> f64 {
        let line = page.lines().find(|l| l.starts_with(&format!("{name} ")));
        line.and_then(|l| l.split(' ').nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(gauge("verdict_judge_streams") as usize, kept);
    assert!(gauge("verdict_judge_streams_memory_bytes") > 0.0);
    assert!(gauge("verdict_judge_tests_memory_bytes") > 0.0);
}

/// Held spans share one resource per version: the batches' own resources are freed
/// with the batches even while their spans wait in the path buffer.
#[test]
fn held_spans_do_not_keep_their_batches_resources() {
    let cfg = JudgeConfig {
        decision_log: String::new(),
        ..Default::default()
    };
    let judge = Judge::new(&cfg).unwrap();
    judge.state.lock().any_live = true;
    let batches: Vec<Arc<Resource>> = (0..5).map(|i| resource("2", &format!("pod-{i}"))).collect();
    for (i, r) in batches.iter().enumerate() {
        judge.on_spans(
            &SpanBatch {
                spans: vec![span(r, i as u8 + 1)],
            },
            1,
        );
    }
    assert_eq!(judge.state.lock().path.held_spans(), 5);
    // The first batch's resource stands for the version; the others only for their
    // batch (the local `batches`).
    assert!(Arc::strong_count(&batches[0]) > 1);
    for r in &batches[1..] {
        assert_eq!(Arc::strong_count(r), 1, "{}", r.instance);
    }
}

/// Runs of one resource (as OTLP batches come) count exactly as the same spans sent one
/// per batch: sightings, served totals, stream counts, and the cap's refusals per span.
#[test]
fn runs_of_one_resource_count_as_single_spans() {
    let cfg = JudgeConfig {
        decision_log: String::new(),
        max_versions: 2,
        ..Default::default()
    };
    let (v1, v2, v3) = (
        resource("1", "pod"),
        resource("2", "pod"),
        resource("3", "pod"),
    );
    let mut spans = Vec::new();
    for (r, n) in [(&v1, 3), (&v2, 2), (&v3, 4), (&v1, 1)] {
        for id in 0..n {
            let mut s = span(r, spans.len() as u8);
            if id == 0 {
                s.kind = SpanKind::Client;
            }
            spans.push(s);
        }
    }
    let grouped = Judge::new(&cfg).unwrap();
    grouped.on_spans(
        &SpanBatch {
            spans: spans.clone(),
        },
        7,
    );
    let single = Judge::new(&cfg).unwrap();
    for s in &spans {
        single.on_spans(
            &SpanBatch {
                spans: vec![s.clone()],
            },
            7,
        );
    }
    let summary = |j: &Judge| {
        let st = j.state.lock();
        let svc = &st.services[&(Name::from("prod"), Name::from("checkout"))];
        let mut versions: Vec<_> = svc
            .versions
            .iter()
            .map(|(v, t)| {
                let n: u64 = t.streams.values().map(|s| s.tick.n).sum();
                (v.to_string(), t.served_total, t.last_seen, t.last_served, n)
            })
            .collect();
        versions.sort();
        (versions, st.overflow)
    };
    let got = summary(&grouped);
    assert_eq!(got, summary(&single));
    // v1: 4 spans, 2 served; v2: 2 spans, 1 served; v3 refused by the cap, span by span.
    assert_eq!(
        got,
        (
            vec![("1".to_string(), 2, 7, 7, 2), ("2".to_string(), 1, 7, 7, 1)],
            4
        )
    );
}
