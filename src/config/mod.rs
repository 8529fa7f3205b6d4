//! Configuration: Collector-style YAML with `${env:VAR}` expansion, strict keys, defaults
//! for everything omitted, and validation that reports every problem at once. Each
//! component owns its section type; this module assembles and checks the whole.

pub mod env;

use serde::{Deserialize, Serialize};
use std::path::Path;

pub use crate::alert::config::AlertingConfig;
pub use crate::analysis::config::StateConfig;
pub use crate::analysis::graph::config::GraphConfig;
pub use crate::api::config::ApiConfig;
pub use crate::judge::config::JudgeConfig;
pub use crate::receiver::config::ReceiverConfig;

/// The embedded default configuration (`config/default.yaml`), used when no file is given.
pub const DEFAULT_YAML: &str = include_str!("../../config/default.yaml");

/// The whole configuration. Every section and field is optional in a file. Keys are strict:
/// instead of `deny_unknown_fields` (which stops at the first), every key serde ignores is
/// collected and reported as an error, so all unknown keys are listed at once.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// OTLP receivers: addresses, limits, ingest queue.
    pub receivers: ReceiverConfig,
    /// Per-version state: time slots, horizon, caps, retirement.
    pub state: StateConfig,
    /// Dependency graph: pairing store and edge caps.
    pub graph: GraphConfig,
    /// The judge: statistics, margins, deployment lifecycle, decision log.
    pub judge: JudgeConfig,
    /// Alerts: sinks, routing, outbox.
    pub alerting: AlertingConfig,
    /// HTTP API and dashboard.
    pub api: ApiConfig,
}

/// Something that checks its own values and appends every problem found, prefixed with
/// its path in the file (e.g. `receivers.max_request_bytes`).
pub trait Validate {
    fn validate(&self, path: &str, problems: &mut Vec<String>);
}

impl Validate for Config {
    fn validate(&self, _path: &str, problems: &mut Vec<String>) {
        self.receivers.validate("receivers", problems);
        self.state.validate("state", problems);
        self.graph.validate("graph", problems);
        self.judge.validate("judge", problems);
        self.alerting.validate("alerting", problems);
        self.api.validate("api", problems);
    }
}

/// Every problem found in a configuration, in file order where possible.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Loads a file (or the embedded default when `path` is None), expanding `${env:VAR}`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| ConfigErrors(vec![format!("cannot read {}: {e}", p.display())]))?,
            None => DEFAULT_YAML.to_string(),
        };
        Self::from_yaml(&text, &|n| std::env::var(n).ok())
    }

    /// Parses configuration text; collects unknown keys, type errors, unset variables and
    /// failed checks, and returns them all together.
    pub fn from_yaml(
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let value: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                ConfigErrors(vec![format!(
                    "YAML: {e} (inside [ ] or {{ }}, quote a ${{env:...}} reference)"
                )])
            })?
        };
        let mut value = match value {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            v => v,
        };
        let mut problems = Vec::new();
        env::expand_values(&mut value, lookup, "", &mut problems);
        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        let config = deserialize_sections(value, &mut problems);
        if let Some(c) = &config {
            c.validate("", &mut problems);
        }
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(ConfigErrors(problems)),
        }
    }
}

/// Deserializes section by section so one bad section does not hide the others' problems;
/// unknown keys anywhere are all listed.
fn deserialize_sections(value: serde_json::Value, problems: &mut Vec<String>) -> Option<Config> {
    let serde_json::Value::Object(map) = value else {
        problems.push("the configuration must be a mapping of sections".into());
        return None;
    };
    let mut config = Config::default();
    let mut ok = true;
    for (key, section) in map {
        let result = match key.as_str() {
            "receivers" => section_into(&key, section, problems).map(|s| config.receivers = s),
            "state" => section_into(&key, section, problems).map(|s| config.state = s),
            "graph" => section_into(&key, section, problems).map(|s| config.graph = s),
            "judge" => section_into(&key, section, problems).map(|s| config.judge = s),
            "alerting" => section_into(&key, section, problems).map(|s| config.alerting = s),
            "api" => section_into(&key, section, problems).map(|s| config.api = s),
            other => {
                problems.push(format!(
                    "{other}: unknown section (known: receivers, state, graph, judge, alerting, api)"
                ));
                None
            }
        };
        ok &= result.is_some();
    }
    ok.then_some(config)
}

fn section_into<T: serde::de::DeserializeOwned>(
    key: &str,
    value: serde_json::Value,
    problems: &mut Vec<String>,
) -> Option<T> {
    let value = if value.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        value
    };
    let mut unknown = Vec::new();
    let result: Result<T, _> =
        serde_ignored::deserialize(value, |path| unknown.push(path.to_string()));
    for p in &unknown {
        problems.push(format!("{key}.{p}: unknown key"));
    }
    match result {
        Ok(v) if unknown.is_empty() => Some(v),
        Ok(_) => None,
        Err(e) => {
            problems.push(format!("{key}: {e}"));
            None
        }
    }
}

