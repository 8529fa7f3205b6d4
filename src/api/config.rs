//! Configuration of the HTTP API and dashboard (section `api`).

use crate::config::Validate;
use serde::{Deserialize, Serialize};

/// Section `api`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ApiConfig {
    /// API listen address. Default `0.0.0.0:4319`; `--api-addr` overrides.
    pub addr: String,
    /// URL at which people reach this API and dashboard, used in alert links and
    /// `generatorURL` (as Prometheus' and Alertmanager's `--web.external-url`). Default:
    /// `http://{host name}:{port}` when `addr` listens on every interface, else
    /// `http://{addr}`.
    pub external_url: Option<String>,
}

impl ApiConfig {
    /// The external URL, without a trailing `/`.
    pub fn external_url(&self) -> String {
        if let Some(u) = &self.external_url {
            return u.trim_end_matches('/').to_string();
        }
        match self.addr.rsplit_once(':') {
            Some(("0.0.0.0" | "[::]" | "", port)) => format!("http://{}:{port}", host_name()),
            _ => format!("http://{}", self.addr),
        }
    }
}

/// This machine's host name (the pod name in Kubernetes), or `localhost`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            addr: "0.0.0.0:4319".into(),
            external_url: None,
        }
    }
}

impl Validate for ApiConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        crate::config::check_addr(path, "addr", &self.addr, problems);
        if let Some(u) = &self.external_url {
            crate::config::check_url(&format!("{path}.external_url"), u, problems);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(addr: &str, external_url: Option<&str>) -> ApiConfig {
        ApiConfig {
            addr: addr.into(),
            external_url: external_url.map(str::to_string),
        }
    }

    #[test]
    fn external_url_is_the_configured_one_or_a_reachable_default() {
        let set = api("0.0.0.0:4319", Some("https://verdict.example.com/"));
        assert_eq!(set.external_url(), "https://verdict.example.com");
        assert_eq!(
            api("127.0.0.1:9000", None).external_url(),
            "http://127.0.0.1:9000"
        );
        let any = api("0.0.0.0:4319", None).external_url();
        assert!(
            any.starts_with("http://") && any.ends_with(":4319"),
            "{any}"
        );
        assert!(!any.contains("0.0.0.0"), "{any}");
    }

    #[test]
    fn external_url_must_be_http() {
        let mut problems = Vec::new();
        api("0.0.0.0:4319", Some("ftp://x")).validate("api", &mut problems);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("api.external_url:"), "{problems:?}");
    }
}
