//! Reading the judge (API, Flagger, alerting) and explicit deployment markers from CD
//! pipelines.

use super::{Judge, State};
use crate::model::{
    Decision, DeploymentKey, DeploymentVerdict, Evidence, Name, Reason, Scope, Signal, UnixNanos,
};
use serde::{Deserialize, Serialize};

/// A malformed or ambiguous question (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueryError {
    #[error("several environments match ({0}); give environment=")]
    Ambiguous(String),
    #[error("{0}")]
    Invalid(String),
}

/// `POST /api/v1/deployments`: a CD pipeline announcing a deployment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeploymentMarker {
    #[serde(default)]
    pub environment: String,
    pub service: String,
    pub version: String,
    /// The version it replaces; default: the service's running version.
    #[serde(default)]
    pub baseline_version: Option<String>,
}

/// A coverage reason with no numbers.
pub fn coverage(summary: &str) -> Reason {
    Reason {
        signal: Signal::Coverage,
        scope: Scope::SelfScope,
        operation: None,
        caller: None,
        callee: None,
        regression: false,
        summary: summary.into(),
        evidence: Evidence::default(),
    }
}

fn placeholder(
    env: &str,
    service: &str,
    version: &str,
    baseline: Option<Name>,
    why: &str,
    now: UnixNanos,
) -> DeploymentVerdict {
    DeploymentVerdict {
        environment: env.into(),
        service: service.into(),
        version: version.into(),
        baseline_version: baseline,
        verdict: Decision::Inconclusive,
        started_at: crate::clock::rfc3339(now),
        requests: 0,
        reasons: vec![coverage(why)],
    }
}

impl State {
    /// Service names matching `name` directly or through `k8s.deployment.name` (`X`,
    /// `X-primary`), with their environments.
    pub(crate) fn resolve(&self, env: Option<&str>, name: &str) -> Vec<(Name, Name)> {
        let mut out: Vec<(Name, Name)> = Vec::new();
        let primary = format!("{name}-primary");
        let mut push = |e: &Name, s: &Name| {
            if env.is_none_or(|x| x == e.as_str()) && !out.iter().any(|(a, b)| a == e && b == s) {
                out.push((e.clone(), s.clone()));
            }
        };
        let known = self.services.keys().map(|(e, s)| (e, s)).chain(
            self.deployments
                .keys()
                .map(|k| (&k.environment, &k.service)),
        );
        for (e, s) in known {
            if s == name {
                push(e, s);
            }
        }
        for ((e, s), svc) in &self.services {
            if svc
                .versions
                .values()
                .any(|v| v.k8s.as_ref().is_some_and(|k| k == name || *k == primary))
            {
                push(e, s);
            }
        }
        out
    }
}

impl Judge {
    /// Every listed deployment, optionally of one environment.
    pub fn deployments(&self, env: Option<&str>) -> Vec<DeploymentVerdict> {
        let st = self.state.lock();
        st.deployments
            .iter()
            .filter(|(k, _)| env.is_none_or(|e| k.environment == e))
            .map(|(_, d)| d.verdict.clone())
            .collect()
    }

    /// The verdict for one version. Unknown versions answer `inconclusive`.
    pub fn verdict(
        &self,
        env: Option<&str>,
        service: &str,
        version: &str,
        now: UnixNanos,
    ) -> Result<DeploymentVerdict, QueryError> {
        if service.is_empty() {
            return Err(QueryError::Invalid("service is required".into()));
        }
        let st = self.state.lock();
        let mut envs = st.resolve(env, service);
        envs.retain(|(e, s)| {
            st.deployments.contains_key(&DeploymentKey {
                environment: e.clone(),
                service: s.clone(),
                version: version.into(),
            }) || st
                .services
                .get(&(e.clone(), s.clone()))
                .is_some_and(|t| t.versions.contains_key(version))
        });
        if envs.len() > 1 {
            let list: Vec<String> = envs.iter().map(|(e, _)| format!("{e:?}")).collect();
            return Err(QueryError::Ambiguous(list.join(", ")));
        }
        let Some((e, s)) = envs.pop() else {
            let e = env.unwrap_or_default();
            return Ok(placeholder(
                e,
                service,
                version,
                None,
                "no telemetry has arrived for this version yet",
                now,
            ));
        };
        let key = DeploymentKey {
            environment: e.clone(),
            service: s.clone(),
            version: version.into(),
        };
        if let Some(d) = st.deployments.get(&key) {
            return Ok(d.verdict.clone());
        }
        let svc = st.services.get(&(e.clone(), s.clone()));
        let stable = svc.and_then(|t| t.stable.clone());
        let why = if stable.as_deref() == Some(version) {
            "this is the running (baseline) version; no deployment of it is being judged"
        } else {
            "telemetry has arrived; the deployment is not detected yet"
        };
        Ok(placeholder(&e, &s, version, stable, why, now))
    }

    /// The newest live (else newest listed) deployment of a workload, for Flagger.
    pub fn workload_verdict(
        &self,
        namespace: Option<&str>,
        name: &str,
        now: UnixNanos,
    ) -> Option<DeploymentVerdict> {
        let st = self.state.lock();
        let mut envs = st.resolve(namespace, name);
        if envs.is_empty() {
            envs = st.resolve(None, name);
        }
        let _ = now;
        st.deployments
            .iter()
            .filter(|(k, _)| {
                envs.iter()
                    .any(|(e, s)| *e == k.environment && *s == k.service)
            })
            .max_by_key(|(_, d)| (d.ended.is_none(), d.started))
            .map(|(_, d)| d.verdict.clone())
    }

    /// Registers a deployment announced by a CD pipeline (idempotent). Refused when
    /// `max_deployments` deployments are live.
    pub fn mark(&self, marker: DeploymentMarker, now: UnixNanos) -> Result<(), String> {
        let mut st = self.state.lock();
        let key = DeploymentKey {
            environment: marker.environment.as_str().into(),
            service: marker.service.as_str().into(),
            version: marker.version.as_str().into(),
        };
        if st.deployments.contains_key(&key) {
            return Ok(());
        }
        let live = super::live_deployments(&st.deployments);
        if live >= self.cfg.max_deployments {
            return Err(format!(
                "{live} deployments are live (judge.max_deployments = {}); one must end before another is judged",
                self.cfg.max_deployments
            ));
        }
        let svc = st
            .services
            .get(&(key.environment.clone(), key.service.clone()));
        let baseline = marker
            .baseline_version
            .map(Name::from)
            .or_else(|| svc.and_then(|s| s.stable.clone()))
            .filter(|b| *b != key.version);
        tracing::info!(deployment = %key, baseline = ?baseline, "deployment marker");
        let d = super::tick::new_deployment(
            &key.environment,
            &key.service,
            &key.version,
            baseline,
            now,
        );
        st.deployments.insert(key, d);
        Ok(())
    }
}