/// An optional text field that also takes a number (`routing_key: 12345`, or a key of
/// digits from `${env:...}`), kept as written.
pub fn opt_string_or_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    use serde::Deserialize;
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a string, found {other}"
            )))
        }
    })
}

/// Checks that `value` is an `http` or `https` URL.
pub fn check_url(path: &str, value: &str, problems: &mut Vec<String>) {
    if reqwest::Url::parse(value).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
        problems.push(format!("{path}: {value:?} is not an http(s) URL"));
    }
}

/// Checks that `value` is a socket address (`ip:port`) or `host name:port`.
pub fn check_addr(path: &str, field: &str, value: &str, problems: &mut Vec<String>) {
    if value.parse::<std::net::SocketAddr>().is_err() && !is_host_port(value) {
        problems.push(format!(
            "{path}.{field}: {value:?} is not an address like 0.0.0.0:4317 or localhost:4317"
        ));
    }
}

/// `name:port` with a DNS host name (resolved when the listener binds).
fn is_host_port(value: &str) -> bool {
    let Some((host, port)) = value.rsplit_once(':') else {
        return false;
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    port.parse::<u16>().is_ok()
        && host.len() <= 253
        && host.split('.').all(label)
        && !host.chars().all(|c| c.is_ascii_digit() || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn embedded_default_is_valid() {
        Config::from_yaml(DEFAULT_YAML, &none).expect("default config");
    }

    #[test]
    fn empty_file_takes_defaults() {
        let c = Config::from_yaml("", &none).unwrap();
        assert_eq!(c.api.addr, ApiConfig::default().addr);
    }

    #[test]
    fn reports_all_unknown_keys_and_sections_at_once() {
        let err = Config::from_yaml("bogus: 1\napi:\n  nope: 2\n  also: 3\n", &none).unwrap_err();
        let all = err.0.join("\n");
        assert!(all.contains("bogus: unknown section"), "{all}");
        assert!(all.contains("api.nope: unknown key"), "{all}");
        assert!(all.contains("api.also: unknown key"), "{all}");
    }

    #[test]
    fn env_references_expand_in_values_only() {
        let lookup = |n: &str| match n {
            "EDGES" => Some("5000".to_string()),
            "KEY" => Some("00123".to_string()),
            "URL" => Some("http://am:9093/#frag: x".to_string()),
            _ => None,
        };
        let yaml = "# url: ${env:UNSET_IN_A_COMMENT}\n\
            graph:\n  max_edges: ${env:EDGES}\n\
            alerting:\n  sinks:\n\
            \x20   - {type: alertmanager, url: \"${env:URL}\"}\n\
            \x20   - {type: pagerduty, routing_key: \"${env:KEY}\"}\n";
        let c = Config::from_yaml(yaml, &lookup).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.graph.max_edges, 5000);
        let sinks = &c.alerting.sinks;
        assert_eq!(sinks[0].url.as_deref(), Some("http://am:9093/#frag: x"));
        assert_eq!(sinks[1].routing_key.as_deref(), Some("00123"));
        let digits = "alerting:\n  sinks:\n    - {type: pagerduty, routing_key: 12345}\n";
        let c = Config::from_yaml(digits, &none).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.alerting.sinks[0].routing_key.as_deref(), Some("12345"));
    }

    #[test]
    fn addresses_take_ips_and_host_names() {
        let problems = |addr: &str| {
            let mut p = Vec::new();
            check_addr("api", "addr", addr, &mut p);
            p.len()
        };
        for ok in [
            "0.0.0.0:4317",
            "[::]:4317",
            "localhost:4319",
            "verdict.obs.svc:4317",
        ] {
            assert_eq!(problems(ok), 0, "{ok} refused");
        }
        for bad in [
            "localhost",
            ":4317",
            "host:99999",
            "-bad:1",
            "a..b:1",
            "300.1.1.1:80",
            "x y:1",
        ] {
            assert_eq!(problems(bad), 1, "{bad} accepted");
        }
    }

    #[test]
    fn unset_references_are_reported_with_their_path() {
        let err = Config::from_yaml("api:\n  addr: ${env:NOPE}\n", &none).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(
            err.0[0].starts_with("api.addr: environment variable NOPE is not set"),
            "{err}"
        );
    }

    #[test]
    fn every_file_in_config_dir_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            // Files for other programs (Collector, Argo, Flagger) live beside ours.
            if !name.starts_with("verdict") && name != "default.yaml" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let lookup = |_: &str| Some("x".to_string());
            Config::from_yaml(&text, &lookup).unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
        assert!(n >= 1);
    }
}
