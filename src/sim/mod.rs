//! Simulation: topology-driven traffic emitted through a real OpenTelemetry SDK, seeded
//! scenarios with injected regressions, and the scenario runner that measures the judge.
//! Flow: topology + scenario -> traffic (pure traces) -> emit (SDK, OTLP) -> analyzer;
//! the runner and the demo watch the analyzer's API and webhook.

pub mod demo;
pub mod emit;
pub mod latency;
pub mod runner;
pub mod scenario;
pub mod simulate;
pub mod span;
pub mod topology;
pub mod traffic;
mod traffic_calls;

pub use scenario::Scenario;
pub use span::{SimResource, SimSpan, SimTrace};
pub use topology::Topology;
pub use traffic::TrafficGen;
