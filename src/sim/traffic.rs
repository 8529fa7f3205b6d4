//! The traffic generator: turns a topology and a scenario into whole traces (spans with
//! ids, explicit timings, kinds, attributes), deterministically from a seed. Pure: no
//! clock, no I/O; the driver in `simulate` decides when to emit them.

use super::scenario::{EffectKind, Scenario};
use super::span::{SimResource, SimSpan, SimTrace};
use super::topology::Topology;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Deepest call chain followed (a guard against cyclic topologies).
const MAX_DEPTH: usize = 24;

/// Instances of one service, by version: the baseline and, when a rollout names the
/// service, the new version.
#[derive(Debug, Clone)]
struct Fleet {
    baseline: Vec<SimResource>,
    rollout: Option<(usize, Vec<SimResource>)>,
}

/// Generates one trace per call of [`TrafficGen::next_trace`], arrivals Poisson at the
/// scenario's rate (changing with its traffic steps).
pub struct TrafficGen {
    pub(super) topo: Arc<Topology>,
    pub(super) scenario: Arc<Scenario>,
    fleets: BTreeMap<String, Fleet>,
    entry: WeightedIndex<f64>,
    pub(super) rng: StdRng,
    /// Unix nanos of offset zero.
    t0: u64,
    /// Offset of the next request, seconds.
    next_offset: f64,
}

/// Why the generator could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("entrypoint weights: {0}")]
    Weights(String),
    #[error("rollout names service {0:?}, which the topology does not have")]
    UnknownService(String),
}

impl TrafficGen {
    /// A generator for `scenario` on `topo`, with offset zero at `t0` (unix nanos).
    pub fn new(
        topo: Arc<Topology>,
        scenario: Arc<Scenario>,
        t0: u64,
    ) -> Result<Self, TrafficError> {
        let weights: Vec<f64> = topo.entrypoints.iter().map(|e| e.weight).collect();
        let entry =
            WeightedIndex::new(&weights).map_err(|e| TrafficError::Weights(e.to_string()))?;
        let fleets = build_fleets(&topo, &scenario)?;
        let rng = StdRng::seed_from_u64(scenario.seed);
        Ok(Self {
            topo,
            scenario,
            fleets,
            entry,
            rng,
            t0,
            next_offset: 0.0,
        })
    }

    /// Every resource that may emit, so providers can be built up front.
    pub fn resources(&self) -> Vec<SimResource> {
        let mut all = Vec::new();
        for f in self.fleets.values() {
            all.extend(f.baseline.iter().cloned());
            if let Some((_, r)) = &f.rollout {
                all.extend(r.iter().cloned());
            }
        }
        all
    }

    /// Offset of the next request.
    pub fn next_offset(&self) -> Duration {
        Duration::from_secs_f64(self.next_offset)
    }

    /// Generates the next request's trace and advances the arrival clock.
    pub fn next_trace(&mut self) -> SimTrace {
        let offset = self.next_offset();
        let rate = self.scenario.rate_at(offset).max(1e-6);
        let gap = Exp::new(rate).map_or(1.0 / rate, |d| d.sample(&mut self.rng));
        self.next_offset += gap;
        let mut trace_id = [0u8; 16];
        self.rng.fill(&mut trace_id);
        let e = &self.topo.entrypoints[self.entry.sample(&mut self.rng)];
        let (service, operation) = (e.service.clone(), e.operation.clone());
        let offset_nanos = offset.as_nanos() as u64;
        let mut b = TraceBuilder {
            generator: self,
            trace_id,
            offset,
            spans: Vec::new(),
        };
        let start = b.generator.t0 + offset_nanos;
        b.serve(
            &service,
            &operation,
            None,
            [0; 8],
            start,
            super::traffic_calls::Via::Entry,
            0,
        );
        // The request ends "now": shift so the root ends at its arrival instant, as an
        // SDK exports spans once they end.
        let root_end = b
            .spans
            .iter()
            .find(|s| s.parent_span_id == [0; 8])
            .map_or(start, |s| s.end_unix_nano);
        let shift = root_end.saturating_sub(start);
        let mut spans = b.spans;
        for s in &mut spans {
            s.start_unix_nano -= shift.min(s.start_unix_nano);
            s.end_unix_nano -= shift.min(s.end_unix_nano);
        }
        SimTrace {
            offset_nanos,
            spans,
        }
    }

