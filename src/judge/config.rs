//! Configuration of the judge (section `judge`).

use crate::config::Validate;
use serde::{Deserialize, Serialize};

/// Section `judge`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JudgeConfig {}

impl Validate for JudgeConfig {
    fn validate(&self, _path: &str, _problems: &mut Vec<String>) {}
}
