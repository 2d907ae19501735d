//! The verified-token cache: tokens that passed the signature and claim checks, kept per
//! verifier so that a client sending the same token again costs a lookup instead of an RSA
//! verification.
//!
//! - Keyed by the whole token: a fast hash of its length and tail (the signature, which an
//!   attacker cannot choose for a token that verifies) picks the bucket, and the token's bytes
//!   are compared exactly. Only tokens that verified are inserted, so junk cannot fill it.
//! - An entry holds the parsed claims (shared, never re-parsed) and the key set that verified
//!   it. It is served only while that very key set is the current one: a refresh that brings
//!   other keys (a rotation, a retired key) ends every entry before the next lookup. The time
//!   claims are checked again on every hit.
//! - Sharded (16 read-mostly locks), bounded in entries and bytes; a full shard evicts an
//!   arbitrary entry.

use crate::claims::{Claims, Times};
use crate::jwks::KeySet;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};

const SHARDS: usize = 16;
/// Bytes an entry may take on average (token + claims JSON), for the byte bound.
const BYTES_PER_ENTRY: usize = 4096;
/// Longest token cached (a longer one is verified every time).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Hashes the length and the last 32 bytes of each write: a token's tail is its signature.
#[derive(Default, Clone, Copy)]
struct TailHash(u64);

impl Hasher for TailHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(32)..];
        let mut h = self.0 ^ (bytes.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for chunk in tail.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517C_C1B7_2722_0A95);
        }
        self.0 = h;
    }
}

#[derive(Default, Clone, Copy)]
struct BuildTailHash;

impl BuildHasher for BuildTailHash {
    type Hasher = TailHash;
    fn build_hasher(&self) -> TailHash {
        TailHash(0)
    }
}

struct Entry {
    claims: Claims,
    /// `exp`, `nbf`, `iat`, read once: checked again on every hit.
    times: Times,
    /// The key set that verified the token (weak: the cache never keeps old keys alive, and
    /// the allocation cannot be reused for another set while this exists).
    keys: Weak<KeySet>,
    bytes: usize,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Box<[u8]>, Entry, BuildTailHash>,
    bytes: usize,
}

/// Counters of a token cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing usable (the token was then verified in full).
    pub misses: u64,
    /// Tokens dropped to make room.
    pub evictions: u64,
}

/// A bounded cache of verified tokens.
pub struct TokenCache {
    shards: Box<[RwLock<Shard>]>,
    max_entries_per_shard: usize,
    max_bytes_per_shard: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

/// What a lookup found.
pub enum Lookup {
    /// Verified earlier by the current keys: the claims, and their time claims (to check
    /// again now).
    Hit(Claims, Times),
    /// Not cached, or cached under keys that are no longer the current ones.
    Miss,
}

impl TokenCache {
    /// A cache of at most `max_entries` tokens (at least one per shard).
    pub fn new(max_entries: usize) -> TokenCache {
        let per_shard = max_entries.div_ceil(SHARDS).max(1);
        TokenCache {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            max_entries_per_shard: per_shard,
            max_bytes_per_shard: per_shard * BYTES_PER_ENTRY,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, token: &[u8]) -> &RwLock<Shard> {
        let mut h = BuildTailHash.build_hasher();
        h.write(token);
        // the top bits pick the shard, the map uses the whole hash
        &self.shards[(h.finish() >> 60) as usize % SHARDS]
    }

    /// Look `token` up; `current` gives the key set verification would use now (an error,
    /// such as keys unavailable, is returned as is).
    pub fn lookup<E>(
        &self,
        token: &[u8],
        current: impl FnOnce() -> Result<Arc<KeySet>, E>,
    ) -> Result<Lookup, E> {
        let shard = self
            .shard(token)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = shard.entries.get(token) else {
            drop(shard);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(Lookup::Miss);
        };
        // Compared under the lock: the entry (and so its weak pointer's allocation) is alive.
        let keys = current()?;
        if std::ptr::eq(entry.keys.as_ptr(), Arc::as_ptr(&keys)) {
            let (claims, times) = (entry.claims.clone(), entry.times);
            drop(shard);
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Lookup::Hit(claims, times));
        }
        drop(shard);
        // Verified under keys that are gone: never served again.
        self.remove(token);
        self.misses.fetch_add(1, Ordering::Relaxed);
        Ok(Lookup::Miss)
    }

    /// Keep `token`, verified by `keys`, with its claims.
    pub fn insert(&self, token: &[u8], claims: &Claims, keys: &Arc<KeySet>) {
        if token.len() > MAX_TOKEN_BYTES {
            return;
        }
        let Ok(times) = Times::of(claims.as_map()) else {
            return;
        };
        let bytes = token.len() + claims.json().len() + 128;
        let mut shard = self
            .shard(token)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = shard.entries.remove(token) {
            shard.bytes -= old.bytes;
        }
        while !shard.entries.is_empty()
            && (shard.entries.len() >= self.max_entries_per_shard
                || shard.bytes + bytes > self.max_bytes_per_shard)
        {
            let Some(victim) = shard.entries.keys().next().cloned() else {
                break;
            };
            if let Some(old) = shard.entries.remove(&victim) {
                shard.bytes -= old.bytes;
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        shard.bytes += bytes;
        shard.entries.insert(
            token.into(),
            Entry {
                claims: claims.clone(),
                times,
                keys: Arc::downgrade(keys),
                bytes,
            },
        );
    }

    /// Forget `token` (its time claims no longer hold, or its keys are gone).
    pub fn remove(&self, token: &[u8]) {
        let mut shard = self
            .shard(token)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = shard.entries.remove(token) {
            shard.bytes -= old.bytes;
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hits, misses and evictions so far.
    pub fn stats(&self) -> TokenCacheStats {
        TokenCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}
