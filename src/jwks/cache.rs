//! The process-global JWKS cache, keyed by JWKS URL and shared by every verifier.
//!
//! Verification reads the current key set under a read lock and clones an `Arc`. Fetching
//! happens outside every lock, one fetch per URL at a time (single flight):
//! - keys near expiry are refreshed in the background; verification does not wait for it;
//! - keys past expiry keep serving (stale-if-error, up to `max_stale`) while a background
//!   refresh runs; failures back off exponentially with jitter;
//! - only a cold cache (no usable keys) makes a verification wait for a fetch, and only in
//!   blocking mode; in non-blocking mode it answers `KeysUnavailable` at once;
//! - an unknown `kid` seen for the first time may trigger a refetch (ETag-revalidated) at most
//!   once a second per URL; a `kid` that a refetch already looked for waits out the cooldown.
//!   So a flood of junk `kid`s costs at most one conditional request a second, and one junk
//!   token cannot hold back a freshly rotated key. Misses during a refetch wait for its result
//!   (blocking mode only).
//!
//! No thread is started until a refresh is needed. Fork safety: a fetch in flight is owned by
//! the process that started it; a child after `fork` does not wait for its parent's fetch.

use crate::clock::Clock;
use crate::error::{Error, Result, Status};
use crate::jwks::fetch::{self, FetchOptions, Outcome};
use crate::jwks::keyset::KeySet;
use crate::log::{self, Level};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

/// Cache policy. Every value has a default a user would accept.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheOptions {
    /// Lifetime of a fetched JWKS when the response has no `Cache-Control: max-age`.
    pub ttl: Duration,
    /// Lower bound applied to `max-age` (and to `ttl`).
    pub min_ttl: Duration,
    /// Upper bound applied to `max-age` (and to `ttl`).
    pub max_ttl: Duration,
    /// How long before expiry a background refresh starts (at most half the lifetime).
    pub refresh_ahead: Duration,
    /// How long a `kid` that a refetch looked for and did not find is answered at once,
    /// without another refetch (per URL). New `kid`s may refetch at most once a second.
    pub refetch_cooldown: Duration,
    /// How long the last good keys keep serving while refreshes fail.
    pub max_stale: Duration,
    /// First wait after a failed fetch; doubles with each failure in a row.
    pub backoff_initial: Duration,
    /// Longest wait between failed fetches.
    pub backoff_max: Duration,
    /// Never wait for the network in a verification (for event-loop hosts such as nginx):
    /// a cold cache answers `KeysUnavailable` and an unknown `kid` `KeyNotFound` at once while
    /// the fetch runs in the background.
    pub non_blocking: bool,
    /// A file where the last good JWKS is kept (written atomically after each fetch) and read
    /// on a cold start, so verification works while the issuer is down.
    pub snapshot: Option<PathBuf>,
    /// Network limits for each fetch.
    pub fetch: FetchOptions,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            ttl: Duration::from_secs(600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            refresh_ahead: Duration::from_secs(60),
            refetch_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            backoff_initial: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            non_blocking: false,
            snapshot: None,
            fetch: FetchOptions::default(),
        }
    }
}

/// Longest accepted TTL, TTL bound, refresh-ahead and refetch cooldown (7 days).
pub const MAX_CACHE_SECS: u64 = 7 * 24 * 3600;
/// Longest accepted stale limit (30 days).
pub const MAX_STALE_SECS: u64 = 30 * 24 * 3600;
/// Longest accepted backoff wait (1 day).
pub const MAX_BACKOFF_MS: u64 = 24 * 3600 * 1000;
/// Longest accepted fetch timeout (10 minutes).
pub const MAX_TIMEOUT_MS: u64 = 600 * 1000;
/// Largest accepted JWKS body cap (64 MiB).
pub const MAX_JWKS_BYTES_LIMIT: u64 = 64 * 1024 * 1024;

