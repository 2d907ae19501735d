//! OpenID Connect discovery: from an issuer alone to its JWKS URL
//! (`{issuer}/.well-known/openid-configuration` → `jwks_uri`), once per verifier, with the
//! same backoff, snapshot and non-blocking rules as the key cache.

use crate::clock::Clock;
use crate::error::{Error, Result, Status};
use crate::jwks::cache::{self, CacheOptions, JwksSource};
use crate::jwks::fetch::{self, Outcome};
use crate::log::{self, Level};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};

/// The discovery URL of an issuer.
pub fn configuration_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Fetch an issuer's discovery document and return its `jwks_uri`. The document's `issuer`
/// must equal `issuer` exactly (OpenID Connect Discovery 1.0, section 4.3).
pub fn discover(issuer: &str, options: &CacheOptions) -> Result<String> {
    let url = configuration_url(issuer);
    let bad = |why: String| Error::with_detail(Status::KeysUnavailable, format!("{url}: {why}"));
    let body = match fetch::fetch(&url, &options.fetch, None)? {
        Outcome::Body(f) => f.body,
        Outcome::NotModified { .. } => return Err(bad("unexpected 304".into())),
    };
    jwks_uri_of(&body, issuer, options.fetch.allow_insecure_http).map_err(bad)
}

/// The `jwks_uri` of a discovery document for `issuer`, or why there is none usable.
pub fn jwks_uri_of(
    body: &[u8],
    issuer: &str,
    allow_insecure_http: bool,
) -> std::result::Result<String, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    match doc.get("issuer").and_then(|v| v.as_str()) {
        Some(found) if found == issuer => {}
        found => return Err(format!("issuer is {found:?}, expected {issuer:?}")),
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or_else(|| "no jwks_uri".to_string())?;
    fetch::check_url(jwks_uri, allow_insecure_http).map_err(|e| format!("jwks_uri: {e}"))?;
    Ok(jwks_uri.to_string())
}

#[derive(Default)]
struct Attempts {
    /// The process (pid) running discovery now, if any: a child after `fork` does not wait
    /// for a discovery that runs only in its parent.
    running: Option<u32>,
    failures_in_a_row: u32,
    next_attempt: f64,
    last_error: Option<Error>,
}

/// A verifier's issuer, resolved to a JWKS source on first use.
pub struct Discovery {
    issuer: String,
    /// Set by a successful discovery only, for the process lifetime.
    resolved: OnceLock<Arc<JwksSource>>,
    /// The source a snapshot file binds to this issuer, looked up once; used only while
    /// discovery has not succeeded.
    from_snapshot: OnceLock<Option<Arc<JwksSource>>>,
    attempts: Mutex<Attempts>,
    finished: Condvar,
    /// Discoveries that ended (however), for [`Discovery::fetch_epoch`].
    ended: AtomicU64,
}

/// Clears the running marker however a discovery ends (a panic included) and wakes waiters.
struct Running<'a>(&'a Discovery);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.attempts().running = None;
        self.0.ended.fetch_add(1, Ordering::Release);
        self.0.finished.notify_all();
    }
}

