//! Configuration of the dependency graph (section `graph`).

use crate::config::Validate;
use serde::{Deserialize, Serialize};

/// Section `graph`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GraphConfig {}

impl Validate for GraphConfig {
    fn validate(&self, _path: &str, _problems: &mut Vec<String>) {}
}
