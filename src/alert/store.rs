//! The embedded durable store under the outbox: one append-only log file of records,
//! each framed as `[len: u32 LE][crc32: u32 LE][JSON payload]`, compacted into a snapshot
//! (written to a temporary file, fsynced, renamed over the log) once it grows past a size.
//!
//! Recovery reads frames until the first incomplete, oversized, CRC-failing or
//! undecodable one, keeps what came before and truncates the rest (a torn tail after
//! `kill -9` or power loss). Fsync policy: appends that create alert state or
//! notifications are fsynced before anything is handed to a sink; acknowledgements are
//! written without fsync (losing one only causes a duplicate delivery, never a loss).

use super::lifecycle::AlertRecord;
use super::outbox::Notification;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Largest record accepted; a bigger length field means corruption.
const MAX_RECORD: u32 = 16 << 20;
const LOG: &str = "alerts.log";
const TMP: &str = "alerts.log.tmp";

/// One entry of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// The current state of one alert (later records win).
    Alert(AlertRecord),
    /// An alert dropped from the state (resolved long enough ago).
    Forget { fingerprint: String },
    /// A notification waiting for delivery to one sink.
    Enqueue(Notification),
    /// A notification delivered or given up.
    Done { sink: String, id: u64 },
    /// Records written by one update in one frame, so a torn write keeps all or none
    /// (an alert's transition and its notifications stay together).
    Batch { records: Vec<Record> },
}

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alert store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("alert store record does not encode: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovered {
    pub records: Vec<Record>,
    /// Bytes cut off the end because they did not form valid records.
    pub truncated_bytes: u64,
}

/// The open log.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    file: File,
    bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Opens (creating) the store in `dir` and recovers its records.
    pub fn open(dir: &Path) -> Result<(Store, Recovered), StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(LOG);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io_err(&path))?;
        let (records, good) = decode_all(&buf);
        let truncated_bytes = (buf.len() - good) as u64;
        if truncated_bytes > 0 {
            file.set_len(good as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        let store = Store {
            dir: dir.to_path_buf(),
            file,
            bytes: good as u64,
        };
        Ok((
            store,
            Recovered {
                records,
                truncated_bytes,
            },
        ))
    }

    /// Appends records atomically (several go in one [`Record::Batch`] frame); `sync`
    /// fsyncs before returning.
    pub fn append(&mut self, records: &[Record], sync: bool) -> Result<(), StoreError> {
        let buf = match records {
            [] => return Ok(()),
            [one] => encode_all(std::slice::from_ref(one))?,
            many => encode_all(&[Record::Batch {
                records: many.to_vec(),
            }])?,
        };
        let path = self.dir.join(LOG);
        self.file.write_all(&buf).map_err(io_err(&path))?;
        if sync {
            self.file.sync_data().map_err(io_err(&path))?;
        }
        self.bytes += buf.len() as u64;
        Ok(())
    }

    /// Replaces the log with `snapshot` atomically (temp file, fsync, rename, fsync dir).
    pub fn compact(&mut self, snapshot: &[Record]) -> Result<(), StoreError> {
        let tmp = self.dir.join(TMP);
        let log = self.dir.join(LOG);
        let buf = encode_all(snapshot)?;
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&buf).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        std::fs::rename(&tmp, &log).map_err(io_err(&log))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.file = OpenOptions::new()
            .append(true)
            .open(&log)
            .map_err(io_err(&log))?;
        self.bytes = buf.len() as u64;
        Ok(())
    }

    /// Current log size in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

fn encode_all(records: &[Record]) -> Result<Vec<u8>, StoreError> {
    let mut buf = Vec::new();
    for r in records {
        let payload = serde_json::to_vec(r)?;
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        buf.extend_from_slice(&payload);
    }
    Ok(buf)
}

/// Decodes frames until the first bad one; returns them and the length of the good prefix.
pub fn decode_all(buf: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some((record, next)) = decode_one(buf, at) {
        out.push(record);
        at = next;
    }
    (out, at)
}

fn decode_one(buf: &[u8], at: usize) -> Option<(Record, usize)> {
    let header = buf.get(at..at + 8)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?);
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let end = at + 8 + len as usize;
    let payload = buf.get(at + 8..end)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let record = serde_json::from_slice(payload).ok()?;
    Some((record, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(id: u64) -> Record {
        Record::Done {
            sink: "s".into(),
            id,
        }
    }

    #[test]
    fn appends_survive_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, r) = Store::open(dir.path()).unwrap();
        assert!(r.records.is_empty());
        s.append(&[done(1), done(2)], true).unwrap();
        drop(s);
        let (mut s, r) = Store::open(dir.path()).unwrap();
        assert_eq!(
            r.records,
            vec![Record::Batch {
                records: vec![done(1), done(2)]
            }]
        );
        s.compact(&[done(7)]).unwrap();
        s.append(&[done(8)], false).unwrap();
        drop(s);
        let (_, r) = Store::open(dir.path()).unwrap();
        assert_eq!(r.records, vec![done(7), done(8)]);
    }

    #[test]
    fn every_truncation_and_corruption_recovers_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Store::open(dir.path()).unwrap();
        let all: Vec<Record> = (0..5).map(done).collect();
        for r in &all {
            s.append(std::slice::from_ref(r), true).unwrap();
        }
        drop(s);
        let path = dir.path().join(LOG);
        let full = std::fs::read(&path).unwrap();
        for cut in 0..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (_, r) = Store::open(dir.path()).unwrap();
            assert_eq!(r.records[..], all[..r.records.len()], "cut at {cut}");
            assert_eq!(
                std::fs::metadata(&path).unwrap().len() + r.truncated_bytes,
                cut as u64
            );
        }
        for pos in 0..full.len() {
            let mut bad = full.clone();
            bad[pos] ^= 0x5a;
            std::fs::write(&path, &bad).unwrap();
            let (mut s, r) = Store::open(dir.path()).unwrap();
            assert!(r.records.len() < all.len(), "flip at {pos} went unnoticed");
            assert_eq!(r.records[..], all[..r.records.len()]);
            // The store stays usable after recovery.
            s.append(&[done(99)], true).unwrap();
            drop(s);
            let (_, r2) = Store::open(dir.path()).unwrap();
            assert_eq!(r2.records.last(), Some(&done(99)));
        }
    }
}
