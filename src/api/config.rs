//! Configuration of the HTTP API and dashboard (section `api`).

use crate::config::Validate;
use serde::{Deserialize, Serialize};

/// Section `api`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ApiConfig {
    /// API listen address. Default `0.0.0.0:4319`; `--api-addr` overrides.
    pub addr: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            addr: "0.0.0.0:4319".into(),
        }
    }
}

impl Validate for ApiConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        crate::config::check_addr(path, "addr", &self.addr, problems);
    }
}
