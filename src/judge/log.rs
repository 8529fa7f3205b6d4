//! The decision log: every verdict change appended as one JSON line with its evidence, so
//! a decision can be audited later. Size-bounded: rotates to `.1` ... `.keep`.

use crate::model::{Decision, DeploymentVerdict, UnixNanos};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("decision log {path}: {source}")]
pub struct LogError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// An append-only JSON-lines file.
pub struct DecisionLog {
    path: Option<PathBuf>,
    out: Option<BufWriter<File>>,
    bytes: u64,
    max_bytes: u64,
    keep: u32,
    pub errors: u64,
    pub written: u64,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    time: String,
    previous: Option<Decision>,
    #[serde(flatten)]
    verdict: &'a DeploymentVerdict,
}

impl DecisionLog {
    /// Opens (creating) the file; an empty path disables the log.
    pub fn open(path: &str, max_bytes: u64, keep: u32) -> Result<Self, LogError> {
        let mut log = Self {
            path: None,
            out: None,
            bytes: 0,
            max_bytes,
            keep,
            errors: 0,
            written: 0,
        };
        if path.is_empty() {
            return Ok(log);
        }
        let p = PathBuf::from(path);
        let f = open_append(&p).map_err(|source| LogError {
            path: path.into(),
            source,
        })?;
        log.bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
        log.out = Some(BufWriter::new(f));
        log.path = Some(p);
        Ok(log)
    }

    /// Appends one change.
    pub fn append(&mut self, v: &DeploymentVerdict, previous: Option<Decision>, now: UnixNanos) {
        let Some(out) = self.out.as_mut() else { return };
        let line = Line {
            time: crate::clock::rfc3339(now),
            previous,
            verdict: v,
        };
        let mut buf = match serde_json::to_vec(&line) {
            Ok(b) => b,
            Err(_) => return self.errors += 1,
        };
        buf.push(b'\n');
        if out.write_all(&buf).is_err() {
            self.errors += 1;
            return;
        }
        self.written += 1;
        self.bytes += buf.len() as u64;
        if self.bytes >= self.max_bytes {
            self.rotate();
        }
    }

    /// Flushes buffered lines (once per tick).
    pub fn flush(&mut self) {
        if let Some(o) = self.out.as_mut() {
            if o.flush().is_err() {
                self.errors += 1;
            }
        }
    }

    fn rotate(&mut self) {
        let Some(p) = self.path.clone() else { return };
        self.flush();
        self.out = None;
        let name = |i: u32| PathBuf::from(format!("{}.{i}", p.display()));
        for i in (1..self.keep).rev() {
            let _ = std::fs::rename(name(i), name(i + 1));
        }
        let moved = if self.keep > 0 {
            std::fs::rename(&p, name(1))
        } else {
            std::fs::remove_file(&p)
        };
        if moved.is_err() {
            self.errors += 1;
        }
        match open_append(&p) {
            Ok(f) => {
                self.out = Some(BufWriter::new(f));
                self.bytes = 0;
            }
            Err(e) => {
                self.errors += 1;
                tracing::error!(path = %p.display(), error = %e, "decision log cannot be reopened");
            }
        }
    }
}

fn open_append(p: &PathBuf) -> std::io::Result<File> {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeploymentVerdict;

    fn v() -> DeploymentVerdict {
        DeploymentVerdict {
            environment: "e".into(),
            service: "s".into(),
            version: "2".into(),
            baseline_version: Some("1".into()),
            verdict: Decision::Rollback,
            started_at: "2023-11-14T22:13:20.000Z".into(),
            requests: 5,
            reasons: vec![],
        }
    }

    #[test]
    fn appends_json_lines_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/d.jsonl");
        let mut log = DecisionLog::open(p.to_str().unwrap(), 400, 2).unwrap();
        for _ in 0..10 {
            log.append(&v(), Some(Decision::Inconclusive), 1);
        }
        log.flush();
        assert_eq!(log.written, 10);
        assert!(dir.path().join("sub/d.jsonl.1").exists());
        assert!(!dir.path().join("sub/d.jsonl.3").exists(), "keeps 2");
        let text = std::fs::read_to_string(dir.path().join("sub/d.jsonl.1")).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["verdict"], "rollback");
        assert_eq!(first["previous"], "inconclusive");
        assert_eq!(first["baseline_version"], "1");
    }
}
