//! End to end against a real Alertmanager: a rollback verdict becomes an alert with
//! exactly the contract's labels in `GET /api/v2/alerts` within seconds, with the same
//! fingerprint verdict computes; when the regression clears it resolves there.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use support::alertmanager::Alertmanager;
use support::verdicts::{reason, verdict};
use verdict::alert::config::{AlertingConfig, SinkConfig, SinkType};
use verdict::alert::Alerting;
use verdict::clock::{Clock, SystemClock};
use verdict::model::{Decision, Scope, Signal};

fn labels(pairs: &[(&str, &str)]) -> serde_json::Value {
    serde_json::Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect(),
    )
}

/// Polls Alertmanager until `pred` holds on its alerts (at most 20 s).
async fn wait_for(
    am: &Alertmanager,
    what: &str,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let alerts = am.alerts().await;
        if pred(&alerts) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{what}: Alertmanager has {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_fires_in_alertmanager_and_resolves_when_cleared() {
    let am = Alertmanager::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = AlertingConfig {
        store_path: dir.path().to_path_buf(),
        warmup: Duration::ZERO,
        sinks: vec![SinkConfig {
            kind: Some(SinkType::Alertmanager),
            url: Some(am.url.clone()),
            repeat_interval: Some(Duration::from_secs(1)),
            ..SinkConfig::default()
        }],
        ..AlertingConfig::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let alerting = Alerting::open(&cfg, &[], "http://verdict.test:4319", clock.now()).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let delivery = alerting.spawn_delivery(clock.clone(), shutdown.clone());

    let bad = verdict(
        "prod",
        "checkout",
        "v2",
        Decision::Rollback,
        vec![
            reason(
                Signal::ErrorRate,
                Scope::Outgoing,
                Some(("checkout", "payment")),
                true,
            ),
            reason(Signal::Coverage, Scope::SelfScope, None, false),
        ],
    );
    alerting.update(std::slice::from_ref(&bad), &[], clock.now());
    let want = labels(&[
        ("alertname", "DeploymentRegression"),
        ("severity", "critical"),
        ("environment", "prod"),
        ("service", "checkout"),
        ("version", "v2"),
        ("baseline_version", "v1"),
        ("signal", "error_rate"),
        ("scope", "outgoing"),
        ("caller", "checkout"),
        ("callee", "payment"),
    ]);
    let took = wait_for(&am, "firing", |a| a.len() == 1 && a[0]["labels"] == want).await;
    eprintln!("alertmanager: alert visible {took:?} after update");
    let shown = &am.alerts().await[0];
    assert_eq!(shown["status"]["state"], "active");
    assert_eq!(
        shown["fingerprint"],
        alerting.alerts()[0].fingerprint.as_str(),
        "same fingerprint as Alertmanager's"
    );
    assert_eq!(
        shown["annotations"]["link"],
        "http://verdict.test:4319/#/deployments/prod/checkout/v2"
    );

    // Still firing a few re-sends later (endsAt keeps moving ahead).
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        alerting.update(std::slice::from_ref(&bad), &[], clock.now());
    }
    assert_eq!(am.alerts().await.len(), 1);

    // The candidate stops serving: its verdict is gone, the alert resolves.
    alerting.update(&[], &[], clock.now());
    let took = wait_for(&am, "resolved", |a| a.is_empty()).await;
    eprintln!("alertmanager: alert resolved {took:?} after update");
    assert_eq!(alerting.alerts()[0].delivery[0].state, "delivered");
    shutdown.cancel();
    delivery.await.unwrap();
}