    /// Chooses the version (by rollout weight) and then an instance of a service.
    pub(super) fn pick(&mut self, service: &str, offset: Duration) -> SimResource {
        let fleet = &self.fleets[service];
        let group = match &fleet.rollout {
            Some((i, new))
                if self.rng.random::<f64>() < self.scenario.rollouts[*i].weight_at(offset) =>
            {
                new
            }
            _ => &fleet.baseline,
        };
        let n = group.len().max(1);
        group[self.rng.random_range(0..n)].clone()
    }

    /// The latency multiplier and addition of every active effect of `kind` on a
    /// service@version (and operation / database), each hitting its `fraction`.
    pub(super) fn latency_effect(
        &mut self,
        kind: EffectKind,
        r: &SimResource,
        filter: (&str, &str),
        offset: Duration,
    ) -> (f64, u64) {
        let (mut factor, mut extra) = (1.0, 0u64);
        let scenario = self.scenario.clone();
        for e in scenario
            .effects
            .iter()
            .filter(|e| e.kind == kind && e.active(offset) && e.matches(&r.service, &r.version))
        {
            if e.operation.as_deref().is_some_and(|o| o != filter.0)
                || e.database.as_deref().is_some_and(|d| d != filter.1)
            {
                continue;
            }
            if self.rng.random::<f64>() < e.fraction {
                factor *= e.factor;
                extra += e.extra.as_nanos() as u64;
            }
        }
        (factor, extra)
    }

    /// Probability that an active error effect of `kind` fails this span.
    pub(super) fn error_effect(
        &self,
        kind: EffectKind,
        r: &SimResource,
        filter: (&str, &str, &str),
        offset: Duration,
    ) -> f64 {
        let (operation, database, callee) = filter;
        self.scenario
            .effects
            .iter()
            .filter(|e| e.kind == kind && e.active(offset) && e.matches(&r.service, &r.version))
            .filter(|e| e.operation.as_deref().is_none_or(|o| o == operation))
            .filter(|e| e.database.as_deref().is_none_or(|d| d == database))
            .filter(|e| e.callee.as_deref().is_none_or(|c| c == callee))
            .fold(0.0, |p, e| 1.0 - (1.0 - p) * (1.0 - e.rate))
    }
}

/// Builds one trace; holds the generator for its random stream and scenario.
pub(super) struct TraceBuilder<'a> {
    pub(super) generator: &'a mut TrafficGen,
    pub(super) trace_id: [u8; 16],
    pub(super) offset: Duration,
    pub(super) spans: Vec<SimSpan>,
}

impl TraceBuilder<'_> {
    pub(super) fn new_span_id(&mut self) -> [u8; 8] {
        let mut id = [0u8; 8];
        while id == [0; 8] {
            self.generator.rng.fill(&mut id);
        }
        id
    }

    pub(super) fn too_deep(depth: usize) -> bool {
        depth >= MAX_DEPTH
    }
}

fn build_fleets(
    topo: &Topology,
    scenario: &Scenario,
) -> Result<BTreeMap<String, Fleet>, TrafficError> {
    let env = scenario.environment();
    let mut fleets = BTreeMap::new();
    for (name, svc) in &topo.services {
        let n = topo.instances_of(name);
        let baseline = (0..n)
            .map(|i| SimResource::new(&env, name, &svc.version, i))
            .collect();
        fleets.insert(
            name.clone(),
            Fleet {
                baseline,
                rollout: None,
            },
        );
    }
    for (i, r) in scenario.rollouts.iter().enumerate() {
        let fleet = fleets
            .get_mut(&r.service)
            .ok_or_else(|| TrafficError::UnknownService(r.service.clone()))?;
        let replacement = r.steps.iter().any(|s| s.weight >= 100.0);
        let n = r
            .instances
            .unwrap_or(if replacement {
                topo.instances_of(&r.service)
            } else {
                1
            })
            .max(1);
        let new = (0..n)
            .map(|k| SimResource::new(&env, &r.service, &r.version, k))
            .collect();
        fleet.rollout = Some((i, new));
    }
    Ok(fleets)
}
