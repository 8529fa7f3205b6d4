//! Crash test: a child process (this test binary re-executed) runs the alerting through a
//! scripted sequence of verdicts while the parent `kill -9`s it at random moments and
//! restarts it, and switches the sinks (webhook, PagerDuty) up and down. At the end every
//! transition the script implies reached every sink, in order, and no false resolve was
//! sent (a restart's judge sees nothing for a while; the warm-up must hold resolves back).

mod support;

use rand::Rng;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::receiver::Receiver;
use support::verdicts::{reason, verdict};
use verdict::alert::config::{AlertingConfig, SinkConfig, SinkType};
use verdict::alert::Alerting;
use verdict::clock::{Clock, SystemClock};
use verdict::model::{Decision, DeploymentVerdict, Scope, Signal};

const PHASE: Duration = Duration::from_millis(2500);
/// Which alerts the judge reports in each phase: A = cart@v2 errors, B = checkout@v3
/// latency on an edge. After the last phase nothing fires.
const SCRIPT: [(bool, bool); 6] = [
    (true, false),
    (true, true),
    (false, true),
    (false, false),
    (true, false),
    (false, false),
];
/// After a (re)start the child's "judge" reports nothing for this long, as a real one
/// that has not yet re-accumulated evidence.
const BLIND: Duration = Duration::from_millis(150);
const WARMUP: Duration = Duration::from_millis(400);

fn verdicts(a: bool, b: bool) -> Vec<DeploymentVerdict> {
    let mut out = Vec::new();
    if a {
        out.push(verdict(
            "prod",
            "cart",
            "v2",
            Decision::Rollback,
            vec![reason(Signal::ErrorRate, Scope::SelfScope, None, true)],
        ));
    }
    if b {
        let r = reason(
            Signal::Latency,
            Scope::Outgoing,
            Some(("checkout", "db")),
            true,
        );
        out.push(verdict(
            "prod",
            "checkout",
            "v3",
            Decision::Rollback,
            vec![r],
        ));
    }
    out
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// The child's body: only runs when re-executed by the parent.
#[test]
#[ignore = "re-executed by crash_kill9_loses_no_transition_and_sends_no_false_resolve"]
fn crash_child_process() {
    verdict::telemetry::init_logs();
    let start: u64 = env("CRASH_SCRIPT_START").parse().unwrap();
    let cfg = AlertingConfig {
        store_path: env("CRASH_STORE").into(),
        warmup: WARMUP,
        flush_timeout: Duration::from_millis(100),
        sinks: vec![
            SinkConfig {
                kind: Some(SinkType::Webhook),
                url: Some(env("CRASH_WEBHOOK")),
                ..SinkConfig::default()
            },
            SinkConfig {
                kind: Some(SinkType::Pagerduty),
                url: Some(env("CRASH_PAGERDUTY")),
                routing_key: Some("crash-test-key".into()),
                ..SinkConfig::default()
            },
        ],
        ..AlertingConfig::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let born = clock.now();
        let al = Alerting::open(&cfg, &[], "http://verdict.test", born).unwrap();
        al.spawn_delivery(clock.clone(), tokio_util::sync::CancellationToken::new());
        loop {
            let now = clock.now();
            let phase = (now.saturating_sub(start) / PHASE.as_nanos() as u64) as usize;
            let (a, b) = SCRIPT.get(phase).copied().unwrap_or((false, false));
            let blind = now - born < BLIND.as_nanos() as u64;
            let vs = if blind { Vec::new() } else { verdicts(a, b) };
            al.update(&vs, &[], now);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

fn spawn_child(store: &std::path::Path, start: u64, hook: &str, pd: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CRASH_STORE", store)
        .env("CRASH_SCRIPT_START", start.to_string())
        .env("CRASH_WEBHOOK", hook)
        .env("CRASH_PAGERDUTY", pd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Distinct consecutive statuses per alert, in arrival order (duplicates are allowed:
/// delivery is at least once).
fn sequences(items: impl Iterator<Item = (String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, status) in items {
        let seq = out.entry(id).or_default();
        if seq.last() != Some(&status) {
            seq.push(status);
        }
    }
    out
}

fn webhook_seqs(hook: &Receiver) -> BTreeMap<String, Vec<String>> {
    let items = hook.accepted().into_iter().flat_map(|r| {
        let alerts = r.body["alerts"].as_array().cloned().unwrap_or_default();
        alerts.into_iter().map(|a| {
            (
                a["labels"]["service"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
    });
    sequences(items)
}

fn pagerduty_seqs(pd: &Receiver) -> BTreeMap<String, Vec<String>> {
    let items = pd.accepted().into_iter().map(|r| {
        (
            r.body["dedup_key"].as_str().unwrap().to_string(),
            r.body["event_action"].as_str().unwrap().to_string(),
        )
    });
    sequences(items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_kill9_loses_no_transition_and_sends_no_false_resolve() {
    let hook = Receiver::start().await;
    let pd = Receiver::pagerduty().await;
    let dir = tempfile::tempdir().unwrap();
    let start = SystemClock.now();
    let end = Instant::now() + PHASE * SCRIPT.len() as u32 + Duration::from_millis(500);
    let mut rng = rand::rng();
    let mut kills = 0;
    let mut child = spawn_child(dir.path(), start, &hook.url, &pd.url);
    let mut short = true;
    while Instant::now() < end {
        // Alternate short lives (killed in the blind/warm-up window) and longer ones.
        let life = if short {
            rng.random_range(30..400)
        } else {
            rng.random_range(650..1200)
        };
        short = !short;
        tokio::time::sleep(Duration::from_millis(life)).await;
        hook.set_down(rng.random_bool(0.3));
        pd.set_down(rng.random_bool(0.3));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        child = spawn_child(dir.path(), start, &hook.url, &pd.url);
    }
    hook.set_down(false);
    pd.set_down(false);
    let want_services: BTreeMap<String, Vec<String>> = [
        (
            "cart".to_string(),
            vec!["firing", "resolved", "firing", "resolved"],
        ),
        ("checkout".to_string(), vec!["firing", "resolved"]),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.into_iter().map(String::from).collect()))
    .collect();
    let t0 = Instant::now();
    while webhook_seqs(&hook) != want_services
        || pagerduty_seqs(&pd).values().map(Vec::len).sum::<usize>() < 6
    {
        if t0.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "crash test: {kills} kill -9, webhook {} requests, pagerduty {} requests",
        hook.received().len(),
        pd.received().len()
    );
    assert!(kills >= 10, "only {kills} kills");
    assert_eq!(webhook_seqs(&hook), want_services, "webhook transitions");
    let pd_seqs = pagerduty_seqs(&pd);
    let mut got: Vec<Vec<String>> = pd_seqs.values().cloned().collect();
    got.sort_by_key(Vec::len);
    let want: Vec<Vec<String>> = vec![
        vec!["trigger".into(), "resolve".into()],
        vec![
            "trigger".into(),
            "resolve".into(),
            "trigger".into(),
            "resolve".into(),
        ],
    ];
    assert_eq!(
        got, want,
        "pagerduty transitions per dedup_key: {pd_seqs:?}"
    );
    // The store holds nothing undelivered at the end.
    let al = Alerting::open(
        &AlertingConfig {
            store_path: dir.path().into(),
            ..AlertingConfig::default()
        },
        &[],
        "",
        SystemClock.now(),
    )
    .unwrap();
    assert!(al
        .alerts()
        .iter()
        .all(|a| a.status == verdict::alert::lifecycle::AlertStatus::Resolved));
}
