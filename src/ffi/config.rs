//! `jwt_config`: what a verifier is built from.

use super::{ffi_panic_boundary, free_handle, into_handle, mut_arg, ref_arg, str_arg, to_status};
use crate::dpop::{DpopMode, DpopPolicy, MAX_DPOP_REPLAY_CACHE, MAX_DPOP_WINDOW_SECS};
use crate::error::Status;
use crate::jwks::CacheOptions;
use crate::jwks::cache::{
    MAX_BACKOFF_MS, MAX_CACHE_SECS, MAX_JWKS_BYTES_LIMIT, MAX_STALE_SECS, MAX_TIMEOUT_MS,
};
use crate::policy::{Algorithm, MAX_LEEWAY_SECS, MAX_TOKEN_BYTES_LIMIT, Policy};
use crate::verify::{IssuerConfig, Keys};
use std::os::raw::c_char;
use std::time::Duration;

/// A verifier configuration under construction. Made by `jwt_config_new`, filled by the
/// `jwt_config_*` setters, read (not consumed) by `jwt_verifier_new`, released by
/// `jwt_config_free`. Not for use from several threads at once.
pub struct jwt_config {
    _private: [u8; 0],
}

/// The Rust value behind a `jwt_config` handle.
pub(crate) struct ConfigBuilder {
    pub(crate) policy: Policy,
    pub(crate) algorithms_chosen: bool,
    pub(crate) keys: Option<Keys>,
    pub(crate) cache: CacheOptions,
    pub(crate) token_cache: usize,
    /// Issuers added with `jwt_config_add_issuer_config`.
    pub(crate) more_issuers: Vec<IssuerConfig>,
    pub(crate) dpop: DpopPolicy,
    pub(crate) dpop_algorithms_chosen: bool,
}

impl ConfigBuilder {
    /// This configuration's own issuer (keys by discovery unless set).
    pub(crate) fn issuer(&self) -> IssuerConfig {
        IssuerConfig {
            policy: self.policy.clone(),
            keys: self.keys.clone().unwrap_or(Keys::Discover),
            cache: self.cache.clone(),
        }
    }
}

fn with_config(
    config: *mut jwt_config,
    f: impl FnOnce(&mut ConfigBuilder) -> Result<(), Status>,
) -> Status {
    to_status(mut_arg(config.cast::<ConfigBuilder>()).and_then(f))
}

/// `value` if it is at most `max`, else `JWT_STATUS_INVALID_ARGUMENT` (a negative number
/// converted to `uint64_t` arrives here as a huge one).
fn bounded(value: u64, max: u64) -> Result<u64, Status> {
    if value > max {
        Err(Status::InvalidArgument)
    } else {
        Ok(value)
    }
}

fn text_setter(
    config: *mut jwt_config,
    value: *const c_char,
    len: usize,
    f: impl FnOnce(&mut ConfigBuilder, &str) -> Result<(), Status>,
) -> Status {
    with_config(config, |c| {
        let text = str_arg(value, len)?;
        if text.is_empty() {
            return Err(Status::InvalidArgument);
        }
        f(c, text)
    })
}

/// Make an empty configuration: no issuer, no audience, no keys; algorithms `RS256`, leeway
/// 60 s, default cache policy, a token cache of 10000 entries. Free it with `jwt_config_free`. Returns NULL only on a panic.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_new() -> *mut jwt_config {
    ffi_panic_boundary! {
        into_handle::<_, jwt_config>(ConfigBuilder {
            policy: Policy::empty(),
            algorithms_chosen: false,
            keys: None,
            cache: CacheOptions::default(),
            token_cache: crate::verify::DEFAULT_TOKEN_CACHE,
            more_issuers: Vec::new(),
            dpop: DpopPolicy::default(),
            dpop_algorithms_chosen: false,
        })
    }
}

/// Release a configuration. NULL is fine. Must not be called twice.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_free(config: *mut jwt_config) {
    ffi_panic_boundary! { free_handle::<ConfigBuilder, _>(config) }
}

