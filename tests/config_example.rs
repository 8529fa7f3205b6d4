//! `config/verdict-example.yaml` and `docs/configuration.md` against the code: the example
//! loads through the same path as `verdict validate` with its values read as written, and
//! the reference documents every section, key, default and `verdict serve` flag that exists,
//! every key the example uses, and nothing that does not exist.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use verdict::alert::config::{SeverityRule, SinkConfig, SinkType};
use verdict::config::Config;

const PAGERDUTY_KEY: &str = "01234567890123456789012345678901";
const SLACK_PATH: &str = "T0000/B0000/abcdefXYZ";

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The example's text with every `${env:...}` reference given a value.
fn example_value() -> Value {
    let text =
        verdict::config::env::expand(&read("config/verdict-example.yaml"), &|_| Some("x".into()))
            .expect("expand");
    serde_saphyr::from_str(&text).expect("example is YAML")
}

/// Every path in `v` below `prefix` (arrays of mappings as `path[]`) into `paths`, and each
/// leaf (scalar, null or list of scalars) with its value into `leaves`.
fn walk(
    prefix: &str,
    v: &Value,
    paths: &mut BTreeSet<String>,
    leaves: &mut BTreeMap<String, Value>,
) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                paths.insert(p.clone());
                walk(&p, child, paths, leaves);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for item in items {
                walk(&format!("{prefix}[]"), item, paths, leaves);
            }
        }
        leaf => {
            leaves.insert(prefix.to_string(), leaf.clone());
        }
    }
}

/// The default configuration as YAML sees it, with one default sink and one default
/// severity rule so that the keys of list entries are included.
fn default_value() -> Value {
    let mut v = serde_json::to_value(Config::default()).unwrap();
    let alerting = v.get_mut("alerting").unwrap();
    alerting["sinks"] = Value::Array(vec![serde_json::to_value(SinkConfig::default()).unwrap()]);
    alerting["severity"]["rules"] =
        Value::Array(vec![serde_json::to_value(SeverityRule::default()).unwrap()]);
    v
}

/// The documentation's table rows keyed by their first cell (without backticks), each with
/// its cells.
fn doc_rows(doc: &str) -> BTreeMap<String, Vec<String>> {
    doc.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            (cells[0].trim_matches('`').to_string(), cells)
        })
        .collect()
}

/// Whether a documented default (one table cell) says the same as the code's default.
fn default_matches(want: &Value, cell: &str) -> bool {
    let cell = cell.trim().trim_matches('`');
    match want {
        Value::String(s) => {
            match (
                humantime::parse_duration(s),
                humantime::parse_duration(cell),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => s == cell,
            }
        }
        Value::Number(n) => cell.parse::<f64>().ok() == n.as_f64(),
        Value::Bool(b) => cell == b.to_string(),
        Value::Array(_) => serde_json::from_str::<Value>(cell).ok().as_ref() == Some(want),
        _ => true,
    }
}

/// Nothing to compare: the default depends on the sink type, or is "none", "all" or
/// "required".
fn no_fixed_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[test]
fn example_loads_through_validate_path_with_values_as_written() {
    // The only test here that touches the process environment.
    std::env::set_var("PAGERDUTY_ROUTING_KEY", PAGERDUTY_KEY);
    std::env::set_var("SLACK_WEBHOOK_PATH", SLACK_PATH);
    std::env::remove_var("VERDICT_DATA_DIR");
    let path = repo_file("config/verdict-example.yaml");
    let c = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));

    assert_eq!(c.receivers.grpc_addr, "0.0.0.0:4317");
    assert_eq!(c.api.external_url(), "https://verdict.example.com");
    assert_eq!(c.receivers.max_request_bytes, 16 << 20);
    assert_eq!(c.receivers.retry_after, Duration::from_secs(2));
    assert_eq!(c.state.horizon, Duration::from_secs(15 * 60));
    assert_eq!(c.graph.max_edges, 20_000);
    assert_eq!(c.judge.alpha, 0.005);
    assert_eq!(c.judge.quantiles, vec![0.5, 0.9, 0.99, 0.999]);
    assert_eq!(c.judge.min_duration, Duration::from_secs(120));
    // `${env:VERDICT_DATA_DIR:-/var/lib/verdict}` with the variable unset.
    assert_eq!(c.judge.decision_log, "/var/lib/verdict/decisions.jsonl");
    assert_eq!(
        c.alerting.store_path,
        PathBuf::from("/var/lib/verdict/alerts")
    );
    assert_eq!(c.alerting.max_notification_age, Duration::from_secs(86_400));
    assert_eq!(c.alerting.severity.rules.len(), 2);
    assert!(c.alerting.watchdog.enabled);
    assert_eq!(c.api.addr, "0.0.0.0:4319");

    let kinds: BTreeSet<&str> = c
        .alerting
        .sinks
        .iter()
        .filter_map(|s| s.kind.map(SinkType::as_str))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["alertmanager", "pagerduty", "slack", "webhook"])
    );
    let sink = |kind: SinkType| {
        c.alerting
            .sinks
            .iter()
            .find(|s| s.kind == Some(kind))
            .unwrap()
    };
    let slack = sink(SinkType::Slack);
    assert_eq!(
        slack.url.as_deref(),
        Some(format!("https://hooks.slack.com/services/{SLACK_PATH}").as_str())
    );
    assert_eq!(slack.repeat(), Duration::from_secs(4 * 3600));
    // An all-digit key stays a string because the example quotes the reference.
    let pd = sink(SinkType::Pagerduty);
    assert_eq!(pd.routing_key.as_deref(), Some(PAGERDUTY_KEY));
    assert_eq!(pd.url, None);
    assert_eq!(pd.route.environments, vec!["production"]);
    assert!(pd.change_events);
    assert_eq!(
        sink(SinkType::Alertmanager).repeat(),
        Duration::from_secs(60)
    );
    assert_eq!(sink(SinkType::Webhook).timeout, Duration::from_secs(5));
}

