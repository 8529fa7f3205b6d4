//! Configuration of the OTLP receivers (section `receivers`): addresses, request limits,
//! the ingest queue, the cumulative-to-delta converter's caps and connection timeouts.

use crate::config::Validate;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Section `receivers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ReceiverConfig {
    /// OTLP/gRPC listen address. Default `0.0.0.0:4317`; `--otlp-grpc-addr` overrides.
    pub grpc_addr: String,
    /// OTLP/HTTP listen address. Default `0.0.0.0:4318`; `--otlp-http-addr` overrides.
    pub http_addr: String,
    /// Largest request accepted, in bytes, measured after decompression (the OTLP
    /// specification recommends 64 MiB). Larger requests are refused as non-retryable
    /// (gRPC RESOURCE_EXHAUSTED without RetryInfo, HTTP 413). Default `67108864`.
    pub max_request_bytes: usize,
    /// Capacity of the ingest queue in items (spans and metric points) accepted but not
    /// yet analysed. When full, requests are refused as retryable. Default `262144`.
    pub queue_capacity: usize,
    /// Delay clients are asked to wait before retrying a refused request (HTTP
    /// `Retry-After`, gRPC RetryInfo). Whole seconds on HTTP. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Requests decoded at the same time across both transports; beyond it requests are
    /// refused as retryable, which bounds memory to about this many times
    /// `max_request_bytes`. Default `64`.
    pub max_concurrent_requests: usize,
    /// Open connections per transport; beyond it new connections wait in the listen
    /// backlog. Default `4096`.
    pub max_connections: usize,
    /// HTTP/2 streams a client may open at once on one connection. Default `128`.
    pub max_concurrent_streams: u32,
    /// Time a new connection has to send its first bytes, and an HTTP/1 client has to
    /// send a request's headers (slow-client defence). Default `10s`.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a whole request body. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// HTTP/2 keepalive ping interval on idle connections. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// Time to wait for a keepalive ping's answer before closing. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// Time in-flight requests get to finish on shutdown. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Cumulative histogram streams tracked for delta conversion; points of new streams
    /// beyond it are dropped and counted. Default `100000`.
    pub max_metric_streams: usize,
    /// A metric stream unseen this long is forgotten. Default `10m`.
    #[serde(with = "humantime_serde")]
    pub metric_stream_ttl: Duration,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:4317".into(),
            http_addr: "0.0.0.0:4318".into(),
            max_request_bytes: 64 << 20,
            queue_capacity: 262_144,
            retry_after: Duration::from_secs(1),
            max_concurrent_requests: 64,
            max_connections: 4096,
            max_concurrent_streams: 128,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            max_metric_streams: 100_000,
            metric_stream_ttl: Duration::from_secs(600),
        }
    }
}

impl Validate for ReceiverConfig {
    fn validate(&self, path: &str, problems: &mut Vec<String>) {
        crate::config::check_addr(path, "grpc_addr", &self.grpc_addr, problems);
        crate::config::check_addr(path, "http_addr", &self.http_addr, problems);
        let mut positive = |field: &str, ok: bool| {
            if !ok {
                problems.push(format!("{path}.{field}: must be greater than zero"));
            }
        };
        positive("max_request_bytes", self.max_request_bytes > 0);
        positive("queue_capacity", self.queue_capacity > 0);
        positive("max_concurrent_requests", self.max_concurrent_requests > 0);
        positive("max_connections", self.max_connections > 0);
        positive("max_concurrent_streams", self.max_concurrent_streams > 0);
        positive("max_metric_streams", self.max_metric_streams > 0);
        for (field, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("request_timeout", self.request_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("keepalive_timeout", self.keepalive_timeout),
            ("metric_stream_ttl", self.metric_stream_ttl),
        ] {
            positive(field, !d.is_zero());
        }
        if self.max_request_bytes > u32::MAX as usize {
            problems.push(format!(
                "{path}.max_request_bytes: at most 4294967295 (a gRPC message length is 32 bits)"
            ));
        }
        if self.retry_after.as_secs() == 0 {
            problems.push(format!("{path}.retry_after: must be at least 1s"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_zeroes_are_all_reported() {
        let mut problems = Vec::new();
        ReceiverConfig::default().validate("receivers", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let bad = ReceiverConfig {
            max_request_bytes: 0,
            queue_capacity: 0,
            retry_after: Duration::ZERO,
            request_timeout: Duration::ZERO,
            ..Default::default()
        };
        bad.validate("receivers", &mut problems);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("receivers.max_request_bytes"));
    }
}
