//! Configuration of the alerting (section `alerting`): where the durable outbox lives,
//! the lifecycle timings, severity mapping, the sinks and which alerts each one receives.

use crate::config::Validate;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Section `alerting`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AlertingConfig {
    /// Directory of the durable alert store (alert state and undelivered notifications).
    /// Default `./verdict-data/alerts`.
    pub store_path: PathBuf,
    /// After a restart, firing alerts are not resolved for this long, so that a judge that
    /// has not yet re-accumulated evidence causes no false "resolved". Default `2m`.
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    /// Resolved alerts stay listed in `/api/v1/alerts` this long. Default `15m`.
    #[serde(with = "humantime_serde")]
    pub resolved_retention: Duration,
    /// Most alerts (firing and recently resolved) kept; new alerts past it are counted and
    /// dropped. Default `10000`.
    pub max_alerts: usize,
    /// Store log size that triggers compaction into a snapshot. Default `4194304` (4 MiB).
    pub compact_bytes: u64,
    /// Notifications older than this are given up (counted as dropped). Default `24h`.
    #[serde(with = "humantime_serde")]
    pub max_notification_age: Duration,
    /// On shutdown, delivery keeps going this long; the rest stays in the store. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub flush_timeout: Duration,
    /// Severity of a deployment regression, first matching rule wins.
    pub severity: SeverityConfig,
    /// Dead man's switch: an always-firing alert re-sent periodically.
    pub watchdog: WatchdogConfig,
    /// Where alerts go. Default none (`--webhook URL` adds webhook sinks).
    pub sinks: Vec<SinkConfig>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            store_path: PathBuf::from("./verdict-data/alerts"),
            warmup: Duration::from_secs(120),
            resolved_retention: Duration::from_secs(900),
            max_alerts: 10_000,
            compact_bytes: 4 << 20,
            max_notification_age: Duration::from_secs(24 * 3600),
            flush_timeout: Duration::from_secs(5),
            severity: SeverityConfig::default(),
            watchdog: WatchdogConfig::default(),
            sinks: Vec::new(),
        }
    }
}

/// `alerting.severity`: maps a regression to `critical` or `warning`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SeverityConfig {
    /// Severity when no rule matches. Default `critical`.
    pub default: String,
    /// Severity of alerts that blame no deployment (`GlobalRegression`). Default `warning`.
    pub incidents: String,
    /// Rules tried in order; every given field must match. Default none.
    pub rules: Vec<SeverityRule>,
}

impl Default for SeverityConfig {
    fn default() -> Self {
        Self {
            default: "critical".into(),
            incidents: "warning".into(),
            rules: Vec::new(),
        }
    }
}

/// One severity rule: fields left out match anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SeverityRule {
    /// Environment to match. Default any.
    pub environment: Option<String>,
    /// Signal to match (`error_rate`, `latency`). Default any.
    pub signal: Option<String>,
    /// Scope to match (`self`, `outgoing`, `incoming`, `path`). Default any.
    pub scope: Option<String>,
    /// Severity given: `critical` or `warning`. Required: a rule without it fails
    /// validation.
    pub severity: String,
}

/// `alerting.watchdog`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WatchdogConfig {
    /// Whether the `VerdictWatchdog` alert is sent. Default `false`.
    pub enabled: bool,
    /// How often it is re-sent. Default `1m`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: Duration::from_secs(60),
        }
    }
}

/// The kinds of sink (architecture.md section 2).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SinkType {
    Webhook,
    Alertmanager,
    Pagerduty,
    Slack,
}

impl SinkType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Alertmanager => "alertmanager",
            Self::Pagerduty => "pagerduty",
            Self::Slack => "slack",
        }
    }
}

