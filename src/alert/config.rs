//! Configuration of the alerting (section `alerting`).

use crate::config::Validate;
use serde::{Deserialize, Serialize};

/// Section `alerting`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AlertingConfig {}

impl Validate for AlertingConfig {
    fn validate(&self, _path: &str, _problems: &mut Vec<String>) {}
}