/// Accept tokens whose `iss` equals `issuer` exactly (e.g. `"https://TENANT/"`). Repeatable.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_add_issuer(
    config: *mut jwt_config,
    issuer: *const c_char,
    issuer_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, issuer, issuer_len, |c, s| {
            c.policy.issuers.push(s.to_owned());
            Ok(())
        })
    }
}

/// Add another issuer, with its own keys and policy, described by a whole configuration
/// (`issuer`: its issuers, audiences, algorithms, leeway, claims, keys and cache policy; it
/// is copied, so free it as usual; issuers added to it come along). A verifier built from
/// `config` then holds `config`'s own issuer first and each added one after it: a token's
/// unverified `iss` selects the issuer that lists it (exact match) and the token is verified
/// against that issuer's keys and policy only. A token whose `iss` no issuer lists is
/// `JWT_STATUS_ISSUER_INVALID` without any key fetch. `jwt_verifier_new` fails with
/// `JWT_STATUS_CONFIG_INVALID` when two issuers list the same `iss` or one is incomplete.
/// The token cache size and clock are `config`'s (one cache for all issuers). Not to be
/// confused with `jwt_config_add_issuer`, which adds another accepted `iss` value to one
/// issuer (same keys). `JWT_STATUS_INVALID_ARGUMENT` when `issuer` is `config` itself.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_add_issuer_config(
    config: *mut jwt_config,
    issuer: *const jwt_config,
) -> Status {
    ffi_panic_boundary! {
        if !config.is_null() && std::ptr::eq(config.cast_const(), issuer) {
            return Status::InvalidArgument;
        }
        let added = match ref_arg(issuer.cast::<ConfigBuilder>()) {
            Ok(other) => {
                let mut added = vec![other.issuer()];
                added.extend(other.more_issuers.iter().cloned());
                added
            }
            Err(status) => return status,
        };
        with_config(config, |c| {
            c.more_issuers.extend(added);
            Ok(())
        })
    }
}

/// Accept tokens whose `aud` is or contains `audience`. Repeatable.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_add_audience(
    config: *mut jwt_config,
    audience: *const c_char,
    audience_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, audience, audience_len, |c, s| {
            c.policy.audiences.push(s.to_owned());
            Ok(())
        })
    }
}

/// Allow a signature algorithm by its JOSE name (`RS256` `RS384` `RS512` `PS256` `PS384`
/// `PS512` `ES256` `ES384` `EdDSA` `Ed25519`). The first call replaces the default list (`RS256`);
/// later calls add. Unknown names, `none` and `HS*` return `JWT_STATUS_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_add_algorithm(
    config: *mut jwt_config,
    name: *const c_char,
    name_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, name, name_len, |c, s| {
            let alg: Algorithm = s.parse().map_err(|_| Status::InvalidArgument)?;
            if !c.algorithms_chosen {
                c.policy.algorithms.clear();
                c.algorithms_chosen = true;
            }
            if !c.policy.algorithms.contains(&alg) {
                c.policy.algorithms.push(alg);
            }
            Ok(())
        })
    }
}

/// Seconds of clock skew allowed for `exp`, `nbf` and `iat` (default 60, at most 3600; more
/// returns `JWT_STATUS_INVALID_ARGUMENT`).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_leeway(config: *mut jwt_config, seconds: u64) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.policy.leeway_secs = bounded(seconds, MAX_LEEWAY_SECS)?;
            Ok(())
        })
    }
}

/// Require a claim to be present (`sub`, `client_id`, `jti`, `scope` must be non-empty
/// strings). Repeatable.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_add_required_claim(
    config: *mut jwt_config,
    name: *const c_char,
    name_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, name, name_len, |c, s| {
            c.policy.required_claims.push(s.to_owned());
            Ok(())
        })
    }
}

/// Strict RFC 9068 mode: `typ` must be `at+jwt` and `iss`, `exp`, `aud`, `sub`, `client_id`,
/// `iat`, `jti` are required. Off by default.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_strict(config: *mut jwt_config, strict: bool) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.policy.strict = strict;
            Ok(())
        })
    }
}

