//! The analyzer under test, seen from the runner: a `verdict serve` child process of this
//! same binary on free loopback ports (or one given by address), and the calls the runner
//! makes to its API.

use serde::Deserialize;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Why the analyzer could not be reached or started.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error("no free port: {0}")]
    Port(std::io::Error),
    #[error("starting {exe}: {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("the analyzer exited before it was ready ({0})")]
    Exited(String),
    #[error("the analyzer at {0} did not become ready in time")]
    NotReady(String),
    #[error("API request to {url}: {source}")]
    Http { url: String, source: reqwest::Error },
}

/// Addresses of an analyzer: OTLP endpoint the simulator exports to, API base URL.
#[derive(Debug, Clone)]
pub struct AnalyzerAddrs {
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub api: String,
}

/// A spawned analyzer; killed when dropped.
pub struct SpawnedAnalyzer {
    pub addrs: AnalyzerAddrs,
    child: Child,
    /// The child's working directory: its alert store and decision log start empty, so
    /// a run never inherits alerts that an earlier run left firing.
    _data: tempfile::TempDir,
}

/// A free loopback port (bound, read, released; the short race is acceptable here).
pub fn free_port() -> Result<u16, AnalyzerError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(AnalyzerError::Port)?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(AnalyzerError::Port)
}

impl SpawnedAnalyzer {
    /// Starts `verdict serve` (this executable) with a webhook to `webhook_url`, and
    /// waits until `/readyz` answers 200. `config` is passed through when given.
    pub async fn start(
        webhook_url: &str,
        config: Option<&str>,
        quiet: bool,
    ) -> Result<Self, AnalyzerError> {
        let exe = std::env::current_exe().map_err(|source| AnalyzerError::Spawn {
            exe: "current exe".into(),
            source,
        })?;
        let (g, h, a) = (free_port()?, free_port()?, free_port()?);
        let data = tempfile::tempdir().map_err(AnalyzerError::Port)?;
        let mut cmd = Command::new(&exe);
        cmd.current_dir(data.path())
            .arg("serve")
            .args(["--otlp-grpc-addr", &format!("127.0.0.1:{g}")])
            .args(["--otlp-http-addr", &format!("127.0.0.1:{h}")])
            .args(["--api-addr", &format!("127.0.0.1:{a}")])
            .args(["--webhook", webhook_url])
            .stdin(Stdio::null())
            .stdout(if quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .stderr(if quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true);
        if let Some(c) = config {
            // Relative to the runner's directory, not the child's fresh one.
            let c = std::fs::canonicalize(c).unwrap_or_else(|_| c.into());
            cmd.arg("--config").arg(c);
        } else {
            // Slack and PagerDuty sinks to the runner's own endpoints, so delays are
            // measured at every sink type that needs no external service.
            let base = webhook_url.trim_end_matches('/');
            let sinks = format!(
                "alerting:\n  sinks:\n    - {{type: slack, name: slack, url: \"{base}/slack\"}}\n    - {{type: pagerduty, name: pagerduty, url: \"{base}/pagerduty\", routing_key: runner}}\n"
            );
            let path = data.path().join("runner-sinks.yaml");
            std::fs::write(&path, sinks).map_err(AnalyzerError::Port)?;
            cmd.arg("--config").arg(path);
        }
        let child = cmd.spawn().map_err(|source| AnalyzerError::Spawn {
            exe: exe.display().to_string(),
            source,
        })?;
        let addrs = AnalyzerAddrs {
            otlp_grpc: format!("http://127.0.0.1:{g}"),
            otlp_http: format!("http://127.0.0.1:{h}"),
            api: format!("http://127.0.0.1:{a}"),
        };
        let mut me = Self {
            addrs,
            child,
            _data: data,
        };
        me.wait_ready().await?;
        Ok(me)
    }

    async fn wait_ready(&mut self) -> Result<(), AnalyzerError> {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.addrs.api);
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(AnalyzerError::Exited(status.to_string()));
            }
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(AnalyzerError::NotReady(self.addrs.api.clone()))
    }

    /// Stops the child (SIGKILL; the runner has read what it needs).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// One deployment as `GET /api/v1/deployments` lists it (the fields the runner reads).
#[derive(Debug, Clone, Deserialize)]
pub struct ApiDeployment {
    pub environment: String,
    pub service: String,
    pub version: String,
    #[serde(default)]
    pub baseline_version: Option<String>,
    pub verdict: String,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub reasons: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct DeploymentList {
    deployments: Vec<ApiDeployment>,
}

/// Reads the deployments of one environment.
pub async fn deployments(
    client: &reqwest::Client,
    api: &str,
    environment: &str,
) -> Result<Vec<ApiDeployment>, AnalyzerError> {
    let base = format!("{api}/api/v1/deployments");
    let url = reqwest::Url::parse_with_params(&base, &[("environment", environment)])
        .map_or(base.clone(), |u| u.to_string());
    let http = |source| AnalyzerError::Http {
        url: url.clone(),
        source,
    };
    let resp = client
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(http)?
        .error_for_status()
        .map_err(http)?;
    let list: DeploymentList = resp.json().await.map_err(http)?;
    Ok(list.deployments)
}

/// The human-readable summaries of a deployment's reasons.
pub fn summaries(d: &ApiDeployment) -> Vec<String> {
    d.reasons
        .iter()
        .filter_map(|r| {
            r.get("summary")
                .and_then(|s| s.as_str())
                .map(str::to_string)
        })
        .collect()
}
