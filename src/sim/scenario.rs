//! Scenarios: a seeded run of a topology with rollouts (canary steps, replacement),
//! injected regressions that start at known offsets, traffic changes, and the outcome the
//! judge is expected to reach. Read by the simulator (what to emit) and the runner (what
//! to check).

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<serde_saphyr::Error>,
    },
    #[error("{path}: invalid scenario:\n  - {}", .problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

/// One scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Topology file or embedded name (default `otel-demo`).
    #[serde(default = "default_topology")]
    pub topology: String,
    /// Seed of every random choice (default 1).
    #[serde(default = "one_u64")]
    pub seed: u64,
    /// Requests per second entering the system before traffic changes.
    pub rate: f64,
    /// How long the scenario runs.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Part of the short suite (CI).
    #[serde(default)]
    pub short: bool,
    /// Environment to report into (default: name and seed, `<name>-s<seed>`).
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub rollouts: Vec<Rollout>,
    #[serde(default)]
    pub effects: Vec<Effect>,
    #[serde(default)]
    pub traffic: Vec<TrafficStep>,
    pub expect: Expect,
}

fn default_topology() -> String {
    "otel-demo".into()
}

fn one_u64() -> u64 {
    1
}

/// A new version of a service taking traffic in steps (Argo Rollouts `setWeight`). A
/// replacement is a single step to 100.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    pub service: String,
    pub version: String,
    /// Instances of the new version (default: 1 while its weight is below 100, the
    /// service's count for a replacement).
    #[serde(default)]
    pub instances: Option<u32>,
    /// Traffic weight (percent) from each offset on.
    pub steps: Vec<Step>,
}

/// From `at` on, the new version receives `weight` percent of the service's requests.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    pub weight: f64,
}

/// What an effect changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// Self time of `service@version` (optionally one operation): `factor`, `extra`,
    /// on a `fraction` of requests (tail-only when small).
    Latency,
    /// `service@version` fails a `rate` of its requests.
    Errors,
    /// Calls from `service@version` to `callee` fail in the callee (its server spans
    /// error) at `rate`; the same callee serves other callers normally.
    CalleeErrors,
    /// Calls to `service@version` take longer on the caller side only (client span
    /// longer, the server span unchanged).
    ClientDelay,
    /// Database calls from `service@version` (every service when omitted) to `database`
    /// (every database when omitted) get slower.
    DatabaseLatency,
    /// Database calls fail at `rate` (same scoping as `database_latency`).
    DatabaseErrors,
}

/// A regression or incident starting at `at` (and ending at `until`, if given).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Effect {
    pub kind: EffectKind,
    /// Service the effect belongs to; None means every service (global incident).
    #[serde(default)]
    pub service: Option<String>,
    /// Version of that service; None means every version.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    /// For `callee_errors`: the service whose server spans fail.
    #[serde(default)]
    pub callee: Option<String>,
    #[serde(default)]
    pub database: Option<String>,
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    #[serde(default, with = "humantime_serde")]
    pub until: Option<Duration>,
    /// Latency multiplier (default 1).
    #[serde(default = "one_f64")]
    pub factor: f64,
    /// Latency added (default 0).
    #[serde(default, with = "humantime_serde")]
    pub extra: Duration,
    /// Share of requests a latency effect hits (default 1; 0.03 = tail-only).
    #[serde(default = "one_f64")]
    pub fraction: f64,
    /// Failure probability of an error effect.
    #[serde(default)]
    pub rate: f64,
}

fn one_f64() -> f64 {
    1.0
}

/// From `at` on, the request rate is the scenario's rate times `factor`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficStep {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    pub factor: f64,
}

/// The outcome a correct judge reaches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The deployment that must be blamed, or none (healthy or global incident).
    #[serde(default)]
    pub culprit: Option<DeploymentRef>,
    /// The deployment whose final verdict is checked (default: the culprit, else the
    /// first rollout).
    #[serde(default)]
    pub watch: Option<DeploymentRef>,
    /// Acceptable final verdicts of the watched deployment.
    pub final_verdict: Vec<String>,
}

/// A deployment within the scenario's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRef {
    pub service: String,
    pub version: String,
}

