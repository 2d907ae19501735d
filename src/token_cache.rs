//! The verified-token cache: tokens that passed the signature and claim checks, kept per
//! verifier so that a client sending the same token again costs a lookup instead of an RSA
//! verification.
//!
//! - Keyed by the whole token: a fast hash of its length and tail (the signature, which an
//!   attacker cannot choose for a token that verifies) picks the bucket, and the token's bytes
//!   are compared exactly. Only tokens that verified are inserted, so junk cannot fill it.
//! - An entry holds the parsed claims (shared, never re-parsed) and the id of the key set that
//!   verified it. It is served only while that very key set is the current one: a refresh
//!   that brings other keys (a rotation, a retired key) ends every entry before the next
//!   lookup. The time claims are checked again on every hit.
//! - Sharded (about 64 entries per shard, 1 to 65,536 shards). The bounds in entries and
//!   bytes (the parsed claims counted) hold for the whole cache: an insert into a full cache
//!   evicts its shard's oldest entry. A shard may hold up to twice its share (plus 8), so the
//!   luck of the hash does not cut the capacity: the tokens of as many clients as the bound
//!   fit. (Threads inserting at the same moment may pass the bound by one entry each, until
//!   the next insert.)
//! - A lookup takes no lock: each shard's table is an immutable map behind an `ArcSwap`,
//!   read through arc-swap's per-thread slots, and replaced whole (copy on write of the
//!   shard's entries: about 64 pointer pairs, 150 at the largest bound) by inserts and
//!   removals, which a per-shard mutex serialises. Counters are per
//!   thread. So threads hitting different tokens share no cache line; the same token still
//!   shares its claims' reference count.

use crate::claims::{Claims, Times};
use crate::counters::Striped;
use arc_swap::ArcSwap;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Entries per shard aimed at (a copy-on-write insert copies that many pointers).
const PER_SHARD: usize = 64;
/// Most shards.
const MAX_SHARDS: usize = 65_536;
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
    /// The id of the key set that verified the token (ids are never reused, and the cache
    /// keeps no old keys alive).
    keys: u64,
    /// Which of the verifier's issuers verified it (the index its keys are asked by).
    issuer: usize,
    bytes: usize,
    /// Insertion number, matching this entry's place in the shard's queue.
    seq: u64,
}

type Table = HashMap<Arc<[u8]>, Arc<Entry>, BuildTailHash>;

/// What only writers touch, under the shard's mutex.
#[derive(Default)]
struct Writer {
    /// Tokens in insertion order (oldest first) with their insertion numbers, for eviction;
    /// an item whose number no longer matches its entry's is stale and skipped.
    order: VecDeque<(Arc<[u8]>, u64)>,
    next_seq: u64,
    bytes: usize,
}

/// The whole cache's entries and bytes, for its bounds.
struct Totals {
    entries: AtomicUsize,
    bytes: AtomicUsize,
}

impl Writer {
    fn remove(&mut self, table: &mut Table, token: &[u8], totals: &Totals) -> bool {
        let Some(old) = table.remove(token) else {
            return false;
        };
        self.bytes -= old.bytes;
        totals.entries.fetch_sub(1, Ordering::Relaxed);
        totals.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
        true
    }

    /// Drop the oldest live entry; false when there is none.
    fn evict_oldest(&mut self, table: &mut Table, totals: &Totals) -> bool {
        while let Some((token, seq)) = self.order.pop_front() {
            if table.get(&token[..]).is_some_and(|e| e.seq == seq) {
                return self.remove(table, &token, totals);
            }
        }
        false
    }

    /// Drop queue items whose entries are gone (they hold their token's bytes), once they are
    /// as many as the entries.
    fn compact(&mut self, table: &Table) {
        if self.order.len() > 2 * table.len() + 16 {
            self.order
                .retain(|(t, seq)| table.get(&t[..]).is_some_and(|e| e.seq == *seq));
        }
    }
}

/// On cache lines of its own: writers never disturb the line readers load.
#[repr(align(128))]
struct Padded<T>(T);