/// Largest token accepted, in bytes, checked before any decoding (default 16384; 1 to
/// 1048576).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_max_token_size(config: *mut jwt_config, bytes: usize) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            if bytes == 0 || bytes > MAX_TOKEN_BYTES_LIMIT {
                return Err(Status::InvalidArgument);
            }
            c.policy.max_token_bytes = bytes;
            Ok(())
        })
    }
}

/// Take keys from a JWKS URL through the process-global cache. `https` is required except for
/// loopback hosts (see `jwt_config_set_allow_insecure_http`). Replaces any earlier key source.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_jwks_uri(
    config: *mut jwt_config,
    uri: *const c_char,
    uri_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, uri, uri_len, |c, s| {
            c.keys = Some(Keys::Url(s.to_owned()));
            Ok(())
        })
    }
}

/// Take keys from a JWKS document given as JSON text (copied). Replaces any earlier key source.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_jwks_json(
    config: *mut jwt_config,
    json: *const c_char,
    json_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, json, json_len, |c, s| {
            c.keys = Some(Keys::Json(s.to_owned()));
            Ok(())
        })
    }
}

/// Take keys from a JWKS file, read now. Replaces any earlier key source. An unreadable file
/// returns `JWT_STATUS_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_jwks_file(
    config: *mut jwt_config,
    path: *const c_char,
    path_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, path, path_len, |c, s| {
            let text = std::fs::read_to_string(s).map_err(|_| Status::InvalidArgument)?;
            c.keys = Some(Keys::Json(text));
            Ok(())
        })
    }
}

/// Allow plain `http` JWKS URLs to hosts other than loopback (off by default; for networks
/// where TLS ends before the issuer).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_allow_insecure_http(
    config: *mut jwt_config,
    allow: bool,
) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.cache.fetch.allow_insecure_http = allow;
            Ok(())
        })
    }
}

/// Lifetime of a fetched JWKS when the issuer sends no `Cache-Control: max-age` (default 600 s,
/// at most 604800).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_cache_ttl(config: *mut jwt_config, seconds: u64) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.cache.ttl = Duration::from_secs(bounded(seconds, MAX_CACHE_SECS)?);
            Ok(())
        })
    }
}

/// How long a `kid` that a refetch looked for and did not find is answered at once without
/// another refetch, per URL (default 30 s, at most 604800). New unknown `kid`s refetch at most
/// once a second per URL (or once per cooldown, if it is shorter).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_refetch_cooldown(config: *mut jwt_config, seconds: u64) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.cache.refetch_cooldown = Duration::from_secs(bounded(seconds, MAX_CACHE_SECS)?);
            Ok(())
        })
    }
}

/// How long before expiry a background refresh starts, in seconds (default 60; at most half
/// the keys' lifetime is used; at most 604800).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_refresh_ahead(config: *mut jwt_config, seconds: u64) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.cache.refresh_ahead = Duration::from_secs(bounded(seconds, MAX_CACHE_SECS)?);
            Ok(())
        })
    }
}

/// How many verified tokens the verifier remembers (default 10000; 0 turns the cache off; at
/// most 10000000). A token seen again is answered from the cache while the keys that verified
/// it are still the current ones; `exp`, `nbf` and `iat` are checked again on every hit, and
/// failures are never cached. Counted by `JWT_COUNTER_TOKEN_CACHE_HIT`, `_MISS` and
/// `_EVICTION`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_token_cache(config: *mut jwt_config, max_entries: u64) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.token_cache = bounded(max_entries, crate::verify::MAX_TOKEN_CACHE as u64)? as usize;
            Ok(())
        })
    }
}

/// How long the last good keys keep serving while refreshes fail, in seconds (default 86400,
/// at most 2592000).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_max_stale(config: *mut jwt_config, seconds: u64) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.cache.max_stale = Duration::from_secs(bounded(seconds, MAX_STALE_SECS)?);
            Ok(())
        })
    }
}

