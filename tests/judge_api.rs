//! The verdict API and Flagger webhooks through the real router (no socket): contract
//! shapes and status codes, markers, ambiguity, and the decision log on disk.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::sync::Arc;
use tower::ServiceExt;
use verdict::analysis::config::StateConfig;
use verdict::analysis::graph::config::GraphConfig;
use verdict::analysis::Analyzer;
use verdict::api::AppState;
use verdict::clock::ManualClock;
use verdict::judge::{DeploymentMarker, Judge};

const T: u64 = 1_700_000_000_000_000_000;

fn app(dir: &std::path::Path) -> (axum::Router, Arc<Judge>) {
    let analyzer = Analyzer::new(&StateConfig::default(), &GraphConfig::default());
    let state = AppState::standalone(analyzer, Arc::new(ManualClock::new(T)), dir).unwrap();
    let judge = state.judge.clone();
    (verdict::api::router(state), judge)
}

async fn call(
    r: &axum::Router,
    method: &str,
    uri: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// A deployment marker as a CD pipeline posts it.
fn marker(
    environment: &str,
    service: &str,
    version: &str,
    baseline: Option<&str>,
) -> DeploymentMarker {
    DeploymentMarker {
        environment: environment.into(),
        service: service.into(),
        version: version.into(),
        baseline_version: baseline.map(Into::into),
    }
}

#[tokio::test]
async fn unknown_version_is_inconclusive_with_200() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = app(dir.path());
    let (s, v) = call(&r, "GET", "/api/v1/verdict?service=checkout&version=9", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["verdict"], "inconclusive");
    assert!(v["reasons"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("no telemetry"));
    assert_eq!(v["baseline_version"], serde_json::Value::Null);
    for key in [
        "environment",
        "service",
        "version",
        "started_at",
        "requests",
    ] {
        assert!(v.get(key).is_some(), "{key} missing");
    }
}

#[tokio::test]
async fn malformed_queries_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = app(dir.path());
    assert_eq!(
        call(&r, "GET", "/api/v1/verdict?version=1", "").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&r, "GET", "/api/v1/verdict?service=a", "").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&r, "POST", "/api/v1/deployments", "{\"nope\":1}")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn markers_list_and_ambiguous_environments() {
    let dir = tempfile::tempdir().unwrap();
    let (r, judge) = app(dir.path());
    let (s, v) = call(
        &r,
        "POST",
        "/api/v1/deployments",
        r#"{"environment":"prod","service":"checkout","version":"2","baseline_version":"1"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(v["baseline_version"], "1");
    judge
        .mark(marker("staging", "checkout", "2", None), T)
        .unwrap();
    let (s, v) = call(&r, "GET", "/api/v1/deployments?environment=prod", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(v["deployments"][0]["verdict"], "inconclusive");
    let (s, _) = call(&r, "GET", "/api/v1/verdict?service=checkout&version=2", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "two environments match");
    let (s, v) = call(
        &r,
        "GET",
        "/api/v1/verdict?service=checkout&version=2&environment=staging",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["environment"], "staging");
}

#[tokio::test]
async fn flagger_hooks_answer_by_workload() {
    let dir = tempfile::tempdir().unwrap();
    let (r, judge) = app(dir.path());
    judge
        .mark(marker("prod", "checkout", "2", Some("1")), T)
        .unwrap();
    let body = r#"{"name":"checkout","namespace":"prod","phase":"Progressing","metadata":{}}"#;
    assert_eq!(
        call(&r, "POST", "/api/v1/flagger/rollout", body).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&r, "POST", "/api/v1/flagger/confirm-promotion", body)
            .await
            .0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        call(&r, "POST", "/api/v1/flagger/confirm-traffic-increase", body)
            .await
            .0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        call(&r, "POST", "/api/v1/flagger/rollback", body).await.0,
        StatusCode::PRECONDITION_FAILED
    );
    let unknown = r#"{"name":"nobody","namespace":"prod"}"#;
    assert_eq!(
        call(&r, "POST", "/api/v1/flagger/rollout", unknown).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&r, "POST", "/api/v1/flagger/nope", body).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn marked_deployment_is_judged_by_tick() {
    let dir = tempfile::tempdir().unwrap();
    let (_, judge) = app(dir.path());
    judge
        .mark(marker("prod", "checkout", "2", Some("1")), T)
        .unwrap();
    let series = verdict::analysis::series::SeriesStore::new(&StateConfig::default());
    let t = judge.tick(&series, T + 1_000_000_000);
    assert_eq!(t.verdicts.len(), 1);
    assert_eq!(
        t.verdicts[0].verdict,
        verdict::model::Decision::Inconclusive
    );
}

/// One served request of `service@version` at `t`.
fn served(service: &str, version: &str, t: u64, id: u64) -> verdict::model::SpanRecord {
    use verdict::model::*;
    SpanRecord {
        resource: Arc::new(Resource {
            environment: "prod".into(),
            service: service.into(),
            version: version.into(),
            instance: "i".into(),
            k8s_deployment: None,
        }),
        trace_id: [id as u8; 16],
        span_id: id.to_be_bytes(),
        parent_span_id: [0; 8],
        operation: "GET /".into(),
        kind: SpanKind::Server,
        start_unix_nano: t - 5_000_000,
        end_unix_nano: t,
        error: false,
        timing_valid: true,
        peer: None,
    }
}

#[test]
fn deployments_beyond_the_cap_wait_oldest_first_and_markers_are_refused() {
    use verdict::analysis::series::SeriesStore;
    use verdict::analysis::Observer;
    use verdict::judge::config::JudgeConfig;
    use verdict::model::SpanBatch;
    let cfg = JudgeConfig {
        decision_log: String::new(),
        max_deployments: 2,
        ..Default::default()
    };
    let judge = Judge::new(&cfg).unwrap();
    let series = SeriesStore::new(&StateConfig::default());
    let s = 1_000_000_000;
    let metric = |j: &Judge| {
        let mut w = verdict::telemetry::PromWriter::default();
        verdict::telemetry::ExportMetrics::export_metrics(j, &mut w);
        let text = w.finish();
        text.lines()
            .find_map(|l| l.strip_prefix("verdict_judge_deployments_waiting "))
            .map(|v| v.parse::<f64>().unwrap())
            .unwrap()
    };
    // Four services, each with a stable version 1 and a new version 2 that appears a little
    // later for each service (s0's first, s3's last). Version 1 serves twice as much.
    for sec in 0..20u64 {
        let now = T + sec * s;
        let mut spans = Vec::new();
        for i in 0..4u64 {
            for k in 0..4 {
                spans.push(served(&format!("s{i}"), "1", now, sec * 100 + i * 10 + k));
            }
            if sec > i {
                spans.push(served(&format!("s{i}"), "2", now, sec * 100 + i * 10 + 5));
            }
        }
        judge.on_spans(&SpanBatch { spans }, now);
        judge.tick(&series, now);
    }
    let live: Vec<String> = judge
        .deployments(Some("prod"))
        .into_iter()
        .map(|d| d.service.to_string())
        .collect();
    assert_eq!(
        live,
        vec!["s0", "s1"],
        "the two oldest new versions are judged"
    );
    assert_eq!(metric(&judge), 2.0);
    let refused = judge.mark(marker("prod", "s9", "7", None), T + 20 * s);
    assert!(refused.unwrap_err().contains("judge.max_deployments = 2"));
    // s0's new version stops serving; once its deployment ends, s2's starts.
    for sec in 20..80u64 {
        let now = T + sec * s;
        let mut spans = Vec::new();
        for i in 0..4u64 {
            spans.push(served(&format!("s{i}"), "1", now, sec * 100 + i * 10));
            if i > 0 {
                spans.push(served(&format!("s{i}"), "2", now, sec * 100 + i * 10 + 5));
            }
        }
        judge.on_spans(&SpanBatch { spans }, now);
        judge.tick(&series, now);
    }
    let mut listed: Vec<String> = judge
        .deployments(Some("prod"))
        .into_iter()
        .map(|d| d.service.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec!["s0", "s1", "s2"],
        "s0 ended, s2 took its place"
    );
    assert_eq!(metric(&judge), 1.0, "s3 still waits");
}