/// One shard, on cache lines of its own (no false sharing between shards).
#[repr(align(128))]
struct Shard {
    /// Read without a lock; replaced whole by writers.
    table: ArcSwap<Table>,
    writer: Padded<Mutex<Writer>>,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            table: ArcSwap::from_pointee(Table::default()),
            writer: Padded(Mutex::new(Writer::default())),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
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

const HITS: usize = 0;
const MISSES: usize = 1;
const EVICTIONS: usize = 2;

/// A bounded cache of verified tokens.
pub struct TokenCache {
    shards: Box<[Shard]>,
    max_entries: usize,
    max_bytes: usize,
    /// Most entries one shard holds: twice its share, plus 8.
    shard_entries: usize,
    /// Most bytes one shard holds, likewise; and an entry over a shard's share of the bytes
    /// is never admitted.
    shard_bytes: usize,
    share_bytes: usize,
    totals: Totals,
    /// Hits, misses, evictions.
    counts: Striped,
}

/// What a lookup found.
pub enum Lookup {
    /// Verified earlier by the current keys: the claims, their time claims (to check again
    /// now) and the index of the issuer whose keys verified it.
    Hit(Claims, Times, usize),
    /// Not cached, or cached under keys that are no longer the current ones.
    Miss,
}

/// An entry's memory, counted for the byte bound: the token, the claims JSON, the parsed
/// claims (walked once: a value, its heap text, map nodes) and the bookkeeping.
fn entry_bytes(token: &[u8], claims: &Claims) -> usize {
    fn parsed(value: &Value) -> usize {
        32 + match value {
            Value::String(s) => s.len() + 16,
            Value::Array(items) => items.iter().map(parsed).sum(),
            Value::Object(map) => map.iter().map(|(k, v)| k.len() + 64 + parsed(v)).sum(),
            _ => 0,
        }
    }
    let map: usize = claims
        .as_map()
        .iter()
        .map(|(k, v)| k.len() + 64 + parsed(v))
        .sum();
    token.len() + claims.json().len() + map + 256
}

impl TokenCache {
    /// A cache of at most `max_entries` tokens (at least one).
    pub fn new(max_entries: usize) -> TokenCache {
        let max_entries = max_entries.max(1);
        let shards = (max_entries / PER_SHARD).clamp(1, MAX_SHARDS);
        let share = max_entries.div_ceil(shards);
        TokenCache {
            shards: (0..shards).map(|_| Shard::new()).collect(),
            max_entries,
            max_bytes: max_entries * BYTES_PER_ENTRY,
            shard_entries: 2 * share + 8,
            shard_bytes: (2 * share + 8) * BYTES_PER_ENTRY,
            share_bytes: share * BYTES_PER_ENTRY,
            totals: Totals {
                entries: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
            },
            counts: Striped::new(3),
        }
    }

    fn shard(&self, token: &[u8]) -> &Shard {
        let mut h = BuildTailHash.build_hasher();
        h.write(token);
        // Bits 16..48 pick the shard (multiply-shift: every shard alike), so the top bits the
        // table filters its slots by stay as varied within a shard as in the whole cache.
        let middle = (h.finish() >> 16) & 0xFFFF_FFFF;
        &self.shards[((middle * self.shards.len() as u64) >> 32) as usize]
    }

    /// Look `token` up; `current` gives the id of the key set verification would use now for
    /// the issuer (by index) that verified the token (an error, such as keys unavailable, is
    /// returned as is). `current` runs with no lock held: it may wait for a fetch.
    pub fn lookup<E>(
        &self,
        token: &[u8],
        current: impl FnOnce(usize) -> Result<u64, E>,
    ) -> Result<Lookup, E> {
        let found = self
            .shard(token)
            .table
            .load()
            .get(token)
            .map(|e| (e.claims.clone(), e.times, e.keys, e.issuer));
        let Some((claims, times, verified_by, issuer)) = found else {
            self.counts.add(MISSES);
            return Ok(Lookup::Miss);
        };
        let keys = match current(issuer) {
            Ok(keys) => keys,
            Err(e) => {
                self.counts.add(MISSES);
                return Err(e);
            }
        };
        if verified_by == keys {
            self.counts.add(HITS);
            return Ok(Lookup::Hit(claims, times, issuer));
        }
        // Verified under keys that are gone: never served again (an entry another thread put
        // in meanwhile, under the current keys, stays).
        self.remove_if(token, |e| e.keys == verified_by);
        self.counts.add(MISSES);
        Ok(Lookup::Miss)
    }

