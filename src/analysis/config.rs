//! Configuration of the per-version state (section `state`).

use crate::config::Validate;
use serde::{Deserialize, Serialize};

/// Section `state`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StateConfig {}

impl Validate for StateConfig {
    fn validate(&self, _path: &str, _problems: &mut Vec<String>) {}
}
