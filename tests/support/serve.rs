//! `verdict serve` as a child process on loopback ports chosen by the system, in a scratch
//! directory, with JSON logs; its API address is read from the "verdict serving" log line.

use serde_json::Value;
use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStderr, Command, Stdio};

/// A running `verdict serve`; the rest of its log lines stay readable in `logs`.
pub struct Served {
    pub child: Child,
    pub api: String,
    pub logs: Lines<BufReader<ChildStderr>>,
    _dir: tempfile::TempDir,
}

/// Starts the real binary and waits for it to log its API address.
pub fn spawn_serve() -> Served {
    let dir = tempfile::tempdir().expect("data dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["serve", "--api-addr", "127.0.0.1:0"])
        .args(["--otlp-grpc-addr", "127.0.0.1:0"])
        .args(["--otlp-http-addr", "127.0.0.1:0"])
        .env("VERDICT_LOG_FORMAT", "json")
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn verdict serve");
    let mut logs = BufReader::new(child.stderr.take().unwrap()).lines();
    let api = logs
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            let v: Value = serde_json::from_str(&l).ok()?;
            v["fields"]["api"].as_str().map(String::from)
        })
        .expect("verdict logs its API address");
    Served {
        child,
        api,
        logs,
        _dir: dir,
    }
}