    /// Keep `token`, verified by the key set whose id is `keys` of the issuer numbered
    /// `issuer`, with its claims (not if it alone would exceed a shard's byte bound).
    pub fn insert(&self, token: &[u8], claims: &Claims, issuer: usize, keys: u64) {
        let bytes = entry_bytes(token, claims);
        if token.len() > MAX_TOKEN_BYTES || bytes > self.share_bytes {
            return;
        }
        let Ok(times) = Times::of(claims.as_map()) else {
            return;
        };
        let shard = self.shard(token);
        let mut writer = shard.writer();
        let mut table = Table::clone(&shard.table.load());
        let totals = &self.totals;
        writer.remove(&mut table, token, totals);
        while table.len() >= self.shard_entries
            || writer.bytes + bytes > self.shard_bytes
            || totals.entries.load(Ordering::Relaxed) >= self.max_entries
            || totals.bytes.load(Ordering::Relaxed) + bytes > self.max_bytes
        {
            if !writer.evict_oldest(&mut table, totals) {
                break;
            }
            self.counts.add(EVICTIONS);
        }
        writer.compact(&table);
        let key: Arc<[u8]> = token.into();
        let seq = writer.next_seq;
        writer.next_seq += 1;
        writer.bytes += bytes;
        totals.entries.fetch_add(1, Ordering::Relaxed);
        totals.bytes.fetch_add(bytes, Ordering::Relaxed);
        writer.order.push_back((key.clone(), seq));
        table.insert(
            key,
            Arc::new(Entry {
                claims: claims.clone(),
                times,
                keys,
                issuer,
                bytes,
                seq,
            }),
        );
        shard.table.store(Arc::new(table));
    }

    /// Forget `token` (its time claims no longer hold, or its keys are gone).
    pub fn remove(&self, token: &[u8]) {
        self.remove_if(token, |_| true);
    }

    fn remove_if(&self, token: &[u8], condemned: impl Fn(&Entry) -> bool) {
        let shard = self.shard(token);
        let mut writer = shard.writer();
        if !shard.table.load().get(token).is_some_and(|e| condemned(e)) {
            return;
        }
        let mut table = Table::clone(&shard.table.load());
        writer.remove(&mut table, token, &self.totals);
        writer.compact(&table);
        shard.table.store(Arc::new(table));
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.table.load().len()).sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hits, misses and evictions so far.
    pub fn stats(&self) -> TokenCacheStats {
        TokenCacheStats {
            hits: self.counts.get(HITS),
            misses: self.counts.get(MISSES),
            evictions: self.counts.get(EVICTIONS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        let json = r#"{"exp":4000000000,"sub":"s"}"#.to_string();
        let map = serde_json::from_str(&json).unwrap();
        Claims::new(json, map)
    }

    fn held(cache: &TokenCache, token: &[u8]) -> bool {
        matches!(
            cache.lookup(token, |_| Ok::<u64, ()>(7)),
            Ok(Lookup::Hit(..))
        )
    }

    /// A token whose entry weighs exactly `bytes`.
    fn weighing(bytes: usize, fill: u8) -> Vec<u8> {
        let base = entry_bytes(b"", &claims());
        vec![fill; bytes - base]
    }

    #[test]
    fn removing_an_entry_gives_its_bytes_back() {
        let cache = TokenCache::new(4);
        cache.insert(b"token a", &claims(), 0, 7);
        cache.insert(b"token b", &claims(), 0, 7);
        // Replaced and removed many times: the shard's byte count stays that of two entries.
        for _ in 0..500 {
            cache.insert(b"token a", &claims(), 0, 7);
            cache.remove(b"token a");
            cache.insert(b"token a", &claims(), 0, 7);
        }
        assert!(held(&cache, b"token b"));
        assert_eq!(cache.stats().evictions, 0);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_byte_bounds_are_inclusive() {
        // One entry's share is 4 KiB: an entry of exactly that is kept, one byte more is not.
        let one = TokenCache::new(1);
        let exact = weighing(BYTES_PER_ENTRY, b'e');
        one.insert(&exact, &claims(), 0, 7);
        assert!(held(&one, &exact));
        let over = weighing(BYTES_PER_ENTRY + 1, b'o');
        one.insert(&over, &claims(), 0, 7);
        assert!(!held(&one, &over));
        // Two entries filling the whole cache's bytes exactly: both stay.
        let two = TokenCache::new(2);
        let (a, b) = (
            weighing(BYTES_PER_ENTRY, b'a'),
            weighing(BYTES_PER_ENTRY, b'b'),
        );
        two.insert(&a, &claims(), 0, 7);
        two.insert(&b, &claims(), 0, 7);
        assert!(held(&two, &a) && held(&two, &b));
        assert_eq!(two.stats().evictions, 0);
        // The longest token kept is MAX_TOKEN_BYTES.
        let roomy = TokenCache::new(10);
        let longest = vec![b'l'; MAX_TOKEN_BYTES];
        roomy.insert(&longest, &claims(), 0, 7);
        assert!(held(&roomy, &longest));
        let longer = vec![b'm'; MAX_TOKEN_BYTES + 1];
        roomy.insert(&longer, &claims(), 0, 7);
        assert!(!held(&roomy, &longer));
    }
}