/// Backoff after failed fetches: the first wait and the longest, in milliseconds (defaults
/// 2000 and 300000; at most 86400000); each failure in a row doubles the wait, with ±20%
/// jitter.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_backoff(
    config: *mut jwt_config,
    initial_ms: u64,
    max_ms: u64,
) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            if initial_ms == 0 || max_ms < initial_ms || max_ms > MAX_BACKOFF_MS {
                return Err(Status::InvalidArgument);
            }
            c.cache.backoff_initial = Duration::from_millis(initial_ms);
            c.cache.backoff_max = Duration::from_millis(max_ms);
            Ok(())
        })
    }
}

/// Network timeouts of each fetch, in milliseconds: connect and total (defaults 2000, 5000;
/// 1 to 600000).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_fetch_timeouts(
    config: *mut jwt_config,
    connect_ms: u64,
    total_ms: u64,
) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            if connect_ms == 0
                || total_ms == 0
                || connect_ms > MAX_TIMEOUT_MS
                || total_ms > MAX_TIMEOUT_MS
            {
                return Err(Status::InvalidArgument);
            }
            c.cache.fetch.connect_timeout = Duration::from_millis(connect_ms);
            c.cache.fetch.total_timeout = Duration::from_millis(total_ms);
            Ok(())
        })
    }
}

/// Largest JWKS (and discovery document) body accepted, in bytes (default 1 MiB, at most
/// 64 MiB).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_max_jwks_size(config: *mut jwt_config, bytes: usize) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            if bytes == 0 || bytes as u64 > MAX_JWKS_BYTES_LIMIT {
                return Err(Status::InvalidArgument);
            }
            c.cache.fetch.max_body_bytes = bytes as u64;
            Ok(())
        })
    }
}

/// Non-blocking mode for event-loop hosts (nginx): verification never waits on the network.
/// A cold cache answers `JWT_STATUS_KEYS_UNAVAILABLE` and an unknown `kid`
/// `JWT_STATUS_KEY_NOT_FOUND` at once while the fetch runs on a background thread. Off by
/// default.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_non_blocking(
    config: *mut jwt_config,
    non_blocking: bool,
) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.cache.non_blocking = non_blocking;
            Ok(())
        })
    }
}

/// Keep the last good JWKS in this file (written atomically after each fetch) and use it on a
/// cold start while the issuer cannot be reached.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_snapshot(
    config: *mut jwt_config,
    path: *const c_char,
    path_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, path, path_len, |c, s| {
            c.cache.snapshot = Some(s.into());
            Ok(())
        })
    }
}

/// Trust the CA certificates in this PEM file for https JWKS and discovery URLs, in addition to
/// the system's store. `jwt_verifier_new` fails with `JWT_STATUS_CONFIG_INVALID` when the file
/// cannot be read or holds no certificate.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_ca_file(
    config: *mut jwt_config,
    path: *const c_char,
    path_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, path, path_len, |c, s| {
            c.cache.fetch.ca_file = Some(s.into());
            Ok(())
        })
    }
}

/// Bounds applied to the issuer's `Cache-Control: max-age` (and to the TTL), in seconds
/// (defaults 60 and 86400; the minimum at most 604800, the maximum at most 2592000).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_ttl_bounds(
    config: *mut jwt_config,
    min_seconds: u64,
    max_seconds: u64,
) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            if max_seconds < min_seconds
                || min_seconds > MAX_CACHE_SECS
                || max_seconds > MAX_STALE_SECS
            {
                return Err(Status::InvalidArgument);
            }
            c.cache.min_ttl = Duration::from_secs(min_seconds);
            c.cache.max_ttl = Duration::from_secs(max_seconds);
            Ok(())
        })
    }
}