impl CacheOptions {
    /// Refuse durations and sizes no operator means (a negative number that wrapped, a typo):
    /// each has a bound, named in the error.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::with_detail(Status::ConfigInvalid, what));
        let secs = |d: Duration| d.as_secs_f64();
        for (name, value, max) in [
            ("ttl", self.ttl, MAX_CACHE_SECS),
            ("min_ttl", self.min_ttl, MAX_CACHE_SECS),
            ("max_ttl", self.max_ttl, MAX_STALE_SECS),
            ("refresh_ahead", self.refresh_ahead, MAX_CACHE_SECS),
            ("refetch_cooldown", self.refetch_cooldown, MAX_CACHE_SECS),
            ("max_stale", self.max_stale, MAX_STALE_SECS),
        ] {
            if secs(value) > max as f64 {
                return bad(format!("{name} must be at most {max} seconds"));
            }
        }
        for (name, value, min, max) in [
            ("backoff_initial", self.backoff_initial, 1, MAX_BACKOFF_MS),
            ("backoff_max", self.backoff_max, 1, MAX_BACKOFF_MS),
            (
                "connect_timeout",
                self.fetch.connect_timeout,
                1,
                MAX_TIMEOUT_MS,
            ),
            ("total_timeout", self.fetch.total_timeout, 1, MAX_TIMEOUT_MS),
        ] {
            let ms = value.as_millis();
            if ms < min as u128 || ms > max as u128 {
                return bad(format!("{name} must be {min} to {max} milliseconds"));
            }
        }
        if self.backoff_max < self.backoff_initial || self.max_ttl < self.min_ttl {
            return bad("a maximum is below its minimum".into());
        }
        if self.fetch.max_body_bytes == 0 || self.fetch.max_body_bytes > MAX_JWKS_BYTES_LIMIT {
            return bad(format!(
                "max_jwks_size must be 1 to {MAX_JWKS_BYTES_LIMIT} bytes"
            ));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Loaded {
    keys: Arc<KeySet>,
    /// The JWKS document the keys came from, for snapshots.
    body: Arc<[u8]>,
    /// When, by the wall clock (recorded in snapshots).
    fetched_at: f64,
    /// When, in monotonic ticks; ages and expiry are counted in ticks.
    fetched_tick: f64,
    expires_at: f64,
    etag: Option<String>,
}

impl Loaded {
    fn refresh_at(&self, options: &CacheOptions) -> f64 {
        refresh_at(self.fetched_tick, self.expires_at, options)
    }

    fn usable(&self, ticks: f64, options: &CacheOptions) -> bool {
        ticks - self.fetched_tick <= options.max_stale.as_secs_f64()
    }
}

fn refresh_at(fetched_tick: f64, expires_at: f64, options: &CacheOptions) -> f64 {
    let life = expires_at - fetched_tick;
    expires_at - options.refresh_ahead.as_secs_f64().min(life / 2.0)
}

/// The loaded key set's id and times, readable without a lock or a reference count (a
/// sequence lock: `seq` is odd while a writer changes the fields). Lets a token-cache hit
/// learn whether the keys it was verified with are still the current, fresh ones.
#[derive(Default)]
#[repr(align(128))] // read on every token-cache hit: a cache line of its own
struct Published {
    seq: AtomicU64,
    /// 0: nothing loaded.
    keys_id: AtomicU64,
    fetched_tick: AtomicU64,
    expires_at: AtomicU64,
}

impl Published {
    /// Writers hold the `loaded` write lock, so there is one at a time.
    fn set(&self, loaded: &Loaded) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.keys_id.store(loaded.keys.id(), Ordering::Relaxed);
        self.fetched_tick
            .store(loaded.fetched_tick.to_bits(), Ordering::Relaxed);
        self.expires_at
            .store(loaded.expires_at.to_bits(), Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// (id, fetched tick, expiry), or `None` when nothing is loaded or a writer is busy.
    fn get(&self) -> Option<(u64, f64, f64)> {
        let before = self.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            return None;
        }
        let id = self.keys_id.load(Ordering::Relaxed);
        let fetched = f64::from_bits(self.fetched_tick.load(Ordering::Relaxed));
        let expires = f64::from_bits(self.expires_at.load(Ordering::Relaxed));
        fence(Ordering::Acquire);
        (id != 0 && self.seq.load(Ordering::Relaxed) == before).then_some((id, fetched, expires))
    }
}

#[derive(Default)]
struct Control {
    /// The process (pid) running a fetch for this URL, if any.
    in_flight: Option<u32>,
    /// Completed fetches, successful or not; waiters watch it change.
    generation: u64,
    failures_in_a_row: u32,
    next_attempt: f64,
    last_unknown_kid_refetch: Option<f64>,
    /// When a new kid last waited for the next permitted refetch (at most one such wait per
    /// cooldown: a flood of new kids is answered at once, never kept waiting).
    last_waited_refetch: Option<f64>,
    /// `kid`s a refetch was made for, and when (bounded: at most one is added per refetch).
    kids_looked_up: HashMap<String, f64>,
    last_error: Option<Error>,
    /// When a failed fetch was last logged at error level, and how many failures were
    /// logged only at debug level since (a failing issuer is reported once a minute).
    failure_reported: Option<f64>,
    quiet_failures: u64,
}

/// Least time between two error-level reports of failing fetches of one URL.
const FAILURE_REPORT_INTERVAL: f64 = 60.0;

/// Least time between two refetches for new unknown `kid`s, per URL (or the cooldown, if shorter).
const NEW_KID_INTERVAL: f64 = 1.0;

/// Longest wait between failed fetches while no keys are loaded (a cold cache): requests are
/// waiting for keys, so the long backoff of a warm cache (which serves its last good keys)
/// does not apply.
pub(crate) const COLD_RETRY_SECS: f64 = 1.0;
/// Most `kid`s remembered as looked up per URL.
const MAX_KIDS_LOOKED_UP: usize = 1024;

/// Counters of one JWKS URL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Fetches that produced a key set.
    pub fetches_ok: u64,
    /// Fetches that failed (network, status, body, JSON).
    pub fetches_failed: u64,
    /// Revalidations answered 304 Not Modified.
    pub fetches_not_modified: u64,
    /// Refetches started because of an unknown `kid`.
    pub unknown_kid_refetches: u64,
    /// Key lookups answered from the cache without waiting.
    pub cache_hits: u64,
    /// Key lookups answered with keys past their expiry (stale-if-error).
    pub stale_hits: u64,
    /// Fetches that ended in a panic (counted in `fetches_failed` too).
    pub fetch_panics: u64,
}

/// Why a fetch is started (for logs).
#[derive(Clone, Copy, Debug)]
enum Reason {
    Cold,
    Refresh,
    UnknownKid,
}

/// A snapshot file this source keeps, and whether it was read already (it is read once).
struct SnapshotPath {
    path: PathBuf,
    read: bool,
}

/// The cached keys of one JWKS URL.
pub struct JwksSource {
    url: String,
    loaded: RwLock<Option<Loaded>>,
    published: Published,
    control: Mutex<Control>,
    fetched: Condvar,
    snapshots: Mutex<Vec<SnapshotPath>>,
    /// Issuers whose discovery named this URL (recorded in snapshots).
    issuers: Mutex<Vec<String>>,
    fetches_ok: AtomicU64,
    fetches_failed: AtomicU64,
    fetches_not_modified: AtomicU64,
    unknown_kid_refetches: AtomicU64,
    cache_hits: AtomicU64,
    stale_hits: AtomicU64,
    fetch_panics: AtomicU64,
    /// Fetches ended (`Control::generation`, readable without the lock).
    ended: AtomicU64,
}

/// What makes two verifiers' views of one URL the same: the URL and the options that decide
/// which answers are trusted. Verifiers that differ in these never share keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SourceKey {
    url: String,
    ca_file: Option<PathBuf>,
    allow_insecure_http: bool,
    max_body_bytes: u64,
}

