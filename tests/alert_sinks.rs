//! Sinks against local receivers: PagerDuty Events API v2 with a scripted 429 (with
//! Retry-After), 500 and 400; webhook (Alertmanager JSON v4, grouped per deployment) and
//! Slack, including a `--webhook` sink.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::receiver::{Receiver, Reply};
use support::verdicts::{reason, verdict};
use verdict::alert::config::{AlertingConfig, SinkConfig, SinkType};
use verdict::alert::Alerting;
use verdict::clock::{Clock, SystemClock};
use verdict::model::{Decision, DeploymentVerdict, Scope, Signal};
use verdict::telemetry::{ExportMetrics, PromWriter};

fn sink(kind: SinkType, url: &str) -> SinkConfig {
    SinkConfig {
        kind: Some(kind),
        url: Some(url.to_string()),
        ..SinkConfig::default()
    }
}

fn start(sinks: Vec<SinkConfig>, webhooks: &[String]) -> (Arc<Alerting>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AlertingConfig {
        store_path: dir.path().to_path_buf(),
        warmup: Duration::ZERO,
        sinks,
        ..AlertingConfig::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let al = Alerting::open(&cfg, webhooks, "http://verdict.test", clock.now()).unwrap();
    al.spawn_delivery(clock, tokio_util::sync::CancellationToken::new());
    (al, dir)
}

/// Three deployments with two regressions each: six alerts.
fn bad_deployments() -> Vec<DeploymentVerdict> {
    ["cart", "checkout", "payment"]
        .iter()
        .map(|s| {
            let rs = vec![
                reason(Signal::ErrorRate, Scope::SelfScope, None, true),
                reason(Signal::Latency, Scope::Outgoing, Some((s, "db")), true),
            ];
            verdict("prod", s, "v2", Decision::Rollback, rs)
        })
        .collect()
}

async fn wait_until(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metric(al: &Alerting, name: &str) -> f64 {
    let mut w = PromWriter::new();
    al.export_metrics(&mut w);
    let text = w.finish();
    let line = text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_gets_each_trigger_and_resolve_once_through_429_500_and_400() {
    let pd = Receiver::pagerduty().await;
    pd.script(&[
        Reply::RetryAfter(429, 1),
        Reply::Status(500),
        Reply::Status(400),
    ]);
    let cfg = SinkConfig {
        kind: Some(SinkType::Pagerduty),
        url: Some(pd.url.clone()),
        routing_key: Some("R0UT1NGKEY0000000000000000000000".into()),
        rate_limit: Some(4),
        rate_window: Duration::from_secs(1),
        ..SinkConfig::default()
    };
    let (al, _dir) = start(vec![cfg], &[]);
    let clock = SystemClock;
    let bad = bad_deployments();
    al.update(&bad, &[], clock.now());
    al.update(&bad, &[], clock.now());
    // 6 triggers; the event answered 400 is given up, the others arrive.
    wait_until("triggers", Duration::from_secs(15), || {
        pd.accepted().len() == 5
    })
    .await;
    al.update(&[], &[], clock.now());
    wait_until("resolves", Duration::from_secs(15), || {
        pd.accepted().len() == 11
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let all = pd.received();
    let key = |r: &support::receiver::Received| {
        (
            r.body["dedup_key"].as_str().unwrap().to_string(),
            r.body["event_action"].as_str().unwrap().to_string(),
        )
    };
    let mut accepted: HashMap<(String, String), usize> = HashMap::new();
    for r in pd.accepted() {
        *accepted.entry(key(&r)).or_default() += 1;
    }
    assert!(
        accepted.values().all(|n| *n == 1),
        "an event accepted twice: {accepted:?}"
    );
    let rejected: Vec<_> = all.iter().filter(|r| r.status == 400).collect();
    assert_eq!(rejected.len(), 1, "only the scripted 400");
    // The first event met 429, then 500 (both retried), then 400: given up, not retried.
    let tries: Vec<u16> = all
        .iter()
        .filter(|r| key(r) == key(rejected[0]))
        .map(|r| r.status)
        .collect();
    assert_eq!(tries, [429, 500, 400], "a 400 is not retried");
    let keys: std::collections::HashSet<String> = all.iter().map(|r| key(r).0).collect();
    assert_eq!(keys.len(), 6, "one dedup_key per alert");
    for k in &keys {
        let got: Vec<String> = pd
            .accepted()
            .iter()
            .filter(|r| &key(r).0 == k)
            .map(|r| key(r).1)
            .collect();
        assert!(
            got == ["trigger", "resolve"] || got == ["resolve"],
            "{k}: {got:?}"
        );
    }
    // Retry-After honoured: the retry of the 429 came at least 1 s later.
    assert!(all[1].at.duration_since(all[0].at) >= Duration::from_millis(990));
    assert_eq!(
        key(&all[0]),
        key(&all[1]),
        "the throttled event is retried first"
    );
    // Rate limit: never more than 4 requests in any 1 s window.
    for (i, r) in all.iter().enumerate() {
        let in_window = all[i..]
            .iter()
            .filter(|x| x.at.duration_since(r.at) < Duration::from_secs(1))
            .count();
        assert!(in_window <= 4, "{in_window} requests within 1 s");
    }
    assert_eq!(
        metric(&al, "verdict_alert_notifications_rejected_total"),
        1.0
    );
    assert_eq!(
        metric(&al, "verdict_alert_notifications_retried_total"),
        2.0
    );
    assert_eq!(metric(&al, "verdict_alert_notifications_sent_total"), 11.0);
    assert_eq!(metric(&al, "verdict_alert_queue_depth"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_groups_per_deployment_and_slack_links_to_it() {
    let hook = Receiver::start().await;
    let cli_hook = Receiver::start().await;
    let slack = Receiver::start().await;
    let (al, _dir) = start(
        vec![
            sink(SinkType::Webhook, &hook.url),
            sink(SinkType::Slack, &slack.url),
        ],
        std::slice::from_ref(&cli_hook.url),
    );
    let clock = SystemClock;
    let bad = bad_deployments();
    al.update(&bad, &[], clock.now());
    wait_until("firing", Duration::from_secs(10), || {
        hook.accepted().len() == 3 && cli_hook.accepted().len() == 3 && slack.accepted().len() == 3
    })
    .await;
    let fps: std::collections::HashSet<String> =
        al.alerts().iter().map(|a| a.fingerprint.clone()).collect();
    for r in hook.accepted() {
        let b = &r.body;
        assert_eq!(
            (b["version"].as_str(), b["status"].as_str()),
            (Some("4"), Some("firing"))
        );
        let alerts = b["alerts"].as_array().unwrap();
        assert_eq!(
            alerts.len(),
            2,
            "both regressions of one deployment in one payload"
        );
        let svc = &b["groupLabels"]["service"];
        assert!(alerts
            .iter()
            .all(|a| &a["labels"]["service"] == svc && a["endsAt"] == "0001-01-01T00:00:00Z"));
        assert!(alerts
            .iter()
            .all(|a| fps.contains(a["fingerprint"].as_str().unwrap())));
        assert_eq!(b["commonLabels"]["alertname"], "DeploymentRegression");
    }
    let text = slack.accepted()[0].body["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("*FIRING*") && text.contains("<http://verdict.test/#/deployments/prod/"),
        "{text}"
    );

    // One deployment rolled back (gone): only its group resolves.
    al.update(&bad[1..], &[], clock.now());
    wait_until("resolved", Duration::from_secs(10), || {
        hook.accepted().len() == 4 && slack.accepted().len() == 4
    })
    .await;
    let last = &hook.accepted()[3].body;
    assert_eq!(
        (
            last["status"].as_str(),
            last["groupLabels"]["service"].as_str()
        ),
        (Some("resolved"), Some("cart"))
    );
    assert!(last["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] == "resolved"));
    assert!(slack.accepted()[3].body["text"]
        .as_str()
        .unwrap()
        .contains("*RESOLVED*"));
    let views = al.alerts();
    assert_eq!(
        views
            .iter()
            .filter(|v| v.status == verdict::alert::lifecycle::AlertStatus::Resolved)
            .count(),
        2
    );
    assert!(
        views
            .iter()
            .all(|v| v.delivery.len() == 3 && v.delivery.iter().all(|d| d.state == "delivered")),
        "{views:#?}"
    );
}