impl Scenario {
    /// A scenario with no rollout and no effect: plain traffic at `rate`.
    pub fn steady(name: &str, seed: u64, rate: f64, duration: Duration) -> Scenario {
        Scenario {
            name: name.into(),
            description: String::new(),
            topology: name.into(),
            seed,
            rate,
            duration,
            short: false,
            environment: None,
            rollouts: Vec::new(),
            effects: Vec::new(),
            traffic: Vec::new(),
            expect: Expect {
                culprit: None,
                watch: None,
                final_verdict: Vec::new(),
            },
        }
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: p.clone(),
            source,
        })?;
        Self::from_yaml(&p, &text)
    }

    /// Parses and checks scenario text; `path` is used in messages.
    pub fn from_yaml(path: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = serde_saphyr::from_str(text).map_err(|source| ScenarioError::Parse {
            path: path.into(),
            source: Box::new(source),
        })?;
        let problems = s.problems();
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(ScenarioError::Invalid {
                path: path.into(),
                problems,
            })
        }
    }

    /// The environment this run reports into: scenario name and seed.
    pub fn environment(&self) -> String {
        self.environment
            .clone()
            .unwrap_or_else(|| format!("{}-s{}", self.name, self.seed))
    }

    /// When the first regression or incident starts (None for a healthy run).
    pub fn onset(&self) -> Option<Duration> {
        self.effects.iter().map(|e| e.at).min()
    }

    /// The deployment whose final verdict is checked.
    pub fn watched(&self) -> Option<DeploymentRef> {
        let first_rollout = || {
            self.rollouts.first().map(|r| DeploymentRef {
                service: r.service.clone(),
                version: r.version.clone(),
            })
        };
        self.expect
            .watch
            .clone()
            .or_else(|| self.expect.culprit.clone())
            .or_else(first_rollout)
    }

    /// Request rate at an offset.
    pub fn rate_at(&self, offset: Duration) -> f64 {
        let factor = self
            .traffic
            .iter()
            .filter(|t| t.at <= offset)
            .max_by_key(|t| t.at)
            .map_or(1.0, |t| t.factor);
        self.rate * factor
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.rate.is_nan() || self.rate <= 0.0 {
            p.push(format!("rate: must be above 0 (got {})", self.rate));
        }
        for (i, r) in self.rollouts.iter().enumerate() {
            if r.steps.is_empty() || r.steps.iter().any(|s| !(0.0..=100.0).contains(&s.weight)) {
                p.push(format!(
                    "rollouts[{i}].steps: at least one, weights within 0..=100"
                ));
            }
        }
        for (i, e) in self.effects.iter().enumerate() {
            let needs_rate = matches!(
                e.kind,
                EffectKind::Errors | EffectKind::CalleeErrors | EffectKind::DatabaseErrors
            );
            if needs_rate && (e.rate.is_nan() || e.rate <= 0.0 || e.rate > 1.0) {
                p.push(format!(
                    "effects[{i}].rate: an error effect needs 0 < rate <= 1"
                ));
            }
            if e.kind == EffectKind::CalleeErrors && (e.callee.is_none() || e.service.is_none()) {
                p.push(format!(
                    "effects[{i}]: callee_errors needs service (the caller) and callee"
                ));
            }
            if !(0.0..=1.0).contains(&e.fraction) || e.factor < 0.0 {
                p.push(format!(
                    "effects[{i}]: fraction within 0..=1 and factor >= 0"
                ));
            }
        }
        for v in &self.expect.final_verdict {
            if !["promote", "inconclusive", "rollback"].contains(&v.as_str()) {
                p.push(format!("expect.final_verdict: unknown verdict {v:?}"));
            }
        }
        p
    }
}

impl Rollout {
    /// Weight (0..=1) of the new version at an offset.
    pub fn weight_at(&self, offset: Duration) -> f64 {
        self.steps
            .iter()
            .filter(|s| s.at <= offset)
            .max_by_key(|s| s.at)
            .map_or(0.0, |s| s.weight / 100.0)
    }
}

impl Effect {
    /// Active at this offset.
    pub fn active(&self, offset: Duration) -> bool {
        offset >= self.at && self.until.is_none_or(|u| offset < u)
    }

    /// Applies to this service and version (None in the effect matches everything).
    pub fn matches(&self, service: &str, version: &str) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && self.version.as_deref().is_none_or(|v| v == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_loads_and_names_its_outcome() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("config/scenarios") {
            let path = entry.expect("entry").path();
            let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.expect.final_verdict.is_empty(), "{}", s.name);
            assert!(s.watched().is_some(), "{} watches no deployment", s.name);
            n += 1;
        }
        assert!(n >= 9, "only {n} scenarios");
    }

    #[test]
    fn steps_and_traffic_follow_the_latest_change() {
        let yaml = r#"
name: t
rate: 10
duration: 60s
rollouts: [{service: a, version: "2", steps: [{at: 0s, weight: 10}, {at: 30s, weight: 50}]}]
traffic: [{at: 20s, factor: 5}]
effects: [{kind: errors, service: a, version: "2", at: 40s, rate: 0.2}]
expect: {final_verdict: [rollback], culprit: {service: a, version: "2"}}
"#;
        let s = Scenario::from_yaml("t", yaml).expect("valid");
        let r = &s.rollouts[0];
        assert_eq!(r.weight_at(Duration::from_secs(5)), 0.1);
        assert_eq!(r.weight_at(Duration::from_secs(31)), 0.5);
        assert_eq!(s.rate_at(Duration::from_secs(19)), 10.0);
        assert_eq!(s.rate_at(Duration::from_secs(21)), 50.0);
        assert_eq!(s.onset(), Some(Duration::from_secs(40)));
        assert!(
            !s.effects[0].active(Duration::from_secs(39))
                && s.effects[0].active(Duration::from_secs(40))
        );
    }

    #[test]
    fn error_effect_without_rate_is_rejected() {
        let yaml = "name: t\nrate: 1\nduration: 1s\neffects: [{kind: errors, at: 1s}]\nexpect: {final_verdict: [maybe]}\n";
        let err = Scenario::from_yaml("t", yaml).unwrap_err().to_string();
        assert!(
            err.contains("effects[0].rate") && err.contains("unknown verdict"),
            "{err}"
        );
    }
}
