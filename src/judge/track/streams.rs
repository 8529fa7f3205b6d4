//! A version's streams in two tables: its own (self-scope, one per operation) and those
//! that name a peer (calls out and in, path). The per-second checks that read only the
//! own streams (incidents, served requests) walk a few dozen instead of every peer's,
//! which on a wide graph are thousands.

use super::{Stream, StreamKey};
use crate::model::Scope;
use ahash::AHashMap as HashMap;

/// Boxed streams: a stream is about 300 bytes and a hash table keeps a third to a half of
/// its slots empty, so inline streams held more empty room than streams.
pub type Table = HashMap<StreamKey, Box<Stream>>;

/// The streams of one version, split by scope.
#[derive(Debug, Default)]
pub struct Streams {
    own: Table,
    peers: Table,
}

impl Streams {
    /// The table that holds streams of `scope`.
    pub fn table_mut(&mut self, scope: Scope) -> &mut Table {
        match scope {
            Scope::SelfScope => &mut self.own,
            _ => &mut self.peers,
        }
    }

    fn table(&self, scope: Scope) -> &Table {
        match scope {
            Scope::SelfScope => &self.own,
            _ => &self.peers,
        }
    }

    /// The own (self-scope) streams.
    pub fn own(&self) -> &Table {
        &self.own
    }

    /// The streams that name a peer.
    pub fn peers(&self) -> &Table {
        &self.peers
    }

    pub fn len(&self) -> usize {
        self.own.len() + self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.peers.is_empty()
    }

    pub fn get(&self, key: &StreamKey) -> Option<&Stream> {
        self.table(key.scope).get(key).map(|s| s.as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&StreamKey, &Stream)> {
        self.own
            .iter()
            .chain(self.peers.iter())
            .map(|(k, s)| (k, s.as_ref()))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&StreamKey, &mut Stream)> {
        self.own
            .iter_mut()
            .chain(self.peers.iter_mut())
            .map(|(k, s)| (k, s.as_mut()))
    }

    pub fn values(&self) -> impl Iterator<Item = &Stream> {
        self.iter().map(|(_, s)| s)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.iter_mut().map(|(_, s)| s)
    }
}

impl std::ops::Index<&StreamKey> for Streams {
    type Output = Stream;

    fn index(&self, key: &StreamKey) -> &Stream {
        self.get(key).expect("no such stream")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Name;

    fn key(scope: Scope, peer: &str) -> StreamKey {
        StreamKey {
            scope,
            peer: Name::from(peer),
            op: Name::from(""),
        }
    }

    #[test]
    fn own_and_peer_streams_go_to_their_tables_and_are_found_in_both_walks() {
        let mut s = Streams::default();
        let own = key(Scope::SelfScope, "");
        let out = key(Scope::Outgoing, "payment");
        let inc = key(Scope::Incoming, "frontend");
        for k in [&own, &out, &inc] {
            s.table_mut(k.scope).insert(k.clone(), Box::default());
        }
        assert_eq!((s.own().len(), s.peers().len(), s.len()), (1, 2, 3));
        assert!(s.own().contains_key(&own) && !s.own().contains_key(&out));
        assert!(s.get(&inc).is_some() && s.get(&key(Scope::Path, "x")).is_none());
        let mut walked: Vec<_> = s.iter().map(|(k, _)| k.clone()).collect();
        walked.sort();
        let mut want = vec![own, out, inc];
        want.sort();
        assert_eq!(walked, want);
        assert_eq!(s.values_mut().count(), 3);
        assert!(!s.is_empty() && Streams::default().is_empty());
    }
}
