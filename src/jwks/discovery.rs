//! OpenID Connect discovery: from an issuer alone to its JWKS URL
//! (`{issuer}/.well-known/openid-configuration` → `jwks_uri`), once per verifier, with the
//! same backoff, snapshot and non-blocking rules as the key cache.

use crate::clock::Clock;
use crate::error::{Error, Result, Status};
use crate::jwks::cache::{self, CacheOptions, JwksSource};
use crate::jwks::fetch::{self, Outcome};
use crate::log::{self, Level};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

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
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
    match doc.get("issuer").and_then(|v| v.as_str()) {
        Some(found) if found == issuer => {}
        found => return Err(bad(format!("issuer is {found:?}, expected {issuer:?}"))),
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("no jwks_uri".into()))?;
    fetch::check_url(jwks_uri, options.fetch.allow_insecure_http)
        .map_err(|e| bad(format!("jwks_uri: {e}")))?;
    Ok(jwks_uri.to_string())
}

#[derive(Default)]
struct Attempts {
    running: bool,
    failures_in_a_row: u32,
    next_attempt: f64,
    last_error: Option<Error>,
}

/// A verifier's issuer, resolved to a JWKS source on first use.
pub struct Discovery {
    issuer: String,
    resolved: OnceLock<Arc<JwksSource>>,
    attempts: Mutex<Attempts>,
}

impl Discovery {
    /// Discovery for `issuer`; nothing is fetched yet.
    pub fn new(issuer: &str) -> Discovery {
        Discovery {
            issuer: issuer.to_string(),
            resolved: OnceLock::new(),
            attempts: Mutex::new(Attempts::default()),
        }
    }

    /// Whether discovery, or the first fetch of the discovered keys, is running now.
    pub fn is_running(&self) -> bool {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .running
            || self.resolved.get().is_some_and(|s| s.is_fetching())
    }

    /// The JWKS source, once discovery succeeded.
    pub fn resolved(&self) -> Option<&Arc<JwksSource>> {
        self.resolved.get()
    }

    fn settle(&self, url: String, options: &CacheOptions) -> Arc<JwksSource> {
        self.resolved
            .get_or_init(|| {
                let source = cache::source(&url);
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
            .clone()
    }

    /// The JWKS URL recorded in the snapshot file, for a start while the issuer is down.
    fn snapshot_url(&self, options: &CacheOptions) -> Option<String> {
        let text = std::fs::read(options.snapshot.as_ref()?).ok()?;
        let doc: serde_json::Value = serde_json::from_slice(&text).ok()?;
        Some(doc.get("url")?.as_str()?.to_string())
    }

    /// The JWKS source, discovering it now (blocking mode), or in the background
    /// (non-blocking mode, answering `KeysUnavailable` meanwhile). Falls back to the JWKS URL
    /// of the snapshot file when discovery fails.
    pub fn source(
        self: &Arc<Self>,
        clock: &Clock,
        options: &CacheOptions,
    ) -> Result<Arc<JwksSource>> {
        if let Some(s) = self.resolved.get() {
            return Ok(s.clone());
        }
        {
            let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
            if attempts.running || clock.now() < attempts.next_attempt {
                drop(attempts);
                return self.fallback(options);
            }
            attempts.running = true;
        }
        if options.non_blocking {
            let (me, thread_clock, thread_options) = (self.clone(), clock.clone(), options.clone());
            let spawned = std::thread::Builder::new()
                .name("jwtguard-discovery".into())
                .spawn(move || {
                    // Already in the background: fetch the keys right after discovery too.
                    if let Ok(source) = me.run(&thread_clock, &thread_options, true) {
                        let _ = source.refresh_now(&thread_clock, &thread_options);
                        me.attempts
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .running = false;
                    }
                });
            if spawned.is_err() {
                self.attempts
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .running = false;
            }
            return self.fallback(options);
        }
        match self.run(clock, options, false) {
            Ok(source) => Ok(source),
            Err(_) => self.fallback(options),
        }
    }

    /// Discover now. `then_fetch`: the caller fetches the keys next, so `running` stays set
    /// on success until it has (no gap in which neither seems to be under way).
    fn run(
        &self,
        clock: &Clock,
        options: &CacheOptions,
        then_fetch: bool,
    ) -> Result<Arc<JwksSource>> {
        let result = discover(&self.issuer, options);
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        attempts.running = then_fetch && result.is_ok();
        match result {
            Ok(url) => {
                drop(attempts);
                Ok(self.settle(url, options))
            }
            Err(e) => {
                log::emit(Level::Error, || format!("jwtguard: discovery failed: {e}"));
                attempts.failures_in_a_row = attempts.failures_in_a_row.saturating_add(1);
                attempts.next_attempt =
                    clock.now() + cache::backoff(options, attempts.failures_in_a_row);
                attempts.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn fallback(&self, options: &CacheOptions) -> Result<Arc<JwksSource>> {
        if let Some(s) = self.resolved.get() {
            return Ok(s.clone());
        }
        if let Some(url) = self.snapshot_url(options) {
            return Ok(self.settle(url, options));
        }
        let attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        Err(attempts.last_error.clone().unwrap_or_else(|| {
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