/// What a verifier does with DPoP (RFC 9449), for `jwt_config_set_dpop`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum jwt_dpop_mode {
    /// The `DPoP` scheme is refused (`JWT_STATUS_DPOP_SCHEME_DISABLED`), and so is every
    /// token bound to a key (`cnf`): a binding that cannot be checked is never ignored.
    Off = 0,
    /// The default: bearer tokens without `cnf` work as before; a token bound with `cnf.jkt`
    /// is accepted only as `Authorization: DPoP` with a valid proof.
    Allowed = 1,
    /// Only DPoP-bound tokens with a valid proof are accepted.
    Required = 2,
}

/// DPoP policy: `JWT_DPOP_MODE_OFF`, `JWT_DPOP_MODE_ALLOWED` (default) or
/// `JWT_DPOP_MODE_REQUIRED` (`jwt_dpop_mode`, passed as its number; another number returns
/// `JWT_STATUS_INVALID_ARGUMENT`). One policy serves every issuer of the verifier.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_dpop(config: *mut jwt_config, mode: u32) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            c.dpop.mode = DpopMode::from_u32(mode).ok_or(Status::InvalidArgument)?;
            Ok(())
        })
    }
}

/// Allow a DPoP proof signature algorithm by its JOSE name (as `jwt_config_add_algorithm`).
/// The first call replaces the default list (every asymmetric algorithm jwtguard knows);
/// later calls add. `none` and `HS*` return `JWT_STATUS_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_add_dpop_algorithm(
    config: *mut jwt_config,
    name: *const c_char,
    name_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, name, name_len, |c, s| {
            let alg: Algorithm = s.parse().map_err(|_| Status::InvalidArgument)?;
            if !c.dpop_algorithms_chosen {
                c.dpop.algorithms.clear();
                c.dpop_algorithms_chosen = true;
            }
            if !c.dpop.algorithms.contains(&alg) {
                c.dpop.algorithms.push(alg);
            }
            Ok(())
        })
    }
}

/// Add a public origin this API answers for (`https://api.example`, `http://host:8080`: scheme,
/// host and port, no path). Once any is added, a DPoP proof is accepted only when the request
/// URL the host passes is on one of them, whatever `Host` or forwarded header built it; a proof
/// for another origin is `JWT_STATUS_DPOP_PROOF_URL_MISMATCH`. Not an origin:
/// `JWT_STATUS_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_add_dpop_origin(
    config: *mut jwt_config,
    origin: *const c_char,
    origin_len: usize,
) -> Status {
    ffi_panic_boundary! {
        text_setter(config, origin, origin_len, |c, s| {
            crate::dpop::origin_of(s).ok_or(Status::InvalidArgument)?;
            c.dpop.origins.push(s.to_owned());
            Ok(())
        })
    }
}

/// Seconds a DPoP proof is accepted after its `iat` (default 60, 1 to 3600; the leeway
/// applies on top, and to an `iat` in the future). Outside the range:
/// `JWT_STATUS_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_dpop_window(config: *mut jwt_config, seconds: u64) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            if seconds == 0 {
                return Err(Status::InvalidArgument);
            }
            c.dpop.window_secs = bounded(seconds, MAX_DPOP_WINDOW_SECS)?;
            Ok(())
        })
    }
}

/// How many DPoP proofs the verifier remembers against replay (default 250000, 1 to
/// 10000000). A proof is remembered until its window ends; when the cache is full of proofs
/// still inside their window, new proofs are refused with `JWT_STATUS_DPOP_REPLAY_CACHE_FULL`
/// (HTTP 503) rather than forgetting one that could then be replayed. One client key may hold
/// at most an eighth of it (beyond that, only that key's proofs are refused). Each process
/// keeps its own: worker processes forked from one parent each keep theirs from the fork on.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_config_set_dpop_replay_cache(
    config: *mut jwt_config,
    max_entries: u64,
) -> Status {
    ffi_panic_boundary! {
        with_config(config, |c| {
            if max_entries == 0 {
                return Err(Status::InvalidArgument);
            }
            c.dpop.replay_cache = bounded(max_entries, MAX_DPOP_REPLAY_CACHE as u64)? as usize;
            Ok(())
        })
    }
}