static SOURCES: LazyLock<Mutex<HashMap<SourceKey, Arc<JwksSource>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process-wide source for `url` fetched with `fetch`'s trust options (CA file, plain-http
/// opt-in, body cap), created on first use.
pub fn source(url: &str, fetch: &FetchOptions) -> Arc<JwksSource> {
    let key = SourceKey {
        url: url.to_string(),
        ca_file: fetch.ca_file.clone(),
        allow_insecure_http: fetch.allow_insecure_http,
        max_body_bytes: fetch.max_body_bytes,
    };
    let mut map = SOURCES.lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(key)
        .or_insert_with(|| {
            Arc::new(JwksSource {
                url: url.to_string(),
                loaded: RwLock::new(None),
                published: Published::default(),
                control: Mutex::new(Control::default()),
                fetched: Condvar::new(),
                snapshots: Mutex::new(Vec::new()),
                issuers: Mutex::new(Vec::new()),
                fetches_ok: AtomicU64::new(0),
                fetches_failed: AtomicU64::new(0),
                fetches_not_modified: AtomicU64::new(0),
                unknown_kid_refetches: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                stale_hits: AtomicU64::new(0),
                fetch_panics: AtomicU64::new(0),
                ended: AtomicU64::new(0),
            })
        })
        .clone()
}

/// A number in [0.8, 1.2) to spread retries of many processes apart.
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return 1.0;
    }
    0.8 + 0.4 * (u32::from_le_bytes(b) as f64 / (u32::MAX as f64 + 1.0))
}

/// Seconds to wait after `failures` failed attempts in a row (at least 1): the initial wait
/// doubled per further failure, capped, times jitter. Shared by key fetches and discovery.
pub(crate) fn backoff(options: &CacheOptions, failures: u32) -> f64 {
    let exponent = failures.saturating_sub(1).min(20) as i32;
    (options.backoff_initial.as_secs_f64() * 2f64.powi(exponent))
        .min(options.backoff_max.as_secs_f64())
        * jitter()
}

/// The snapshot file: one entry per JWKS URL, so several issuers (nginx servers, verifiers)
/// may share one file.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct SnapshotFile {
    entries: Vec<SnapshotEntry>,
}

/// One JWKS as fetched, when, and the issuers whose discovery named its URL. A discovery
/// fallback uses an entry only for an issuer it names.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct SnapshotEntry {
    url: String,
    #[serde(default)]
    issuers: Vec<String>,
    fetched_at: f64,
    jwks: serde_json::Value,
}

fn read_snapshot_file(path: &Path) -> Option<SnapshotFile> {
    let text = std::fs::read(path).ok()?;
    let parsed = serde_json::from_slice::<SnapshotFile>(&text).ok();
    if parsed.is_none() {
        log::emit(Level::Warn, || {
            format!("jwtguard: snapshot {} is not readable", path.display())
        });
    }
    parsed
}