impl Discovery {
    /// Discovery for `issuer`; nothing is fetched yet.
    pub fn new(issuer: &str) -> Discovery {
        Discovery {
            issuer: issuer.to_string(),
            resolved: OnceLock::new(),
            from_snapshot: OnceLock::new(),
            attempts: Mutex::new(Attempts::default()),
            finished: Condvar::new(),
            ended: AtomicU64::new(0),
        }
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, Attempts> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether discovery, or a fetch of the issuer's keys, is running in this process now.
    pub fn is_running(&self) -> bool {
        self.attempts().running == Some(std::process::id())
            || self.current().is_some_and(|s| s.is_fetching())
    }

    /// Discoveries and key fetches that ended: see [`JwksSource::fetch_epoch`]. Lock-free,
    /// and it never goes back (the sources counted are only ever added).
    pub fn fetch_epoch(&self) -> u64 {
        let of = |s: Option<&Arc<JwksSource>>| s.map_or(0, |s| s.fetch_epoch());
        self.ended
            .load(Ordering::Acquire)
            .wrapping_add(of(self.resolved.get()))
            .wrapping_add(of(self.from_snapshot.get().and_then(Option::as_ref)))
    }

    /// The JWKS source, once discovery succeeded.
    pub fn resolved(&self) -> Option<&Arc<JwksSource>> {
        self.resolved.get()
    }

    /// The source in use now: the discovered one, else the one a snapshot binds to this issuer
    /// (if it was looked up already).
    pub fn current(&self) -> Option<&Arc<JwksSource>> {
        self.resolved
            .get()
            .or_else(|| self.from_snapshot.get().and_then(Option::as_ref))
    }

    fn settle(&self, url: String, options: &CacheOptions) -> &Arc<JwksSource> {
        self.resolved.get_or_init(|| {
            let source = cache::source(&url, &options.fetch);
            source.bind_issuer(&self.issuer);
            if let Some(path) = &options.snapshot {
                source.add_snapshot(path.clone());
            }
            log::emit(Level::Info, || {
                format!(
                    "jwtguard: issuer {} publishes its keys at {url}",
                    self.issuer
                )
            });
            source
        })
    }

    /// The JWKS source, discovering it now (blocking mode; threads arriving meanwhile wait for
    /// that discovery), or in the background (non-blocking mode, answering from the snapshot
    /// or `KeysUnavailable` meanwhile). While discovery has not succeeded, a snapshot entry
    /// that an earlier discovery of this same issuer recorded stands in; it is never kept once
    /// discovery succeeds.
    pub fn source(
        self: &Arc<Self>,
        clock: &Clock,
        options: &CacheOptions,
    ) -> Result<&Arc<JwksSource>> {
        if let Some(s) = self.resolved.get() {
            return Ok(s);
        }
        let pid = std::process::id();
        {
            let mut attempts = self.attempts();
            if attempts.running == Some(pid) {
                if !options.non_blocking {
                    let limit = options.fetch.total_timeout
                        * (crate::jwks::fetch::MAX_REDIRECTS as u32 + 1)
                        + std::time::Duration::from_secs(1);
                    let deadline = std::time::Instant::now() + limit;
                    while attempts.running == Some(pid) {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        attempts = self
                            .finished
                            .wait_timeout(attempts, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
                drop(attempts);
                return self.fallback(options);
            }
            if clock.ticks() < attempts.next_attempt {
                drop(attempts);
                return self.fallback(options);
            }
            attempts.running = Some(pid);
        }
        if options.non_blocking {
            let (me, thread_clock, thread_options) = (self.clone(), clock.clone(), options.clone());
            let spawned = std::thread::Builder::new()
                .name("jwtguard-discovery".into())
                .spawn(move || {
                    let _running = Running(&me);
                    // Already in the background: fetch the keys right after discovery too.
                    if let Ok(source) = me.run(&thread_clock, &thread_options) {
                        let _ = source.refresh_now(&thread_clock, &thread_options);
                    }
                });
            if spawned.is_err() {
                drop(Running(self));
            }
            return self.fallback(options);
        }
        let running = Running(self);
        let result = self.run(clock, options);
        drop(running);
        match result {
            Ok(source) => Ok(source),
            Err(_) => self.fallback(options),
        }
    }

    /// Discover now.
    fn run(&self, clock: &Clock, options: &CacheOptions) -> Result<&Arc<JwksSource>> {
        match discover(&self.issuer, options) {
            Ok(url) => {
                let mut attempts = self.attempts();
                attempts.failures_in_a_row = 0;
                attempts.last_error = None;
                drop(attempts);
                Ok(self.settle(url, options))
            }
            Err(e) => {
                log::emit(Level::Error, || format!("jwtguard: discovery failed: {e}"));
                let mut attempts = self.attempts();
                attempts.failures_in_a_row = attempts.failures_in_a_row.saturating_add(1);
                // Without a snapshot's stand-in, requests wait for this discovery: retry
                // about once a second rather than on the long backoff.
                let mut wait = cache::backoff(options, attempts.failures_in_a_row);
                if self.from_snapshot.get().is_none_or(|s| s.is_none()) {
                    wait = wait.min(cache::COLD_RETRY_SECS);
                }
                attempts.next_attempt = clock.ticks() + wait;
                attempts.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Until discovery succeeds: the source a snapshot entry binds to this very issuer (read
    /// once), else why there is none.
    fn fallback(&self, options: &CacheOptions) -> Result<&Arc<JwksSource>> {
        if let Some(s) = self.resolved.get() {
            return Ok(s);
        }
        let from_snapshot = self.from_snapshot.get_or_init(|| {
            let path = options.snapshot.as_ref()?;
            let url = cache::snapshot_url_for_issuer(path, &self.issuer)?;
            crate::jwks::fetch::check_url(&url, options.fetch.allow_insecure_http).ok()?;
            let source = cache::source(&url, &options.fetch);
            source.add_snapshot(path.clone());
            log::emit(Level::Info, || {
                format!(
                    "jwtguard: issuer {} not discovered yet; using its keys at {url} from snapshot {}",
                    self.issuer,
                    path.display()
                )
            });
            Some(source)
        });
        if let Some(s) = from_snapshot {
            return Ok(s);
        }
        Err(self.attempts().last_error.clone().unwrap_or_else(|| {
            Error::with_detail(Status::KeysUnavailable, "discovery has not finished yet")
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_urls() {
        assert_eq!(
            configuration_url("https://tenant.example/"),
            "https://tenant.example/.well-known/openid-configuration"
        );
        assert_eq!(
            configuration_url("https://login.example/realms/x"),
            "https://login.example/realms/x/.well-known/openid-configuration"
        );
    }
}
