//! A service's latency thresholds, one per stream of its stable version, held compactly:
//! keyed by a 64-bit keyed fingerprint of the stream's key and holding only the baseline
//! quantiles, the candidate and promotion thresholds being recomputed from them on lookup.
//! A full refresh overwrites entries in place instead of building a new table.

use super::{StreamKey, Thresholds, MAXQ};
use crate::analysis::graph::pairing::Prehashed;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::OnceLock;

/// The stored part of a threshold: the baseline's quantiles, and the full refresh that last
/// wrote it.
#[derive(Debug, Clone, Copy)]
struct Base {
    q: [u64; MAXQ],
    len: u8,
    pass: u8,
}

/// Thresholds per stream key. Two keys of one service sharing a fingerprint would share a
/// threshold: with a per-process random key and at most a few thousand streams per
/// service, the chance is below 1e-12. An entry costs 48 bytes, against 160 for the key
/// and the three threshold arrays.
#[derive(Debug, Default)]
pub struct ThresholdTable {
    by_key: HashMap<u64, Base, BuildHasherDefault<Prehashed>>,
    /// The candidate's and the promotion's latency margins the entries were written with.
    margins: (f64, f64),
    /// Numbers full refreshes (wrapping), to drop what the last one did not write.
    pass: u8,
}

/// The process's fingerprint key (random: crafted operation names cannot aim at a clash).
fn fingerprint(key: &StreamKey) -> u64 {
    static STATE: OnceLock<ahash::RandomState> = OnceLock::new();
    STATE.get_or_init(ahash::RandomState::new).hash_one(key)
}

impl ThresholdTable {
    /// The thresholds of `key`'s stream, if it has them.
    pub fn get(&self, key: &StreamKey) -> Option<Thresholds> {
        let b = self.by_key.get(&fingerprint(key))?;
        let (margin, promote_margin) = self.margins;
        let mut th = Thresholds {
            len: b.len as usize,
            ..Default::default()
        };
        for i in 0..th.len {
            let q = b.q[i];
            th.base[i] = q;
            th.cand[i] = (q as f64 * (1.0 + margin)) as u64;
            th.promote[i] = (q as f64 * (1.0 + promote_margin)) as u64;
        }
        Some(th)
    }

    pub fn contains_key(&self, key: &StreamKey) -> bool {
        self.by_key.contains_key(&fingerprint(key))
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Starts a full refresh with these margins: entries it does not write are dropped by
    /// [`Self::end_full`]. Margins that differ from the entries' drop them all at once.
    pub fn begin_full(&mut self, margins: (f64, f64)) {
        if margins != self.margins {
            self.by_key.clear();
            self.margins = margins;
        }
        self.pass = self.pass.wrapping_add(1);
    }

    /// Drops the entries the full refresh since [`Self::begin_full`] did not write.
    pub fn end_full(&mut self) {
        let pass = self.pass;
        self.by_key.retain(|_, b| b.pass == pass);
    }

    /// Sets `key`'s baseline quantiles (the first `len` of `q`).
    pub fn insert(&mut self, key: &StreamKey, q: &[u64]) {
        let len = q.len().min(MAXQ);
        let mut b = Base {
            q: [0; MAXQ],
            len: len as u8,
            pass: self.pass,
        };
        b.q[..len].copy_from_slice(&q[..len]);
        self.by_key.insert(fingerprint(key), b);
    }

    /// Heap bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        self.by_key.capacity() * (std::mem::size_of::<(u64, Base)>() + 1)
    }
}

/// Equal when every stream has the same baseline quantiles (and margins), whichever
/// refresh wrote them.
impl PartialEq for ThresholdTable {
    fn eq(&self, o: &Self) -> bool {
        self.margins == o.margins
            && self.by_key.len() == o.by_key.len()
            && self.by_key.iter().all(|(k, b)| {
                o.by_key
                    .get(k)
                    .is_some_and(|c| (b.len, b.q) == (c.len, c.q))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Name, Scope};

    fn key(op: &str) -> StreamKey {
        StreamKey {
            scope: Scope::SelfScope,
            peer: Name::from(""),
            op: Name::from(op),
        }
    }

    #[test]
    fn a_lookup_gives_the_stored_quantiles_raised_by_each_margin() {
        let mut t = ThresholdTable::default();
        t.begin_full((0.1, 0.25));
        t.insert(&key("GET /a"), &[1_000, 2_000_000, 7]);
        t.end_full();
        let th = t.get(&key("GET /a")).expect("stored");
        assert_eq!(th.len, 3);
        assert_eq!(th.base[..3], [1_000, 2_000_000, 7]);
        assert_eq!(th.cand[..3], [1_100, 2_200_000, 7]);
        assert_eq!(th.promote[..3], [1_250, 2_500_000, 8]);
        assert_eq!((th.base[3], th.cand[3], th.promote[3]), (0, 0, 0));
        assert!(t.get(&key("GET /b")).is_none() && !t.contains_key(&key("GET /b")));
    }

    #[test]
    fn a_full_refresh_keeps_only_what_it_wrote_and_new_margins_start_over() {
        let mut t = ThresholdTable::default();
        t.begin_full((0.1, 0.25));
        for op in ["a", "b", "c"] {
            t.insert(&key(op), &[10]);
        }
        t.end_full();
        t.begin_full((0.1, 0.25));
        t.insert(&key("b"), &[20]);
        t.end_full();
        // Between full refreshes new streams are added and kept by the next pass's writes.
        t.insert(&key("d"), &[30]);
        assert_eq!(t.len(), 2);
        assert!(!t.contains_key(&key("a")) && !t.contains_key(&key("c")));
        assert_eq!(t.get(&key("b")).unwrap().base[0], 20);
        assert_eq!(t.get(&key("d")).unwrap().base[0], 30);
        t.begin_full((0.2, 0.25));
        assert!(
            t.is_empty(),
            "entries written with other margins are dropped"
        );
        assert_eq!(t.heap_bytes() % 49, 0);
    }

    #[test]
    fn tables_with_the_same_quantiles_are_equal_whichever_pass_wrote_them() {
        let (mut a, mut b) = (ThresholdTable::default(), ThresholdTable::default());
        for t in [&mut a, &mut b] {
            t.begin_full((0.1, 0.25));
        }
        b.begin_full((0.1, 0.25));
        a.insert(&key("x"), &[5, 6]);
        b.insert(&key("x"), &[5, 6]);
        assert_eq!(a, b);
        b.insert(&key("x"), &[5, 7]);
        assert_ne!(a, b);
        b.insert(&key("x"), &[5, 6]);
        b.insert(&key("y"), &[1]);
        assert_ne!(a, b);
    }
}