/// The JWKS URL that a snapshot file binds to `issuer` (by an earlier discovery), if any.
pub(crate) fn snapshot_url_for_issuer(path: &Path, issuer: &str) -> Option<String> {
    read_snapshot_file(path)?
        .entries
        .into_iter()
        .find(|e| e.issuers.iter().any(|i| i == issuer))
        .map(|e| e.url)
}

impl JwksSource {
    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Counters for this URL.
    pub fn stats(&self) -> SourceStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SourceStats {
            fetches_ok: get(&self.fetches_ok),
            fetches_failed: get(&self.fetches_failed),
            fetches_not_modified: get(&self.fetches_not_modified),
            unknown_kid_refetches: get(&self.unknown_kid_refetches),
            cache_hits: get(&self.cache_hits),
            stale_hits: get(&self.stale_hits),
            fetch_panics: get(&self.fetch_panics),
        }
    }

    /// Record that `issuer`'s discovery named this URL, so snapshots bind the two.
    pub(crate) fn bind_issuer(&self, issuer: &str) {
        {
            let mut issuers = self.issuers.lock().unwrap_or_else(PoisonError::into_inner);
            if issuers.iter().any(|i| i == issuer) {
                return;
            }
            issuers.push(issuer.to_string());
        }
        if let Some(l) = self.loaded() {
            self.write_snapshots(l.fetched_at, &l.body);
        }
    }

    /// Keep a snapshot of this URL's keys in `path` (and read it once, on a cold start). When
    /// keys are loaded already, they are written now.
    pub fn add_snapshot(&self, path: PathBuf) {
        {
            let mut paths = self
                .snapshots
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if paths.iter().any(|p| p.path == path) {
                return;
            }
            paths.push(SnapshotPath {
                path: path.clone(),
                read: false,
            });
        }
        if let Some(l) = self.loaded() {
            self.write_snapshot(&path, l.fetched_at, &l.body);
        }
    }

    fn loaded(&self) -> Option<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The keys to verify with now. Never waits while usable keys exist; a cold cache waits
    /// for one fetch in blocking mode and answers `KeysUnavailable` at once in non-blocking
    /// mode or while backing off after a failure.
    pub fn keys(self: &Arc<Self>, clock: &Clock, options: &CacheOptions) -> Result<Arc<KeySet>> {
        let now = clock.ticks();
        // The hot path: under the read lock, take only the key set and the times (no clone
        // of the document or the ETag).
        let view = |s: &Self| {
            s.loaded
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|l| {
                    (
                        l.keys.clone(),
                        l.usable(now, options),
                        l.refresh_at(options),
                        l.expires_at,
                    )
                })
        };
        let mut current = view(self);
        if current.is_none() && self.seed_from_snapshot(clock, options) {
            current = view(self);
        }
        if let Some((keys, true, refresh_at, expires_at)) = current {
            if now >= refresh_at {
                self.refresh_in_background(clock, options, Reason::Refresh);
            }
            if now < expires_at {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stale_hits.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(keys);
        }
        if options.non_blocking {
            self.refresh_in_background(clock, options, Reason::Cold);
            return Err(self.unavailable());
        }
        match self.fetch_or_wait(clock, options, Reason::Cold) {
            Some(l) if l.usable(clock.ticks(), options) => Ok(l.keys),
            _ => Err(self.unavailable()),
        }
    }

    /// Whether keys usable now are loaded (fresh, or stale within `max_stale`), without
    /// fetching anything.
    pub fn has_usable_keys(&self, clock: &Clock, options: &CacheOptions) -> bool {
        let now = clock.ticks();
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|l| l.usable(now, options))
    }

    /// The id of the key set [`keys`](Self::keys) would answer now. While the loaded keys are
    /// fresh and no refresh is due this takes no lock and touches no shared counter (the
    /// token cache asks it on every hit); otherwise it is `keys`, with all it does.
    pub fn keys_id(self: &Arc<Self>, clock: &Clock, options: &CacheOptions) -> Result<u64> {
        if let Some((id, fetched_tick, expires_at)) = self.published.get() {
            let now = clock.ticks();
            if now < refresh_at(fetched_tick, expires_at, options)
                && now < expires_at
                && now - fetched_tick <= options.max_stale.as_secs_f64()
            {
                return Ok(id);
            }
        }
        self.keys(clock, options).map(|k| k.id())
    }

    /// After a token named `kid` (`None`: no `kid`) that `seen` lacks: keys to retry with, if
    /// newer keys are loaded or a refetch is allowed now and brings some. `None` answers the
    /// miss at once. A refetch is allowed for a `kid` no refetch looked for within the
    /// cooldown, at most once a second per URL.
    pub fn refetch_for_unknown_kid(
        self: &Arc<Self>,
        seen: &Arc<KeySet>,
        kid: Option<&str>,
        clock: &Clock,
        options: &CacheOptions,
    ) -> Option<Arc<KeySet>> {
        let newer = |s: &Self| {
            s.loaded
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|l| l.keys.clone())
                .filter(|k| !Arc::ptr_eq(k, seen))
        };
        // A fetch already in flight may have begun before this kid was published. When it
        // brings nothing newer, the kid gets a fetch of its own (within the same limits as
        // any), or, when another thread's is already running (it began after the first one
        // ended, so after this miss), that one is waited for: at most two waits. A fetch is
        // claimed (marked in flight) under the same lock as the decision to make it, so a
        // thread refused a refetch because another just decided on one always sees that
        // fetch running and waits for it, never a gap in which it would give up. These
        // refetches are limited by the kid's cooldown only, never by the failure backoff.
        let pid = std::process::id();
        let mut waited_for_another = false;
        loop {
            if let Some(keys) = newer(self) {
                return Some(keys);
            }
            let running = {
                let mut control = self.control();
                if control.in_flight == Some(pid) {
                    Ok(control.generation)
                } else {
                    match self.may_refetch_for(&mut control, kid, clock, options) {
                        Some(delay) => {
                            control.in_flight = Some(pid);
                            Err(delay)
                        }
                        None => {
                            // No refetch for this kid now; but a fetch may have ended between
                            // the look above and this lock (it loads its keys before it
                            // clears in_flight): answer with what it brought.
                            drop(control);
                            return newer(self);
                        }
                    }
                }
            };
            let generation = match running {
                Ok(generation) => generation,
                // Claimed: this thread's fetch (or its background thread's), at once or when
                // the next refetch for a new kid is permitted. Meanwhile it is in flight:
                // others wait for it, and event-loop hosts see a fetch running and wait.
                Err(delay) => {
                    if options.non_blocking {
                        self.spawn_claimed_after(delay, clock, options, Reason::UnknownKid);
                        return None;
                    }
                    std::thread::sleep(delay);
                    self.run_fetch(clock, options, Reason::UnknownKid);
                    return newer(self);
                }
            };
            if options.non_blocking {
                return None;
            }
            self.wait_for_fetch(generation, options);
            if waited_for_another {
                return newer(self);
            }
            waited_for_another = true;
        }
    }

    /// Wait until the fetch running when the completed-fetch count was `generation` ends (at
    /// most the longest a fetch can take, redirects included, and a second).
    fn wait_for_fetch(&self, generation: u64, options: &CacheOptions) {
        let pid = std::process::id();
        let limit = options.fetch.total_timeout * (fetch::MAX_REDIRECTS as u32 + 1)
            + Duration::from_secs(1);
        let mut control = self.control();
        while control.in_flight == Some(pid) && control.generation == generation {
            let (guard, timeout) = self
                .fetched
                .wait_timeout(control, limit)
                .unwrap_or_else(PoisonError::into_inner);
            control = guard;
            if timeout.timed_out() {
                break;
            }
        }
    }

    /// How many fetches of this URL have ended (successful or not) in this process. With
    /// [`is_fetching`](Self::is_fetching) it tells a host that got `KeyNotFound` or
    /// `KeysUnavailable` whether keys may have changed since it verified: a fetch running
    /// then, or one that ended in between (the count moved). Lock-free: event-loop hosts read
    /// it before every verification.
    pub fn fetch_epoch(&self) -> u64 {
        self.ended.load(Ordering::Acquire)
    }

    /// Whether a refetch for `kid` is allowed, and after what wait (zero: now); recorded when
    /// it is: a kid no refetch looked for within the cooldown, at most once a second per URL.
    fn may_refetch_for(
        &self,
        control: &mut Control,
        kid: Option<&str>,
        clock: &Clock,
        options: &CacheOptions,
    ) -> Option<Duration> {
        let now = clock.ticks();
        let cooldown = options.refetch_cooldown.as_secs_f64();
        // Times may lie ahead: a refetch scheduled for when it is permitted.
        let within = |t: f64, span: f64| now < t + span;
        let kid = kid.unwrap_or("");
        if control
            .kids_looked_up
            .get(kid)
            .is_some_and(|t| within(*t, cooldown))
        {
            return None;
        }
        // A kid no refetch looked for, just after another kid's refetch (a key set rotated
        // twice within a second): it waits for the next permitted refetch, under a second,
        // rather than being refused. Once per cooldown: more new kids that soon are a flood,
        // answered at once as before. Either way at most one refetch a second: this one is
        // claimed now, so every new kid meanwhile waits for it.
        let interval = NEW_KID_INTERVAL.min(cooldown);
        let delay = match control.last_unknown_kid_refetch {
            Some(t) if within(t, interval) => {
                if control
                    .last_waited_refetch
                    .is_some_and(|w| within(w, cooldown))
                {
                    return None;
                }
                control.last_waited_refetch = Some(now);
                t + interval - now
            }
            _ => 0.0,
        };
        if control.kids_looked_up.len() >= MAX_KIDS_LOOKED_UP {
            control.kids_looked_up.retain(|_, t| within(*t, cooldown));
            if control.kids_looked_up.len() >= MAX_KIDS_LOOKED_UP {
                control.kids_looked_up.clear();
            }
        }
        control.kids_looked_up.insert(kid.to_string(), now + delay);
        control.last_unknown_kid_refetch = Some(now + delay);
        self.unknown_kid_refetches.fetch_add(1, Ordering::Relaxed);
        Some(Duration::from_secs_f64(delay))
    }

    /// Fetch now in this thread, or wait for the fetch already running, unless backing off.
    /// Returns what is loaded afterwards.
    fn fetch_or_wait(
        &self,
        clock: &Clock,
        options: &CacheOptions,
        reason: Reason,
    ) -> Option<Loaded> {
        let pid = std::process::id();
        let mut control = self.control();
        if control.in_flight == Some(pid) {
            // (wait_for_fetch looks again under the lock: a fetch that ends in between is
            // not waited for.)
            let seen = control.generation;
            drop(control);
            self.wait_for_fetch(seen, options);
            return self.loaded();
        }
        if clock.ticks() < control.next_attempt {
            return self.loaded();
        }
        control.in_flight = Some(pid);
        drop(control);
        self.run_fetch(clock, options, reason);
        self.loaded()
    }

    /// Start a fetch on a background thread unless one is running or the backoff says wait.
    fn refresh_in_background(
        self: &Arc<Self>,
        clock: &Clock,
        options: &CacheOptions,
        reason: Reason,
    ) {
        let pid = std::process::id();
        {
            let mut control = self.control();
            if control.in_flight == Some(pid) || clock.ticks() < control.next_attempt {
                return;
            }
            control.in_flight = Some(pid);
        }
        self.spawn_claimed(clock, options, reason);
    }

    /// Run a fetch this thread claimed (marked in flight) on a background thread.
    fn spawn_claimed(self: &Arc<Self>, clock: &Clock, options: &CacheOptions, reason: Reason) {
        self.spawn_claimed_after(Duration::ZERO, clock, options, reason);
    }

    /// [`spawn_claimed`](Self::spawn_claimed), the fetch beginning after `delay`.
    fn spawn_claimed_after(
        self: &Arc<Self>,
        delay: Duration,
        clock: &Clock,
        options: &CacheOptions,
        reason: Reason,
    ) {
        let now = clock.ticks();
        let (me, thread_clock, thread_options) = (self.clone(), clock.clone(), options.clone());
        let spawned = std::thread::Builder::new()
            .name("jwtguard-jwks".into())
            .spawn(move || {
                std::thread::sleep(delay);
                me.run_fetch(&thread_clock, &thread_options, reason)
            });
        if let Err(e) = spawned {
            log::emit(Level::Error, || {
                format!("jwtguard: cannot start a JWKS refresh thread: {e}")
            });
            self.finish_fetch(false, now, options);
        }
    }

    /// Fetch, parse and install the keys, then wake waiters. Runs with no lock held during I/O.
    /// However it ends (a panic included), the in-flight marker is cleared.
    fn run_fetch(&self, clock: &Clock, options: &CacheOptions, reason: Reason) {
        let mut guard = FetchGuard {
            source: self,
            clock,
            options,
            finished: false,
        };
        #[cfg(test)]
        if tests::PANIC_IN_FETCH.swap(false, Ordering::SeqCst) {
            panic!("forced panic in a fetch (test)");
        }
        let previous = self.loaded();
        let etag = previous.as_ref().and_then(|l| l.etag.clone());
        let result = fetch::fetch(&self.url, &options.fetch, etag.as_deref());
        let (wall, now) = (clock.now(), clock.ticks());
        let ttl_for = |max_age: Option<u64>| {
            let ttl = max_age.map_or(options.ttl, Duration::from_secs);
            ttl.clamp(options.min_ttl, options.max_ttl.max(options.min_ttl))
                .as_secs_f64()
        };
        let ok = match result {
            Ok(Outcome::NotModified { max_age }) => match previous {
                Some(mut l) => {
                    l.fetched_at = wall;
                    l.fetched_tick = now;
                    l.expires_at = now + ttl_for(max_age);
                    self.install(l);
                    self.fetches_not_modified.fetch_add(1, Ordering::Relaxed);
                    log::emit(Level::Debug, || {
                        format!("jwtguard: JWKS {} not modified", self.url)
                    });
                    true
                }
                None => self.record_failure(
                    now,
                    Error::with_detail(Status::KeysUnavailable, "304 without cached keys"),
                ),
            },
            Ok(Outcome::Body(fetched)) => match KeySet::from_json(&fetched.body) {
                Ok(keys) if keys.is_empty() => self.record_failure(
                    now,
                    Error::with_detail(
                        Status::KeysUnavailable,
                        format!(
                            "{}: the JWKS has no usable key ({} skipped)",
                            self.url,
                            keys.skipped().len()
                        ),
                    ),
                ),
                Ok(keys) => {
                    for skipped in keys.skipped() {
                        log::emit(Level::Warn, || {
                            format!(
                                "jwtguard: JWKS {} key #{} (kid {:?}) skipped: {}",
                                self.url, skipped.index, skipped.kid, skipped.reason
                            )
                        });
                    }
                    log::emit(Level::Info, || {
                        format!(
                            "jwtguard: JWKS {} fetched ({reason:?}): {} usable keys",
                            self.url,
                            keys.len()
                        )
                    });
                    self.write_snapshots(wall, &fetched.body);
                    // The same document again keeps the same key set, so what was verified
                    // with it (the token cache) stays valid.
                    let keys = match &previous {
                        Some(p) if *p.body == *fetched.body => p.keys.clone(),
                        _ => Arc::new(keys),
                    };
                    self.install(Loaded {
                        keys,
                        body: fetched.body.into(),
                        fetched_at: wall,
                        fetched_tick: now,
                        expires_at: now + ttl_for(fetched.max_age),
                        etag: fetched.etag,
                    });
                    self.fetches_ok.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(e) => self.record_failure(
                    now,
                    Error::with_detail(
                        Status::KeysUnavailable,
                        format!("{}: {}", self.url, e.detail().unwrap_or("not a JWKS")),
                    ),
                ),
            },
            Err(e) => self.record_failure(now, e),
        };
        self.finish_fetch(ok, now, options);
        guard.finished = true;
    }

    /// Count and remember a failed fetch. The first failure is logged at error level, then
    /// at most one a minute with the number logged at debug level in between: a retry each
    /// second against a dead issuer does not become a line each second.
    fn record_failure(&self, now: f64, error: Error) -> bool {
        self.fetches_failed.fetch_add(1, Ordering::Relaxed);
        let stale = self.loaded().is_some();
        let (due, quiet) = {
            let mut control = self.control();
            let due = control
                .failure_reported
                .is_none_or(|t| !(now >= t && now - t < FAILURE_REPORT_INTERVAL));
            let quiet = control.quiet_failures;
            if due {
                control.failure_reported = Some(now);
                control.quiet_failures = 0;
            } else {
                control.quiet_failures += 1;
            }
            control.last_error = Some(error.clone());
            (due, quiet)
        };
        log::emit(if due { Level::Error } else { Level::Debug }, || {
            format!(
                "jwtguard: JWKS fetch failed: {error}{}{}",
                if stale {
                    "; serving the last good keys"
                } else {
                    ""
                },
                if due && quiet > 0 {
                    format!(" ({quiet} more failed fetches since the last report)")
                } else {
                    String::new()
                }
            )
        });
        false
    }

    fn finish_fetch(&self, ok: bool, now: f64, options: &CacheOptions) {
        let cold = self
            .loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none();
        let mut control = self.control();
        control.in_flight = None;
        control.generation += 1;
        // Published with the keys the fetch installed before (a reader that sees the new
        // count sees them).
        self.ended.store(control.generation, Ordering::Release);
        if ok {
            control.failures_in_a_row = 0;
            control.next_attempt = now;
            control.last_error = None;
            control.failure_reported = None;
            control.quiet_failures = 0;
        } else {
            control.failures_in_a_row = control.failures_in_a_row.saturating_add(1);
            let mut wait = backoff(options, control.failures_in_a_row);
            if cold {
                wait = wait.min(COLD_RETRY_SECS);
            }
            control.next_attempt = now + wait;
        }
        drop(control);
        self.fetched.notify_all();
    }

    fn install(&self, loaded: Loaded) {
        let mut slot = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        self.published.set(&loaded);
        *slot = Some(loaded);
    }

    fn unavailable(&self) -> Error {
        self.control().last_error.clone().unwrap_or_else(|| {
            Error::with_detail(
                Status::KeysUnavailable,
                format!("{}: no keys yet", self.url),
            )
        })
    }

    fn snapshot_paths(&self) -> Vec<PathBuf> {
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|p| p.path.clone())
            .collect()
    }

    fn write_snapshots(&self, now: f64, body: &[u8]) {
        for path in self.snapshot_paths() {
            self.write_snapshot(&path, now, body);
        }
    }

    /// Put this URL's entry into one snapshot file: under an exclusive lock on `PATH.lock`
    /// (several processes share the file), read, replace the entry, write a temporary file and
    /// rename it over the old one. Issuers this source was discovered for are bound to this
    /// entry only.
    fn write_snapshot(&self, path: &Path, fetched_at: f64, body: &[u8]) {
        let Ok(jwks) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        let issuers = self
            .issuers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut lock_name = path.as_os_str().to_owned();
        lock_name.push(".lock");
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(lock_name))
            .and_then(|lock| {
                lock.lock()?;
                let mut file = read_snapshot_file(path).unwrap_or_default();
                let mut entry = SnapshotEntry {
                    url: self.url.clone(),
                    issuers: issuers.clone(),
                    fetched_at,
                    jwks,
                };
                for e in &mut file.entries {
                    if e.url == self.url {
                        for i in &e.issuers {
                            if !entry.issuers.contains(i) {
                                entry.issuers.push(i.clone());
                            }
                        }
                    } else {
                        e.issuers.retain(|i| !issuers.contains(i));
                    }
                }
                file.entries.retain(|e| e.url != self.url);
                file.entries.push(entry);
                let text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
                std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, path))
            });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            log::emit(Level::Warn, || {
                format!("jwtguard: cannot write snapshot {}: {e}", path.display())
            });
        }
    }

    /// Load this URL's entry from the first snapshot that has one still within `max_stale`.
    /// Each file is read once per process (never again on later cold-cache calls). A
    /// `fetched_at` later than the file's modification time or than now counts as the earlier
    /// of the two (a clock that was wrong when the file was written does not pin its keys).
    fn seed_from_snapshot(&self, clock: &Clock, options: &CacheOptions) -> bool {
        let (now, ticks) = (clock.now(), clock.ticks());
        let unread: Vec<PathBuf> = {
            let mut paths = self
                .snapshots
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut unread = Vec::new();
            for p in paths.iter_mut().filter(|p| !p.read) {
                p.read = true;
                unread.push(p.path.clone());
            }
            unread
        };
        for path in unread {
            let Some(file) = read_snapshot_file(&path) else {
                continue;
            };
            let Some(entry) = file.entries.into_iter().find(|e| e.url == self.url) else {
                continue;
            };
            let written = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(f64::INFINITY, |d| d.as_secs_f64());
            let fetched_at = entry.fetched_at.min(written).min(now);
            let age = now - fetched_at;
            if age.is_nan() || age > options.max_stale.as_secs_f64() {
                continue;
            }
            let body = entry.jwks.to_string().into_bytes();
            let Ok(keys) = KeySet::from_json(&body) else {
                continue;
            };
            if keys.is_empty() {
                continue;
            }
            let mut slot = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                log::emit(Level::Info, || {
                    format!(
                        "jwtguard: JWKS {} loaded from snapshot {}",
                        self.url,
                        path.display()
                    )
                });
                let ttl = options
                    .ttl
                    .clamp(options.min_ttl, options.max_ttl.max(options.min_ttl));
                let loaded = Loaded {
                    keys: Arc::new(keys),
                    body: body.into(),
                    fetched_at,
                    fetched_tick: ticks - age,
                    expires_at: ticks - age + ttl.as_secs_f64(),
                    etag: None,
                };
                self.published.set(&loaded);
                *slot = Some(loaded);
            }
            return true;
        }
        false
    }

    /// Whether a fetch for this URL is running in this process now.
    pub fn is_fetching(&self) -> bool {
        self.control().in_flight == Some(std::process::id())
    }

    /// Wait until no fetch for this URL runs in this process (at most `timeout`).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let pid = std::process::id();
        let deadline = std::time::Instant::now() + timeout;
        let mut control = self.control();
        while control.in_flight == Some(pid) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            control = self
                .fetched
                .wait_timeout(control, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Fetch now (waiting for it), whatever the cache state, unless a fetch is already running
    /// (then wait for that one). For hosts that prefetch at start and for tests.
    pub fn refresh_now(&self, clock: &Clock, options: &CacheOptions) -> Result<()> {
        {
            let mut control = self.control();
            control.next_attempt = f64::MIN;
        }
        self.fetch_or_wait(clock, options, Reason::Refresh);
        match self.control().last_error.clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Clears a fetch's in-flight marker if the fetch ends without doing so (a panic), so that
/// later refreshes are not blocked forever; counts and logs it.
struct FetchGuard<'a> {
    source: &'a JwksSource,
    clock: &'a Clock,
    options: &'a CacheOptions,
    finished: bool,
}

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.source.fetch_panics.fetch_add(1, Ordering::Relaxed);
            self.source.fetches_failed.fetch_add(1, Ordering::Relaxed);
            log::emit(Level::Error, || {
                format!("jwtguard: JWKS fetch of {} panicked", self.source.url)
            });
            self.source
                .finish_fetch(false, self.clock.ticks(), self.options);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicBool;

    pub(super) static PANIC_IN_FETCH: AtomicBool = AtomicBool::new(false);

    /// A loopback server answering every request with `body` as JSON.
    fn serve(body: &'static str) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    #[test]
    fn a_panic_in_a_background_fetch_clears_the_in_flight_marker() {
        let url = serve(r#"{"keys":[]}"#);
        let source = source(&url, &FetchOptions::default());
        let options = CacheOptions::default();
        PANIC_IN_FETCH.store(true, Ordering::SeqCst);
        source.refresh_in_background(&Clock::System, &options, Reason::Cold);
        assert!(
            source.wait_idle(Duration::from_secs(10)),
            "the marker was cleared"
        );
        assert!(!source.is_fetching());
        assert_eq!(source.stats().fetch_panics, 1);
        assert_eq!(source.stats().fetches_failed, 1);
        // Later fetches run again (this one fails: the set has no usable key).
        assert!(source.refresh_now(&Clock::System, &options).is_err());
        assert_eq!(source.stats().fetches_failed, 2);
    }
}