#[test]
fn example_keeps_secrets_in_the_environment_and_validates_with_any_values() {
    let text = read("config/verdict-example.yaml");
    // As `every_file_in_config_dir_loads` in src/config checks it: any value will do.
    Config::from_yaml(&text, &|_| Some("x".into())).unwrap_or_else(|e| panic!("{e}"));
    let err = Config::from_yaml(&text, &|_| None)
        .unwrap_err()
        .0
        .join("\n");
    for var in ["PAGERDUTY_ROUTING_KEY", "SLACK_WEBHOOK_PATH"] {
        assert!(err.contains(var), "{var} not required:\n{err}");
    }
    assert!(!err.contains("VERDICT_DATA_DIR"), "{err}");
}

#[test]
fn example_shows_every_section_and_sink_type() {
    let example = example_value();
    for section in serde_json::to_value(Config::default())
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(example.get(section).is_some(), "example lacks `{section}`");
    }
    let types: BTreeSet<&str> = example["alerting"]["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["type"].as_str())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["alertmanager", "pagerduty", "slack", "webhook"])
    );
}

#[test]
fn docs_have_a_heading_per_section_and_a_row_per_key_with_its_default() {
    let doc = read("docs/configuration.md");
    let rows = doc_rows(&doc);
    let defaults = default_value();
    for section in defaults.as_object().unwrap().keys() {
        let heading = format!("`{section}`");
        assert!(
            doc.lines()
                .any(|l| l.starts_with('#') && l.contains(&heading)),
            "docs/configuration.md has no heading for section {heading}"
        );
    }
    let (mut paths, mut leaves) = (BTreeSet::new(), BTreeMap::new());
    walk("", &defaults, &mut paths, &mut leaves);
    for p in &paths {
        assert!(
            doc.contains(&format!("`{p}`")),
            "docs/configuration.md does not mention `{p}`"
        );
    }
    let mut problems = Vec::new();
    for (p, want) in &leaves {
        match rows.get(p) {
            None => problems.push(format!("{p}: no table row")),
            Some(cells) if cells.len() < 4 => problems.push(format!("{p}: row lacks cells")),
            Some(_) if no_fixed_default(want) => {}
            Some(cells) if !default_matches(want, &cells[2]) => problems.push(format!(
                "{p}: documented default {} but the code's is {want}",
                cells[2]
            )),
            Some(_) => {}
        }
    }
    // Rows for keys that do not exist (renamed or removed ones).
    let sections: Vec<String> = defaults
        .as_object()
        .unwrap()
        .keys()
        .map(|s| format!("{s}."))
        .collect();
    for key in rows.keys() {
        if sections.iter().any(|s| key.starts_with(s)) && !paths.contains(key) {
            problems.push(format!("{key}: documented but not a configuration key"));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn docs_cover_every_key_of_the_example() {
    let doc = read("docs/configuration.md");
    let (mut paths, mut leaves) = (BTreeSet::new(), BTreeMap::new());
    walk("", &example_value(), &mut paths, &mut leaves);
    assert!(paths.len() > 80, "walked only {} keys", paths.len());
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| !doc.contains(&format!("`{p}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys of the example missing in docs: {missing:?}"
    );
}

#[test]
fn docs_list_every_serve_flag() {
    use clap::Args;
    let doc = read("docs/configuration.md");
    let cmd = verdict::app::ServeArgs::augment_args(clap::Command::new("serve"));
    let flags: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    assert!(flags.contains(&"config"), "{flags:?}");
    for flag in flags {
        assert!(
            doc.contains(&format!("| `--{flag}")),
            "docs/configuration.md has no row for --{flag}"
        );
    }
}
