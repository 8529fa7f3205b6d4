//! Restart behaviour in-process: firing alerts survive a reopen and are not resolved
//! during the warm-up (even though the judge reports nothing yet), undelivered
//! notifications are sent after the restart under the same identity, and a torn or
//! corrupt store tail is recovered without a panic.

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::receiver::Receiver;
use support::verdicts::{reason, verdict};
use verdict::alert::config::{AlertingConfig, SinkConfig, SinkType};
use verdict::alert::lifecycle::AlertStatus;
use verdict::alert::Alerting;
use verdict::clock::{Clock, ManualClock};
use verdict::model::{Decision, Scope, Signal};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_800_000_000 * S;

fn config(dir: &std::path::Path, url: &str) -> AlertingConfig {
    AlertingConfig {
        store_path: dir.to_path_buf(),
        warmup: Duration::from_secs(60),
        sinks: vec![SinkConfig {
            kind: Some(SinkType::Webhook),
            url: Some(url.into()),
            ..SinkConfig::default()
        }],
        ..AlertingConfig::default()
    }
}

fn bad() -> Vec<verdict::model::DeploymentVerdict> {
    vec![verdict(
        "prod",
        "cart",
        "v2",
        Decision::Rollback,
        vec![reason(Signal::ErrorRate, Scope::SelfScope, None, true)],
    )]
}

async fn wait_accepted(r: &Receiver, n: usize) {
    for _ in 0..500 {
        if r.accepted().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("receiver got {} of {n}", r.accepted().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_firing_through_warmup_and_delivers_the_backlog() {
    let hook = Receiver::start().await;
    hook.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &hook.url);
    // First life: fires while the sink is down (nothing delivered), no delivery workers.
    let first = Alerting::open(
        &AlertingConfig {
            warmup: Duration::ZERO,
            ..cfg.clone()
        },
        &[],
        "http://v",
        T0,
    )
    .unwrap();
    first.update(&bad(), &[], T0 + S);
    let fp = first.alerts()[0].fingerprint.clone();
    drop(first);

    // Second life: the judge sees nothing yet; within the warm-up nothing resolves.
    hook.set_down(false);
    let clock = Arc::new(ManualClock::new(T0 + 10 * S));
    let second = Alerting::open(&cfg, &[], "http://v", clock.now()).unwrap();
    second.spawn_delivery(clock.clone(), tokio_util::sync::CancellationToken::new());
    second.update(&[], &[], T0 + 20 * S);
    wait_accepted(&hook, 1).await;
    let got = hook.accepted();
    assert_eq!(
        got[0].body["alerts"][0]["fingerprint"],
        fp.as_str(),
        "same identity after restart"
    );
    assert_eq!(got[0].body["status"], "firing");
    assert_eq!(second.alerts()[0].status, AlertStatus::Firing);
    // After the warm-up an absent regression resolves (once).
    second.update(&[], &[], T0 + 71 * S);
    wait_accepted(&hook, 2).await;
    assert_eq!(hook.accepted()[1].body["status"], "resolved");
    assert_eq!(second.alerts()[0].status, AlertStatus::Resolved);
}

#[test]
fn torn_and_corrupt_store_tails_recover_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "http://127.0.0.1:9/");
    let al = Alerting::open(&cfg, &[], "http://v", T0).unwrap();
    al.update(&bad(), &[], T0 + S);
    drop(al);
    let log = dir.path().join("alerts.log");
    let full = std::fs::read(&log).unwrap();
    // A partial frame appended by a write cut short, then garbage.
    let mut torn = full.clone();
    torn.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&log, &torn).unwrap();
    let al = Alerting::open(&cfg, &[], "http://v", T0 + 2 * S).unwrap();
    assert_eq!(al.alerts().len(), 1, "state before the torn tail is kept");
    drop(al);
    // Corrupt the first frame's payload: nothing after it is trusted; the store opens
    // empty and stays usable.
    let mut bad_bytes = std::fs::read(&log).unwrap();
    bad_bytes[12] ^= 0xff;
    std::fs::write(&log, &bad_bytes).unwrap();
    let al = Alerting::open(&cfg, &[], "http://v", T0 + 3 * S).unwrap();
    assert!(al.alerts().is_empty());
    al.update(&bad(), &[], T0 + 4 * S);
    drop(al);
    let al = Alerting::open(&cfg, &[], "http://v", T0 + 5 * S).unwrap();
    assert_eq!(al.alerts().len(), 1);
}
