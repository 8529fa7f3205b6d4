//! Replaying the real Online Boutique fault cases through `verdict replay`'s engine, in
//! process and faster than real time: the analyzer and judge run on a clock that follows
//! the recorded data, so three minutes of traces take well under a second and every run
//! gives the same answer. The outcome per case is judged as in the real-time replay.

use super::replay::{load_cases, Case};
use super::report::Outcome;
use crate::config::Config;
use crate::judge::config::JudgeConfig;
use crate::judge::replay::Replayer;
use crate::model::{Decision, DeploymentVerdict, UnixNanos};
use anyhow::Context;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

const SECOND: u64 = 1_000_000_000;
/// Data time ticked after the last line, so held traces are judged.
const DRAIN: u64 = 30 * SECOND;

/// Replays every case of `dir` with the analyzer's default configuration.
pub fn run_cases(dir: &Path) -> anyhow::Result<Vec<Outcome>> {
    let config = Config::default();
    load_cases(dir)?
        .iter()
        .map(|c| replay_case(dir, c, &config))
        .collect()
}

/// Replays one case and compares the verdicts with its known culprit.
pub fn replay_case(dir: &Path, case: &Case, config: &Config) -> anyhow::Result<Outcome> {
    let judge_cfg = JudgeConfig {
        decision_log: String::new(),
        ..config.judge.clone()
    };
    let mut replayer = Replayer::new(config, &judge_cfg)?;
    let mut first_rollback: BTreeMap<String, UnixNanos> = BTreeMap::new();
    let mut note = |v: &DeploymentVerdict, now: UnixNanos| {
        if v.verdict == Decision::Rollback && v.environment == case.environment {
            first_rollback
                .entry(format!("{}@{}", v.service, v.version))
                .or_insert(now);
        }
    };
    let path = dir.join(&case.file);
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(file));
    let mut line = Vec::new();
    let mut last = 0;
    while reader
        .read_until(b'\n', &mut line)
        .with_context(|| format!("reading {}", path.display()))?
        > 0
    {
        replayer.line(&line, &mut note);
        last = replayer.now();
        line.clear();
    }
    replayer.advance(last + DRAIN, &mut note);
    let inject = crate::clock::parse_rfc3339(&case.inject_time)
        .with_context(|| format!("inject_time {:?}", case.inject_time))?;
    let culprit = format!("{}@{}", case.service, case.bad_version);
    let verdict = replayer.judge().verdict(
        Some(&case.environment),
        &case.service,
        &case.bad_version,
        last,
    );
    Ok(outcome(
        case,
        &culprit,
        &first_rollback,
        inject,
        verdict.ok(),
    ))
}

fn outcome(
    case: &Case,
    culprit: &str,
    first_rollback: &BTreeMap<String, UnixNanos>,
    inject: UnixNanos,
    verdict: Option<DeploymentVerdict>,
) -> Outcome {
    let delay = first_rollback
        .get(culprit)
        .map(|t| t.saturating_sub(inject) as f64 / SECOND as f64);
    let wrong: Vec<String> = first_rollback
        .keys()
        .filter(|k| *k != culprit)
        .cloned()
        .collect();
    Outcome {
        name: case.file.trim_end_matches(".jsonl.gz").to_string(),
        environment: case.environment.clone(),
        expected_culprit: Some(culprit.to_string()),
        detected: delay.is_some(),
        delay_to_rollback_s: delay,
        delay_to_alert_s: None,
        pass: wrong.is_empty(),
        wrong_culprits: wrong,
        false_alerts: 0,
        final_verdict: verdict.as_ref().map(|v| v.verdict.as_str().to_string()),
        expected_final: vec!["rollback".into()],
        evidence: verdict
            .iter()
            .flat_map(|v| v.reasons.iter().map(|r| r.summary.clone()))
            .collect(),
        candidate_rps: None,
        api_errors: 0,
        sink_delays_s: Default::default(),
    }
}
