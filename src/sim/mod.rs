//! Simulation: topology-driven traffic emitted through a real OpenTelemetry SDK, seeded
//! scenarios with injected regressions, and the scenario runner that measures the judge.
