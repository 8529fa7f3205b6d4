//! The pairing store's memory of completed keys (tombstones): fingerprints in three
//! generations, so a retried copy of either span of a completed pair is recognised as a
//! duplicate for at least one TTL, at 8-9 bytes a key.

use super::pairing::Prehashed;
use crate::model::UnixNanos;

/// Fingerprints of completed keys, in three generations: the current one, a hash set,
/// takes new fingerprints until it is half a TTL old or holds half of `cap`, then is
/// sorted into a vector and becomes the newer of two older ones (dropping the oldest). A
/// fingerprint is thus remembered for at least one TTL unless more than `cap` keys of the
/// shard complete within it, in at most about 9 bytes per key of the current generation
/// and 8 per key of the older ones (a pair costs one slot, not a map entry and a queue
/// entry). Older generations are read by binary search: only a span that finds no
/// waiting partner looks there.
#[derive(Default)]
pub(super) struct Tombstones {
    current: hashbrown::HashSet<u64, std::hash::BuildHasherDefault<Prehashed>>,
    /// Sorted; the newer first.
    older: [Box<[u64]>; 2],
    since: UnixNanos,
}

impl Tombstones {
    pub(super) fn contains(&self, fp: u64) -> bool {
        self.current.contains(&fp) || self.older.iter().any(|g| g.binary_search(&fp).is_ok())
    }

    pub(super) fn insert(&mut self, fp: u64, now: UnixNanos, ttl: u64, cap: usize) {
        if now.saturating_sub(self.since) >= ttl / 2 || self.current.len() >= (cap / 2).max(1) {
            // The current table keeps its room for the next generation: no table is grown
            // from empty (rehashing all the way) at every turn.
            let mut sorted: Vec<u64> = self.current.drain().collect();
            sorted.sort_unstable();
            self.older.swap(0, 1);
            self.older[0] = sorted.into_boxed_slice();
            self.since = now;
        }
        self.current.insert(fp);
    }

    pub(super) fn len(&self) -> usize {
        self.current.len() + self.older.iter().map(|g| g.len()).sum::<usize>()
    }

    /// Heap bytes: the current table and the older generations.
    pub(super) fn heap_bytes(&self) -> usize {
        crate::telemetry::memory::hash_table_bytes(self.current.capacity(), 8)
            + self.older.iter().map(|g| g.len() * 8).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::Tombstones;

    #[test]
    fn generations_turn_over_at_half_the_ttl_or_half_the_cap_and_keep_their_table() {
        let (ttl, cap) = (10, 1_000);
        let mut t = Tombstones::default();
        for fp in (0..500u64).rev() {
            t.insert(fp, 0, ttl, cap);
        }
        // Half full: the next one turns the generations over, the first 500 sorted.
        t.insert(5_000, 1, ttl, cap);
        assert!(t.contains(0) && t.contains(499) && t.contains(5_000) && !t.contains(500));
        assert!(t.older[0].windows(2).all(|w| w[0] < w[1]));
        for fp in 5_001..5_500u64 {
            t.insert(fp, 1, ttl, cap);
        }
        let table = t.current.capacity();
        t.insert(9_000, 2, ttl, cap);
        assert!(t.contains(0) && t.contains(5_000) && t.contains(9_000));
        assert_eq!(t.len(), 500 + 500 + 1);
        // A third turn forgets the first generation; the table takes the new fingerprints.
        for fp in 9_001..9_500u64 {
            t.insert(fp, 2, ttl, cap);
        }
        t.insert(9_500, 2, ttl, cap);
        assert!(!t.contains(0) && t.contains(5_000) && t.contains(9_001) && t.contains(9_500));
        assert_eq!(t.len(), 500 + 500 + 1);
        assert_eq!(t.current.capacity(), table);
        let current = crate::telemetry::memory::hash_table_bytes(table, 8);
        assert_eq!(t.heap_bytes(), current + 1_000 * 8);
        // Half the TTL turns them over too: a fingerprint lives through two turns at least.
        t.insert(9_600, 2 + ttl / 2, ttl, cap);
        assert!(!t.contains(5_000) && t.contains(9_001) && t.contains(9_500));
        t.insert(9_700, 2 + ttl, ttl, cap);
        assert!(!t.contains(9_001) && t.contains(9_500) && t.contains(9_600));
    }
}
