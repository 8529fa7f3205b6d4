//! A real Prometheus Alertmanager (Debian `prometheus-alertmanager`) started on
//! 127.0.0.1 with a free port and a temporary storage path; stopped on drop. Installed by
//! `scripts/ensure-test-deps.sh` when missing.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "prometheus-alertmanager";
const CONFIG: &str = "route:\n  receiver: blackhole\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: blackhole\n";

/// A running Alertmanager.
pub struct Alertmanager {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    _dir: tempfile::TempDir,
}

/// Installs the binary via the project's script when it is not on the PATH.
pub fn ensure_installed() {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {BINARY}")])
        .stdout(Stdio::null())
        .status();
    if found.is_ok_and(|s| s.success()) {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/ensure-test-deps.sh");
    let st = Command::new("bash")
        .arg(script)
        .status()
        .expect("run ensure-test-deps.sh");
    assert!(st.success(), "ensure-test-deps.sh failed");
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Alertmanager {
    /// Starts one and waits until `/-/ready` answers (a few tries against port races).
    pub fn start() -> Self {
        ensure_installed();
        for _ in 0..3 {
            if let Some(am) = Self::try_start() {
                return am;
            }
        }
        panic!("Alertmanager did not become ready");
    }

    fn try_start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("alertmanager.yml");
        std::fs::write(&cfg, CONFIG).expect("write config");
        let port = free_port();
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus-alertmanager");
        let mut am = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = am.child.try_wait() {
                return None;
            }
            if ready(&am.url) {
                return Some(am);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = am.child.kill();
        None
    }

    /// `GET /api/v2/alerts` (active, silenced, inhibited and unprocessed alerts).
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        let url = format!("{}/api/v2/alerts", self.url);
        let resp = reqwest::get(&url).await.expect("GET /api/v2/alerts");
        resp.json().await.expect("alerts JSON")
    }
}

fn ready(url: &str) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(url.trim_start_matches("http://")) else {
        return false;
    };
    use std::io::{Read, Write};
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let req = "GET /-/ready HTTP/1.0\r\nHost: x\r\n\r\n";
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
