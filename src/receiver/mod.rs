//! OTLP receivers: gRPC and HTTP endpoints that decode, normalize and queue telemetry for
//! analysis, answering clients as the OTLP specification says.

pub mod config;
pub mod decode;
pub mod queue;
