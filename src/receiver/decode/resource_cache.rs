//! Normalized resources kept per thread across requests, keyed by their encoded bytes. An
//! SDK sends the same resource in every export and a Collector the same few hundred, so
//! each distinct resource is parsed and normalized once, and every span of it shares one
//! `Arc<Resource>` in the state behind.

use super::normalize::NormalResource;
use super::NormalizeStats;
use std::cell::RefCell;

/// Distinct resources kept per thread; at a request's start a fuller cache is emptied.
pub(crate) const MAX_RESOURCES: usize = 4096;
/// Encoded bytes kept per thread (SDK resources take 0.3-0.6 KB); at a request's start a
/// cache holding more is emptied.
const MAX_BYTES: usize = 2 << 20;
/// A resource encoded in more bytes than this is normalized every time, never kept, so
/// a client sending huge resources cannot fill the cache with them.
pub(crate) const MAX_ENCODED_BYTES: usize = 2048;

#[derive(Debug)]
struct Entry {
    resource: NormalResource,
    /// Keys the resource's normalization truncated: counted again in each request that
    /// carries it, as a fresh normalization would.
    truncated_keys: u64,
    /// The last request that counted it.
    request: u64,
}

/// One thread's cache; [`with`] hands it to one request at a time.
#[derive(Debug, Default)]
pub(crate) struct ResourceCache {
    map: ahash::AHashMap<Box<[u8]>, Entry>,
    /// Bytes of the keys in `map`.
    bytes: usize,
    request: u64,
}

thread_local! {
    static CACHE: RefCell<ResourceCache> = RefCell::new(ResourceCache::default());
}

/// Runs one request's decoding with this thread's cache.
pub(crate) fn with<T>(f: impl FnOnce(&mut ResourceCache) -> T) -> T {
    CACHE.with_borrow_mut(|c| {
        c.request += 1;
        if c.map.len() >= MAX_RESOURCES || c.bytes >= MAX_BYTES {
            c.map.clear();
            c.bytes = 0;
        }
        f(c)
    })
}

impl ResourceCache {
    /// The normalized resource of `key`, normalized by `build` when not cached. `stats`
    /// counts as if it were normalized in this request: truncations once per request.
    pub(crate) fn get_or_build<E>(
        &mut self,
        key: &[u8],
        stats: &mut NormalizeStats,
        build: impl FnOnce(&mut NormalizeStats) -> Result<NormalResource, E>,
    ) -> Result<NormalResource, E> {
        if let Some(e) = self.map.get_mut(key) {
            if e.request != self.request {
                e.request = self.request;
                stats.truncated_keys += e.truncated_keys;
            }
            return Ok(e.resource.clone());
        }
        if key.len() > MAX_ENCODED_BYTES {
            return build(stats);
        }
        let before = stats.truncated_keys;
        let resource = build(stats)?;
        let entry = Entry {
            resource: resource.clone(),
            truncated_keys: stats.truncated_keys - before,
            request: self.request,
        };
        self.bytes += key.len();
        self.map.insert(key.into(), entry);
        Ok(resource)
    }
}

/// Resources in this thread's cache.
#[cfg(test)]
pub(crate) fn cached() -> usize {
    CACHE.with_borrow(|c| c.map.len())
}
