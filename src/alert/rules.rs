//! Rules: judge output (verdicts, incidents) -> the set of alerts that should be firing
//! now, each with its stable identity (label set, fingerprint, PagerDuty dedup key).

use super::config::SeverityConfig;
use crate::model::{DeploymentVerdict, Incident, Reason};
use std::collections::BTreeMap;

/// Label (or annotation) set; sorted, so serialization and hashing are stable.
pub type Labels = BTreeMap<String, String>;

/// Alert name of a regression blamed on a deployment (architecture.md section 2).
pub const DEPLOYMENT_REGRESSION: &str = "DeploymentRegression";
/// Alert name of a change seen across versions and services, blamed on no deployment.
pub const GLOBAL_REGRESSION: &str = "GlobalRegression";
/// Alert name of the dead man's switch.
pub const WATCHDOG: &str = "VerdictWatchdog";

/// An alert that the current judge output says should fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub labels: Labels,
    pub annotations: Labels,
    /// Notification group: the culprit deployment (`env/service@version`) or, for alerts
    /// that blame none, `alertname/env/node`.
    pub group: String,
}

/// The fingerprint of a label set: FNV-1a 64 over the labels sorted by name, each name
/// and value followed by the byte 0xff, printed as 16 hex digits. This is the hash
/// Prometheus and Alertmanager use (`model.LabelSet.Fingerprint`), so the webhook
/// fingerprint equals the one Alertmanager shows for the same alert.
pub fn fingerprint(labels: &Labels) -> String {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (k, v) in labels {
        add(k.as_bytes());
        add(v.as_bytes());
    }
    format!("{h:016x}")
}

/// PagerDuty `dedup_key` of an alert: `verdict-` and its fingerprint (always 24 chars,
/// far under the 255 limit, and stable because the fingerprint is).
pub fn dedup_key(fingerprint: &str) -> String {
    format!("verdict-{fingerprint}")
}

/// Every alert the judge output calls for, keyed by fingerprint.
pub fn desired(
    verdicts: &[DeploymentVerdict],
    incidents: &[Incident],
    severity: &SeverityConfig,
    external_url: &str,
) -> BTreeMap<String, Desired> {
    let mut out = BTreeMap::new();
    for v in verdicts
        .iter()
        .filter(|v| v.verdict == crate::model::Decision::Rollback)
    {
        for r in v.reasons.iter().filter(|r| r.regression) {
            let d = regression(v, r, severity, external_url);
            out.entry(fingerprint(&d.labels)).or_insert(d);
        }
    }
    for i in incidents {
        let d = incident(i, &severity.incidents, external_url);
        out.entry(fingerprint(&d.labels)).or_insert(d);
    }
    out
}

fn label(l: &mut Labels, k: &str, v: &str) {
    l.insert(k.to_string(), v.to_string());
}

/// The labels of a regression: exactly those of architecture.md section 2.
pub fn regression_labels(v: &DeploymentVerdict, r: &Reason, severity: &str) -> Labels {
    let mut l = Labels::new();
    label(&mut l, "alertname", DEPLOYMENT_REGRESSION);
    label(&mut l, "severity", severity);
    label(&mut l, "environment", &v.environment);
    label(&mut l, "service", &v.service);
    label(&mut l, "version", &v.version);
    label(
        &mut l,
        "baseline_version",
        v.baseline_version.as_deref().unwrap_or(""),
    );
    label(&mut l, "signal", r.signal.as_str());
    label(&mut l, "scope", r.scope.as_str());
    if let (Some(caller), Some(callee)) = (&r.caller, &r.callee) {
        label(&mut l, "caller", caller);
        label(&mut l, "callee", callee);
    }
    l
}

fn regression(v: &DeploymentVerdict, r: &Reason, sev: &SeverityConfig, url: &str) -> Desired {
    let severity = severity_of(sev, &v.environment, r.signal.as_str(), r.scope.as_str());
    let labels = regression_labels(v, r, &severity);
    let mut a = Labels::new();
    label(
        &mut a,
        "summary",
        &format!(
            "{}/{}@{}: {}",
            v.environment, v.service, v.version, r.summary
        ),
    );
    label(&mut a, "description", &r.summary);
    label(&mut a, "evidence", &evidence_text(r));
    if !r.evidence.exemplar_trace_ids.is_empty() {
        label(
            &mut a,
            "exemplar_trace_ids",
            &r.evidence.exemplar_trace_ids.join(","),
        );
    }
    label(
        &mut a,
        "link",
        &deployment_link(url, &v.environment, &v.service, &v.version),
    );
    Desired {
        labels,
        annotations: a,
        group: format!("{}/{}@{}", v.environment, v.service, v.version),
    }
}

fn incident(i: &Incident, severity: &str, url: &str) -> Desired {
    let mut l = Labels::new();
    label(&mut l, "alertname", GLOBAL_REGRESSION);
    label(&mut l, "severity", severity);
    label(&mut l, "environment", &i.environment);
    label(&mut l, "node", &i.node);
    label(&mut l, "signal", i.signal.as_str());
    let mut a = Labels::new();
    label(
        &mut a,
        "summary",
        &format!("{}/{}: {}", i.environment, i.node, i.summary),
    );
    label(&mut a, "description", &i.summary);
    label(
        &mut a,
        "link",
        &format!("{}/#/deployments", url.trim_end_matches('/')),
    );
    Desired {
        labels: l,
        annotations: a,
        group: format!("{GLOBAL_REGRESSION}/{}/{}", i.environment, i.node),
    }
}

