//! Configuration of the OTLP receivers (section `receivers`).

use crate::config::Validate;
use serde::{Deserialize, Serialize};

/// Section `receivers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ReceiverConfig {
    /// OTLP/gRPC listen address. Default `0.0.0.0:4317`; `--otlp-grpc-addr` overrides.
    pub grpc_addr: String,
    /// OTLP/HTTP listen address. Default `0.0.0.0:4318`; `--otlp-http-addr` overrides.
    pub http_addr: String,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:4317".into(),
            http_addr: "0.0.0.0:4318".into(),
        }
    }
}

impl Validate for ReceiverConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        crate::config::check_addr(path, "grpc_addr", &self.grpc_addr, problems);
        crate::config::check_addr(path, "http_addr", &self.http_addr, problems);
    }
}