/// One entry of `alerting.sinks`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SinkConfig {
    /// `webhook`, `alertmanager`, `pagerduty` or `slack`. Required.
    #[serde(rename = "type")]
    pub kind: Option<SinkType>,
    /// Name in metrics and the API; it also keys undelivered notifications in the store.
    /// Default `{type}-{index}`.
    pub name: Option<String>,
    /// Webhook/Slack URL; Alertmanager base URL; PagerDuty endpoint (default
    /// `https://events.pagerduty.com`). Required except for PagerDuty.
    pub url: Option<String>,
    /// PagerDuty integration (routing) key. Required for `pagerduty`.
    #[serde(deserialize_with = "crate::config::opt_string_or_number")]
    pub routing_key: Option<String>,
    /// Re-notification interval while an alert fires. Default `1m` for Alertmanager (its
    /// alerts carry `endsAt` = now + 4 x this), `4h` for the others.
    #[serde(with = "humantime_serde::option")]
    pub repeat_interval: Option<Duration>,
    /// Timeout of one request. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Bounded in-memory queue; when full the oldest notification is dropped and counted.
    /// Default `10000`.
    pub queue_capacity: usize,
    /// Most requests per `rate_window`. Default `120` for PagerDuty, unlimited otherwise.
    pub rate_limit: Option<u32>,
    /// Window of `rate_limit`. Default `1m`.
    #[serde(with = "humantime_serde")]
    pub rate_window: Duration,
    /// PagerDuty only: send a change event (deployment marker) when a deployment first
    /// appears in the judge's list. Default `false`.
    pub change_events: bool,
    /// Which alerts this sink receives. Default all.
    pub route: RouteConfig,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            kind: None,
            name: None,
            url: None,
            routing_key: None,
            repeat_interval: None,
            timeout: Duration::from_secs(10),
            queue_capacity: 10_000,
            rate_limit: None,
            rate_window: Duration::from_secs(60),
            change_events: false,
            route: RouteConfig::default(),
        }
    }
}

impl SinkConfig {
    /// A webhook sink for `url` (what `--webhook URL` adds).
    pub fn webhook(url: &str) -> Self {
        Self {
            kind: Some(SinkType::Webhook),
            url: Some(url.to_string()),
            ..Self::default()
        }
    }

    /// The re-notification interval in force for this sink.
    pub fn repeat(&self) -> Duration {
        self.repeat_interval.unwrap_or(match self.kind {
            Some(SinkType::Alertmanager) => Duration::from_secs(60),
            _ => Duration::from_secs(4 * 3600),
        })
    }

    /// The request limit per window in force, if any.
    pub fn rate(&self) -> Option<u32> {
        match (self.rate_limit, self.kind) {
            (Some(n), _) => Some(n),
            (None, Some(SinkType::Pagerduty)) => Some(120),
            _ => None,
        }
    }
}

/// `alerting.sinks[].route`: empty lists match everything.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RouteConfig {
    /// Environments sent to this sink. Default all.
    pub environments: Vec<String>,
    /// Severities sent to this sink. Default all.
    pub severities: Vec<String>,
    /// Alert names sent (`DeploymentRegression`, `GlobalRegression`, `VerdictWatchdog`).
    /// Default all.
    pub alertnames: Vec<String>,
}

impl RouteConfig {
    /// Whether an alert with these labels goes to the sink.
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        let ok = |list: &Vec<String>, key: &str| {
            list.is_empty() || labels.get(key).is_some_and(|v| list.iter().any(|x| x == v))
        };
        ok(&self.environments, "environment")
            && ok(&self.severities, "severity")
            && ok(&self.alertnames, "alertname")
    }
}

fn check_severity(path: &str, value: &str, problems: &mut Vec<String>) {
    if value != "critical" && value != "warning" {
        problems.push(format!("{path}: {value:?} is not critical or warning"));
    }
}