/// The watchdog alert (always firing while verdict runs).
pub fn watchdog(url: &str) -> Desired {
    let mut l = Labels::new();
    label(&mut l, "alertname", WATCHDOG);
    label(&mut l, "severity", "none");
    let mut a = Labels::new();
    label(
        &mut a,
        "summary",
        "verdict is alive: this alert always fires while it runs",
    );
    label(&mut a, "link", url);
    Desired {
        labels: l,
        annotations: a,
        group: WATCHDOG.to_string(),
    }
}

/// First matching severity rule, else the default.
fn severity_of(sev: &SeverityConfig, env: &str, signal: &str, scope: &str) -> String {
    let hit = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
    sev.rules
        .iter()
        .find(|r| hit(&r.environment, env) && hit(&r.signal, signal) && hit(&r.scope, scope))
        .map_or_else(|| sev.default.clone(), |r| r.severity.clone())
}

/// Human-readable numbers behind a reason.
fn evidence_text(r: &Reason) -> String {
    let e = &r.evidence;
    let q = e
        .quantile
        .map(|q| format!(" p{}", q * 100.0))
        .unwrap_or_default();
    format!(
        "{}{q}: baseline {:.4} (n={}) vs candidate {:.4} (n={}), effect {:.4}, {} statistic {:.3}, confidence {:.3}",
        r.signal.as_str(),
        e.baseline_value,
        e.baseline_samples,
        e.candidate_value,
        e.candidate_samples,
        e.effect,
        e.test,
        e.statistic,
        e.confidence
    )
}

/// Dashboard link to a deployment: `{external_url}/#/deployments/{env}/{service}/{version}`
/// with each segment percent-encoded.
pub fn deployment_link(url: &str, env: &str, service: &str, version: &str) -> String {
    format!(
        "{}/#/deployments/{}/{}/{}",
        url.trim_end_matches('/'),
        encode(env),
        encode(service),
        encode(version)
    )
}

fn encode(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Decision, Evidence, Scope, Signal};

    pub(crate) fn verdict(reasons: Vec<Reason>) -> DeploymentVerdict {
        DeploymentVerdict {
            environment: "prod".into(),
            service: "checkout".into(),
            version: "v2".into(),
            baseline_version: Some("v1".into()),
            verdict: Decision::Rollback,
            started_at: "2026-01-01T00:00:00Z".into(),
            requests: 10,
            reasons,
        }
    }

    fn reason(signal: Signal, scope: Scope, edge: bool, regression: bool) -> Reason {
        Reason {
            signal,
            scope,
            operation: None,
            caller: edge.then(|| "checkout".into()),
            callee: edge.then(|| "payment".into()),
            regression,
            summary: "errors up".into(),
            evidence: Evidence::default(),
        }
    }

    #[test]
    fn labels_follow_the_contract_and_identity_is_stable() {
        let v = verdict(vec![
            reason(Signal::ErrorRate, Scope::Outgoing, true, true),
            reason(Signal::Latency, Scope::SelfScope, false, true),
            reason(Signal::Coverage, Scope::SelfScope, false, false),
        ]);
        let sev = SeverityConfig::default();
        let d = desired(std::slice::from_ref(&v), &[], &sev, "http://x:4319/");
        assert_eq!(d.len(), 2);
        let edge = d
            .values()
            .find(|d| d.labels.contains_key("caller"))
            .unwrap();
        let keys: Vec<&str> = edge.labels.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "alertname",
                "baseline_version",
                "callee",
                "caller",
                "environment",
                "scope",
                "service",
                "severity",
                "signal",
                "version"
            ]
        );
        assert_eq!(
            edge.annotations["link"],
            "http://x:4319/#/deployments/prod/checkout/v2"
        );
        // Same condition, different evidence numbers: same identity.
        let mut v2 = v.clone();
        v2.reasons[0].evidence.effect = 0.5;
        v2.reasons[0].summary = "other words".into();
        let d2 = desired(&[v2], &[], &sev, "http://x:4319/");
        assert_eq!(d.keys().collect::<Vec<_>>(), d2.keys().collect::<Vec<_>>());
    }

    #[test]
    fn fingerprint_is_prometheus_fnv1a() {
        // An empty label set hashes to the FNV-1a 64 offset basis.
        assert_eq!(fingerprint(&Labels::new()), "cbf29ce484222325");
        let mut l = Labels::new();
        l.insert("a".into(), "b".into());
        let mut h: u64 = 0xcbf29ce484222325;
        for b in [b'a', 0xff, b'b', 0xff] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        assert_eq!(fingerprint(&l), format!("{h:016x}"));
    }

    #[test]
    fn severity_rules_apply_in_order() {
        let mut sev = SeverityConfig::default();
        sev.rules.push(crate::alert::config::SeverityRule {
            environment: Some("prod".into()),
            signal: Some("latency".into()),
            scope: None,
            severity: "warning".into(),
        });
        assert_eq!(severity_of(&sev, "prod", "latency", "self"), "warning");
        assert_eq!(severity_of(&sev, "prod", "error_rate", "self"), "critical");
        assert_eq!(
            deployment_link("u", "a b", "s/x", "1"),
            "u/#/deployments/a%20b/s%2Fx/1"
        );
    }
}
