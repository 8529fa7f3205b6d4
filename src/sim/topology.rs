//! Topology files: the services, operations, calls, databases and queues the simulator
//! turns into traces. Loaded from YAML (`config/topologies/*.yaml`, embedded by name).

use super::latency::LatencySpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Topologies shipped in the binary, by name.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "otel-demo",
        include_str!("../../config/topologies/otel-demo.yaml"),
    ),
    (
        "train-ticket",
        include_str!("../../config/topologies/train-ticket.yaml"),
    ),
    (
        "online-boutique",
        include_str!("../../config/topologies/online-boutique.yaml"),
    ),
];

/// Why a topology could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{name}: {source}")]
    Parse {
        name: String,
        source: Box<serde_saphyr::Error>,
    },
    #[error("{name}: invalid topology:\n  - {}", .problems.join("\n  - "))]
    Invalid { name: String, problems: Vec<String> },
    #[error("no topology file or embedded topology named {0:?} (embedded: otel-demo, train-ticket, online-boutique)")]
    Unknown(String),
}

/// Protocol a service serves its operations with; it decides span names and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Http,
    Grpc,
}

/// A whole simulated system.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Short name (also the default environment).
    pub name: String,
    /// Where the topology comes from.
    #[serde(default)]
    pub source: String,
    /// Instances per service unless a service says otherwise (default 2).
    #[serde(default = "default_instances")]
    pub instances: u32,
    /// Client-side overhead around every remote call (network, serialization).
    #[serde(default = "default_network")]
    pub network: LatencySpec,
    /// Where requests enter, with relative weights.
    pub entrypoints: Vec<Entrypoint>,
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub databases: BTreeMap<String, Database>,
    #[serde(default)]
    pub queues: BTreeMap<String, Queue>,
}

fn default_instances() -> u32 {
    2
}

fn default_network() -> LatencySpec {
    LatencySpec::Lognormal {
        p50: std::time::Duration::from_micros(300),
        p99: std::time::Duration::from_millis(2),
    }
}

/// A request source: an operation of a service called from outside.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entrypoint {
    pub service: String,
    pub operation: String,
    /// Relative share of the traffic (default 1).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// One service: its baseline version, how it serves, its operations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The version deployed before any scenario starts.
    pub version: String,
    #[serde(default)]
    pub protocol: Protocol,
    /// Listening port (server.port on client spans).
    #[serde(default = "default_port")]
    pub port: u16,
    /// gRPC package-qualified service name (`oteldemo.CartService`); defaults to the name.
    #[serde(default)]
    pub rpc_service: Option<String>,
    /// Instances of this service (default: the topology's).
    #[serde(default)]
    pub instances: Option<u32>,
    /// Self time of every operation unless the operation overrides it.
    #[serde(default)]
    pub latency: LatencySpec,
    /// Probability that a request fails in this service itself (default 0).
    #[serde(default)]
    pub error_rate: f64,
    pub operations: BTreeMap<String, Operation>,
}

fn default_port() -> u16 {
    8080
}

/// One operation: an HTTP route (`GET /api/cart`) or a gRPC method (`GetCart`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    #[serde(default)]
    pub latency: Option<LatencySpec>,
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Calls made while serving, in order.
    #[serde(default)]
    pub calls: Vec<Call>,
}

/// A call made by an operation: to a service operation, a database or a queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// Callee service (with `operation`), or `database`, or `queue`: exactly one.
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default)]
    pub database: Option<String>,
    /// Database statement summary (`SELECT products`); defaults to the database's.
    #[serde(default)]
    pub statement: Option<String>,
    #[serde(default)]
    pub queue: Option<String>,
    /// Probability the call happens at all (default 1).
    #[serde(default = "one")]
    pub probability: f64,
    /// How many times it is made when it happens (default 1).
    #[serde(default = "one_u32")]
    pub count: u32,
}

fn one_u32() -> u32 {
    1
}

/// A database reached through CLIENT spans (no server span).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `db.system.name` (`postgresql`, `redis`, ...).
    pub system: String,
    /// `db.namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `server.address` (default: the database's name).
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "default_db_port")]
    pub port: u16,
    /// Default operation (`SELECT`, `HGET`).
    #[serde(default = "default_db_op")]
    pub operation: String,
    #[serde(default)]
    pub latency: LatencySpec,
    #[serde(default)]
    pub error_rate: f64,
}

fn default_db_port() -> u16 {
    5432
}

fn default_db_op() -> String {
    "SELECT".into()
}

/// A queue: PRODUCER spans from the caller, CONSUMER spans in each consumer service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// `messaging.system` (`kafka`, `rabbitmq`).
    pub system: String,
    /// `messaging.destination.name`.
    pub destination: String,
    /// Time to publish (PRODUCER span).
    #[serde(default)]
    pub publish_latency: LatencySpec,
    /// Delay between publishing and consuming.
    #[serde(default)]
    pub lag: LatencySpec,
    /// Consumers: service and the operation it runs per message.
    pub consumers: Vec<Consumer>,
}

/// A service consuming a queue with one of its operations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    pub service: String,
    pub operation: String,
}