impl Validate for AlertingConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        if self.store_path.as_os_str().is_empty() {
            problems.push(format!("{path}.store_path: must not be empty"));
        }
        if self.max_alerts == 0 {
            problems.push(format!("{path}.max_alerts: must be at least 1"));
        }
        if self.watchdog.enabled && self.watchdog.interval.is_zero() {
            problems.push(format!("{path}.watchdog.interval: must be above zero"));
        }
        check_severity(
            &format!("{path}.severity.default"),
            &self.severity.default,
            problems,
        );
        check_severity(
            &format!("{path}.severity.incidents"),
            &self.severity.incidents,
            problems,
        );
        for (i, r) in self.severity.rules.iter().enumerate() {
            check_severity(
                &format!("{path}.severity.rules[{i}].severity"),
                &r.severity,
                problems,
            );
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.sinks.iter().enumerate() {
            s.validate(&format!("{path}.sinks[{i}]"), problems);
            if !names.insert(sink_name(s, i)) {
                problems.push(format!(
                    "{path}.sinks[{i}].name: {:?} is used twice",
                    sink_name(s, i)
                ));
            }
        }
    }
}

impl Validate for SinkConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        let Some(kind) = self.kind else {
            problems.push(format!(
                "{path}.type: required (webhook, alertmanager, pagerduty or slack)"
            ));
            return;
        };
        match (&self.url, kind) {
            (Some(u), _) => crate::config::check_url(&format!("{path}.url"), u, problems),
            (None, SinkType::Pagerduty) => {}
            (None, _) => problems.push(format!("{path}.url: required for {}", kind.as_str())),
        }
        if kind == SinkType::Pagerduty && self.routing_key.as_deref().is_none_or(str::is_empty) {
            problems.push(format!("{path}.routing_key: required for pagerduty"));
        }
        if self.queue_capacity == 0 {
            problems.push(format!("{path}.queue_capacity: must be at least 1"));
        }
        if self.repeat().is_zero() || self.timeout.is_zero() || self.rate_window.is_zero() {
            problems.push(format!(
                "{path}: repeat_interval, timeout and rate_window must be above zero"
            ));
        }
        if self.rate_limit == Some(0) {
            problems.push(format!("{path}.rate_limit: must be at least 1"));
        }
    }
}

/// The name a sink goes by: its `name`, else `{type}-{index}`.
pub fn sink_name(s: &SinkConfig, index: usize) -> String {
    s.name
        .clone()
        .unwrap_or_else(|| format!("{}-{index}", s.kind.map_or("sink", SinkType::as_str)))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_sinks_and_reports_every_problem() {
        let yaml = "alerting:\n  warmup: 30s\n  sinks:\n    - type: alertmanager\n      url: http://am:9093\n    - type: pagerduty\n    - type: slack\n      url: nope\n    - url: http://x\n";
        let err = Config::from_yaml(yaml, &none).unwrap_err().0.join("\n");
        assert!(
            err.contains("alerting.sinks[1].routing_key: required"),
            "{err}"
        );
        assert!(err.contains("alerting.sinks[2].url: \"nope\""), "{err}");
        assert!(err.contains("alerting.sinks[3].type: required"), "{err}");
        let ok = "alerting:\n  warmup: 30s\n  sinks:\n    - type: alertmanager\n      url: http://am:9093\n      route:\n        environments: [prod]\n";
        let c = Config::from_yaml(ok, &none).unwrap();
        assert_eq!(c.alerting.warmup, std::time::Duration::from_secs(30));
        assert_eq!(
            c.alerting.sinks[0].repeat(),
            std::time::Duration::from_secs(60)
        );
    }

    #[test]
    fn route_matches_on_every_given_field() {
        let r = super::RouteConfig {
            environments: vec!["prod".into()],
            severities: vec![],
            alertnames: vec!["DeploymentRegression".into()],
        };
        let mut l = std::collections::BTreeMap::new();
        l.insert("environment".to_string(), "prod".to_string());
        l.insert("alertname".to_string(), "DeploymentRegression".to_string());
        assert!(r.matches(&l));
        l.insert("environment".to_string(), "dev".to_string());
        assert!(!r.matches(&l));
    }
}
