//! The process-global JWKS cache, keyed by JWKS URL and shared by every verifier.
//!
//! Verification reads the current key set under a read lock and clones an `Arc`; it fetches
//! only when the set is missing or expired, or once per cooldown for an unknown `kid`. Fetches
//! for one URL are serialised (single flight): a caller that waited for another's fetch uses
//! its result instead of fetching again.

use crate::clock::Clock;
use crate::error::{Error, Result, Status};
use crate::jwks::fetch::{self, FetchOptions};
use crate::jwks::keyset::KeySet;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// Cache policy. Every value has a default a user would accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheOptions {
    /// Lifetime of a fetched JWKS when the response has no `Cache-Control: max-age`.
    pub ttl: Duration,
    /// Lower bound applied to `max-age`.
    pub min_ttl: Duration,
    /// Upper bound applied to `max-age`.
    pub max_ttl: Duration,
    /// Least time between two refetches triggered by unknown `kid`s (per URL).
    pub refetch_cooldown: Duration,
    /// How long the last good keys keep serving while refreshes fail.
    pub max_stale: Duration,
    /// Network limits for each fetch.
    pub fetch: FetchOptions,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            refetch_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            fetch: FetchOptions::default(),
        }
    }
}

#[derive(Clone)]
struct Loaded {
    keys: Arc<KeySet>,
    fetched_at: f64,
    expires_at: f64,
}

#[derive(Default)]
struct FetchState {
    /// When the last refetch for an unknown `kid` started.
    last_unknown_kid_refetch: Option<f64>,
    /// No refresh before this time after a failure (while stale keys serve).
    retry_after: f64,
}

/// Counters of one JWKS URL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Fetches that produced a key set.
    pub fetches_ok: u64,
    /// Fetches that failed (network, status, body, JSON).
    pub fetches_failed: u64,
    /// Refetches started because of an unknown `kid`.
    pub unknown_kid_refetches: u64,
}

/// The cached keys of one JWKS URL.
pub struct JwksSource {
    url: String,
    loaded: RwLock<Option<Loaded>>,
    fetching: Mutex<FetchState>,
    fetches_ok: AtomicU64,
    fetches_failed: AtomicU64,
    unknown_kid_refetches: AtomicU64,
}

static SOURCES: LazyLock<Mutex<HashMap<String, Arc<JwksSource>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process-wide source for `url`, created on first use.
pub fn source(url: &str) -> Arc<JwksSource> {
    let mut map = SOURCES.lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(url.to_string())
        .or_insert_with(|| {
            Arc::new(JwksSource {
                url: url.to_string(),
                loaded: RwLock::new(None),
                fetching: Mutex::new(FetchState::default()),
                fetches_ok: AtomicU64::new(0),
                fetches_failed: AtomicU64::new(0),
                unknown_kid_refetches: AtomicU64::new(0),
            })
        })
        .clone()
}

impl JwksSource {
    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Counters for this URL.
    pub fn stats(&self) -> SourceStats {
        SourceStats {
            fetches_ok: self.fetches_ok.load(Ordering::Relaxed),
            fetches_failed: self.fetches_failed.load(Ordering::Relaxed),
            unknown_kid_refetches: self.unknown_kid_refetches.load(Ordering::Relaxed),
        }
    }

    fn current(&self) -> Option<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The keys to verify with now: cached while fresh, fetched when missing or expired, the
    /// last good ones while a refresh fails (up to `max_stale`).
    pub fn keys(&self, clock: &Clock, options: &CacheOptions) -> Result<Arc<KeySet>> {
        if let Some(l) = self.current()
            && clock.now() < l.expires_at
        {
            return Ok(l.keys);
        }
        let mut state = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        let now = clock.now();
        let current = self.current();
        if let Some(l) = &current
            && (now < l.expires_at || now < state.retry_after)
            && now - l.fetched_at <= options.max_stale.as_secs_f64()
        {
            return Ok(l.keys.clone());
        }
        match self.fetch_locked(&mut state, now, options) {
            Ok(keys) => Ok(keys),
            Err(e) => match current {
                Some(l) if now - l.fetched_at <= options.max_stale.as_secs_f64() => Ok(l.keys),
                _ => Err(e),
            },
        }
    }

    /// After a token named a `kid` that `seen` does not have: the keys to retry with, if they
    /// changed since `seen` (someone else refetched) or a refetch is allowed now and succeeded.
    /// `None` means no newer keys can be had within the cooldown.
    pub fn refetch_for_unknown_kid(
        &self,
        seen: &Arc<KeySet>,
        clock: &Clock,
        options: &CacheOptions,
    ) -> Option<Arc<KeySet>> {
        let mut state = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(l) = self.current()
            && !Arc::ptr_eq(&l.keys, seen)
        {
            return Some(l.keys);
        }
        let now = clock.now();
        if state
            .last_unknown_kid_refetch
            .is_some_and(|t| now - t < options.refetch_cooldown.as_secs_f64() && now >= t)
        {
            return None;
        }
        state.last_unknown_kid_refetch = Some(now);
        self.unknown_kid_refetches.fetch_add(1, Ordering::Relaxed);
        self.fetch_locked(&mut state, now, options).ok()
    }

    fn fetch_locked(
        &self,
        state: &mut FetchState,
        now: f64,
        options: &CacheOptions,
    ) -> Result<Arc<KeySet>> {
        let result = fetch::fetch(&self.url, &options.fetch).and_then(|f| {
            let keys = KeySet::from_json(&f.body).map_err(|e| {
                Error::with_detail(Status::KeysUnavailable, format!("{}: {e}", self.url))
            })?;
            Ok((keys, f.max_age))
        });
        match result {
            Ok((keys, max_age)) => {
                let ttl = match max_age {
                    Some(secs) => Duration::from_secs(secs).clamp(options.min_ttl, options.max_ttl),
                    None => options.ttl,
                };
                let keys = Arc::new(keys);
                *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = Some(Loaded {
                    keys: keys.clone(),
                    fetched_at: now,
                    expires_at: now + ttl.as_secs_f64(),
                });
                state.retry_after = now;
                self.fetches_ok.fetch_add(1, Ordering::Relaxed);
                Ok(keys)
            }
            Err(e) => {
                state.retry_after = now + options.refetch_cooldown.as_secs_f64();
                self.fetches_failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}