impl Topology {
    /// Loads a file path, or an embedded topology by name.
    pub fn load(name_or_path: &str) -> Result<Topology, TopologyError> {
        let path = Path::new(name_or_path);
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
                path: name_or_path.into(),
                source,
            })?;
            return Self::from_yaml(name_or_path, &text);
        }
        match EMBEDDED.iter().find(|(n, _)| *n == name_or_path) {
            Some((n, text)) => Self::from_yaml(n, text),
            None => Err(TopologyError::Unknown(name_or_path.into())),
        }
    }

    /// Parses and validates YAML text; `name` is used in messages.
    pub fn from_yaml(name: &str, text: &str) -> Result<Topology, TopologyError> {
        let topo: Topology =
            serde_saphyr::from_str(text).map_err(|source| TopologyError::Parse {
                name: name.into(),
                source: Box::new(source),
            })?;
        let problems = topo.problems();
        if problems.is_empty() {
            Ok(topo)
        } else {
            Err(TopologyError::Invalid {
                name: name.into(),
                problems,
            })
        }
    }

    /// Instances of a service.
    pub fn instances_of(&self, service: &str) -> u32 {
        self.services
            .get(service)
            .and_then(|s| s.instances)
            .unwrap_or(self.instances)
            .max(1)
    }

    /// Every problem: dangling references, bad probabilities and distributions.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.entrypoints.is_empty() {
            p.push("entrypoints: at least one is needed".into());
        }
        for (i, e) in self.entrypoints.iter().enumerate() {
            if !self.has_operation(&e.service, &e.operation) {
                p.push(format!(
                    "entrypoints[{i}]: no operation {}/{}",
                    e.service, e.operation
                ));
            }
        }
        for (name, s) in &self.services {
            check_latency(&mut p, &format!("services.{name}.latency"), &s.latency);
            check_rate(&mut p, &format!("services.{name}.error_rate"), s.error_rate);
            for (op_name, op) in &s.operations {
                let path = format!("services.{name}.operations.{op_name}");
                if let Some(l) = &op.latency {
                    check_latency(&mut p, &format!("{path}.latency"), l);
                }
                if let Some(r) = op.error_rate {
                    check_rate(&mut p, &format!("{path}.error_rate"), r);
                }
                for (i, c) in op.calls.iter().enumerate() {
                    self.check_call(&mut p, &format!("{path}.calls[{i}]"), c);
                }
            }
        }
        for (name, d) in &self.databases {
            check_latency(&mut p, &format!("databases.{name}.latency"), &d.latency);
            check_rate(
                &mut p,
                &format!("databases.{name}.error_rate"),
                d.error_rate,
            );
        }
        for (name, q) in &self.queues {
            for (i, c) in q.consumers.iter().enumerate() {
                if !self.has_operation(&c.service, &c.operation) {
                    p.push(format!(
                        "queues.{name}.consumers[{i}]: no operation {}/{}",
                        c.service, c.operation
                    ));
                }
            }
        }
        p
    }

    fn check_call(&self, p: &mut Vec<String>, path: &str, c: &Call) {
        let targets = [c.service.is_some(), c.database.is_some(), c.queue.is_some()];
        if targets.iter().filter(|t| **t).count() != 1 {
            p.push(format!(
                "{path}: name exactly one of service, database, queue"
            ));
        }
        if let Some(s) = &c.service {
            match &c.operation {
                Some(op) if self.has_operation(s, op) => {}
                Some(op) => p.push(format!("{path}: no operation {s}/{op}")),
                None => p.push(format!("{path}: a service call needs an operation")),
            }
        }
        if let Some(d) = c
            .database
            .as_ref()
            .filter(|d| !self.databases.contains_key(*d))
        {
            p.push(format!("{path}: no database {d}"));
        }
        if let Some(q) = c.queue.as_ref().filter(|q| !self.queues.contains_key(*q)) {
            p.push(format!("{path}: no queue {q}"));
        }
        check_rate(p, &format!("{path}.probability"), c.probability);
    }

    fn has_operation(&self, service: &str, op: &str) -> bool {
        self.services
            .get(service)
            .is_some_and(|s| s.operations.contains_key(op))
    }
}

fn check_latency(p: &mut Vec<String>, path: &str, l: &LatencySpec) {
    if let Some(problem) = l.problem() {
        p.push(format!("{path}: {problem}"));
    }
}

fn check_rate(p: &mut Vec<String>, path: &str, r: f64) {
    if !(0.0..=1.0).contains(&r) {
        p.push(format!("{path}: must be between 0 and 1 (got {r})"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_topology_loads() {
        for (name, _) in EMBEDDED {
            let t = Topology::load(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                t.services.len() >= 8,
                "{name} has {} services",
                t.services.len()
            );
        }
    }

    #[test]
    fn dangling_references_are_all_reported() {
        let yaml = r#"
name: t
entrypoints: [{service: a, operation: "GET /"}, {service: nope, operation: x}]
services:
  a:
    version: "1"
    operations:
      "GET /":
        calls: [{service: b, operation: Get}, {database: db}, {service: a, database: db, operation: "GET /"}]
"#;
        let err = Topology::from_yaml("t", yaml).unwrap_err().to_string();
        for needle in [
            "entrypoints[1]",
            "calls[0]: no operation b/Get",
            "calls[1]: no database db",
            "calls[2]: name exactly one",
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
    }
}
