//! `jwt_verifier` and `jwt_verify`: tokens in, claims out.

use super::claims::jwt_claims;
use super::config::{ConfigBuilder, jwt_config};
use super::{
    bytes_arg, copy_out, ffi_panic_boundary, free_handle, into_handle, ref_arg, str_arg, to_status,
    write_out,
};
use crate::answer;
use crate::claims::Claims;
use crate::clock::Clock;
use crate::error::Status;
use crate::verify::{Config, Request, Verifier};
use std::os::raw::c_char;

/// A configured verifier. Thread-safe: one handle may be used by many threads at once.
/// Made by `jwt_verifier_new`, released by `jwt_verifier_free`.
pub struct jwt_verifier {
    _private: [u8; 0],
}

/// Build a verifier from `config` (which stays owned by the caller and may be freed right
/// after). On success `*verifier_out` receives a handle to free with `jwt_verifier_free`; on
/// error it receives NULL. Without a JWKS URL, text or file, the JWKS URL is discovered from
/// the first issuer (`{issuer}/.well-known/openid-configuration`). Building never touches the
/// network: keys are fetched on first use (or by `jwt_verifier_refresh` /
/// `jwt_verifier_prefetch`). Errors: `JWT_STATUS_CONFIG_INVALID` (no issuer or audience, bad
/// URL), `JWT_STATUS_JWKS_INVALID` (the JWKS text has no usable key).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verifier_new(
    config: *const jwt_config,
    verifier_out: *mut *mut jwt_verifier,
) -> Status {
    ffi_panic_boundary! {
        if verifier_out.is_null() {
            return Status::NullArgument;
        }
        let _ = write_out(verifier_out, std::ptr::null_mut());
        to_status(ref_arg(config.cast::<ConfigBuilder>()).and_then(|c| {
            let first = c.issuer();
            let verifier = Verifier::new(Config {
                policy: first.policy,
                keys: first.keys,
                cache: first.cache,
                clock: Clock::System,
                token_cache: c.token_cache,
                more_issuers: c.more_issuers.clone(),
                dpop: c.dpop.clone(),
            })
            .map_err(|e| e.status())?;
            write_out(verifier_out, into_handle::<_, jwt_verifier>(verifier))
        }))
    }
}

/// Release a verifier. NULL is fine. Must not be called twice, nor while another thread uses it.
/// Claims handles it produced stay valid.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verifier_free(verifier: *mut jwt_verifier) {
    ffi_panic_boundary! { free_handle::<Verifier, _>(verifier) }
}

/// Clear `*claims_out`, run `verify` with the verifier, and hand its claims to C.
fn verify_into(
    verifier: *const jwt_verifier,
    claims_out: *mut *mut jwt_claims,
    verify: impl FnOnce(&Verifier) -> Result<Claims, Status>,
) -> Status {
    if write_out(claims_out, std::ptr::null_mut()).is_err() {
        return Status::NullArgument;
    }
    to_status(
        ref_arg(verifier.cast::<Verifier>())
            .and_then(verify)
            .and_then(|claims| write_out(claims_out, into_handle::<_, jwt_claims>(claims))),
    )
}

/// Verify a compact JWT of `token_len` bytes at `token` (no NUL terminator needed). On success
/// returns `JWT_STATUS_OK` and `*claims_out` receives a claims handle to free with
/// `jwt_claims_free`; otherwise returns why the token was refused and `*claims_out` is NULL.
/// `claims_out` must not be NULL. A length over the size cap is refused before the bytes are
/// read.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verify(
    verifier: *const jwt_verifier,
    token: *const c_char,
    token_len: usize,
    claims_out: *mut *mut jwt_claims,
) -> Status {
    ffi_panic_boundary! {
        verify_into(verifier, claims_out, |v| verify_token(v, token, token_len))
    }
}

fn verify_token(v: &Verifier, token: *const c_char, token_len: usize) -> Result<Claims, Status> {
    if token_len > v.max_token_bytes() {
        return Err(Status::TokenTooLarge);
    }
    v.verify_bytes(bytes_arg(token, token_len)?)
        .map_err(|e| e.status())
}

fn verify_header(v: &Verifier, header: *const c_char, header_len: usize) -> Result<Claims, Status> {
    let value = if header.is_null() && header_len == 0 {
        None
    } else {
        Some(str_arg(header, header_len).map_err(|s| match s {
            Status::NullArgument => s,
            _ => Status::AuthorizationHeaderMalformed,
        })?)
    };
    v.verify_authorization(value).map_err(|e| e.status())
}

/// The verdict alone: `jwt_verify` without the claims, for hosts that only allow or refuse
/// (and for bindings that keep claims they parsed once: a token's claims are its payload, so
/// a token that verifies now has the claims it had before). Counted like `jwt_verify`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verify_status(
    verifier: *const jwt_verifier,
    token: *const c_char,
    token_len: usize,
) -> Status {
    ffi_panic_boundary! {
        to_status(
            ref_arg(verifier.cast::<Verifier>())
                .and_then(|v| verify_token(v, token, token_len))
                .map(drop),
        )
    }
}

/// Verify the token in an `Authorization` header value (`"Bearer <token>"`, scheme in any
/// case, exactly one token). Pass `header = NULL, header_len = 0` when the request had no
/// such header: that returns `JWT_STATUS_TOKEN_MISSING`; NULL with a non-zero length returns
/// `JWT_STATUS_NULL_ARGUMENT`. A value holding anything but visible ASCII, spaces and tabs
/// (CR, LF, NUL, bytes above 0x7E) returns `JWT_STATUS_AUTHORIZATION_HEADER_MALFORMED`. A
/// request with several `Authorization` lines: pass them joined with `", "` (as HTTP combines
/// repeated fields), which is refused the same way, as every host refuses it. Otherwise as
/// `jwt_verify`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verify_authorization(
    verifier: *const jwt_verifier,
    header: *const c_char,
    header_len: usize,
    claims_out: *mut *mut jwt_claims,
) -> Status {
    ffi_panic_boundary! {
        verify_into(verifier, claims_out, |v| verify_header(v, header, header_len))
    }
}

/// The verdict alone: `jwt_verify_authorization` without the claims (see
/// `jwt_verify_status`).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verify_authorization_status(
    verifier: *const jwt_verifier,
    header: *const c_char,
    header_len: usize,
) -> Status {
    ffi_panic_boundary! {
        to_status(
            ref_arg(verifier.cast::<Verifier>())
                .and_then(|v| verify_header(v, header, header_len))
                .map(drop),
        )
    }
}

/// An optional text argument: `(NULL, 0)` is absent.
fn optional_str<'a>(ptr: *const c_char, len: usize) -> Result<Option<&'a str>, Status> {
    if ptr.is_null() && len == 0 {
        Ok(None)
    } else {
        str_arg(ptr, len).map(Some)
    }
}

#[allow(clippy::too_many_arguments)]
fn verify_request(
    v: &Verifier,
    authorization: *const c_char,
    authorization_len: usize,
    dpop: *const c_char,
    dpop_len: usize,
    method: *const c_char,
    method_len: usize,
    url: *const c_char,
    url_len: usize,
    again: bool,
) -> Result<Claims, Status> {
    let header = |ptr, len, malformed| {
        optional_str(ptr, len).map_err(|s| match s {
            Status::NullArgument => s,
            _ => malformed,
        })
    };
    let request = Request {
        authorization: header(
            authorization,
            authorization_len,
            Status::AuthorizationHeaderMalformed,
        )?,
        dpop: header(dpop, dpop_len, Status::DpopProofMalformed)?,
        method: optional_str(method, method_len)?,
        url: optional_str(url, url_len)?,
    };
    if again {
        v.verify_request_again(&request)
    } else {
        v.verify_request(&request)
    }
    .map_err(|e| e.status())
}

/// Verify a request's credentials, DPoP (RFC 9449) included: `authorization` is the
/// `Authorization` header's value (`Bearer <token>` or `DPoP <token>`), `dpop` the `DPoP`
/// header's value, `method` the request method as sent (`GET`), `url` the URL the client
/// addressed (`https://api.example/api/private`; a query is ignored). Each is a (pointer,
/// length) pair; `(NULL, 0)` means absent (a request without that header; method and URL
/// are only needed when a proof is checked, else `JWT_STATUS_INVALID_ARGUMENT`). Several
/// `DPoP` lines: pass them joined with `", "`, which is refused
/// (`JWT_STATUS_DPOP_PROOF_MULTIPLE`). Under the verifier's DPoP policy
/// (`jwt_config_set_dpop`): a token bound to a key (`cnf`) is accepted only with the `DPoP`
/// scheme and a valid proof by that key, over this method and URL and this token (`ath`),
/// inside the proof window, seen for the first time (`jti`); each failed check returns its
/// own `JWT_STATUS_DPOP_*` status. A bearer token as `jwt_verify_authorization`. On success
/// `*claims_out` receives the token's claims (free with `jwt_claims_free`).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verify_request(
    verifier: *const jwt_verifier,
    authorization: *const c_char,
    authorization_len: usize,
    dpop: *const c_char,
    dpop_len: usize,
    method: *const c_char,
    method_len: usize,
    url: *const c_char,
    url_len: usize,
    claims_out: *mut *mut jwt_claims,
) -> Status {
    ffi_panic_boundary! {
        verify_into(verifier, claims_out, |v| {
            verify_request(
                v, authorization, authorization_len, dpop, dpop_len, method, method_len, url,
                url_len, false,
            )
        })
    }
}

/// `jwt_verify_request` for a request whose DPoP proof this verifier already accepted once (a
/// host checking one client request again: nginx after an internal redirect to a location
/// with other scopes, or in a subrequest): the same checks, except that the proof's `jti` is
/// neither looked up nor recorded, so the request's own first check does not read as a replay;
/// `JWT_STATUS_OK` allows. Only for the very headers of a request that passed
/// `jwt_verify_request` with its proof on this verifier; never for a new request, nor for one
/// another verifier accepted (its replay cache never saw the proof). Not counted.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verify_request_again(
    verifier: *const jwt_verifier,
    authorization: *const c_char,
    authorization_len: usize,
    dpop: *const c_char,
    dpop_len: usize,
    method: *const c_char,
    method_len: usize,
    url: *const c_char,
    url_len: usize,
    claims_out: *mut *mut jwt_claims,
) -> Status {
    ffi_panic_boundary! {
        verify_into(verifier, claims_out, |v| {
            verify_request(
                v, authorization, authorization_len, dpop, dpop_len, method, method_len, url,
                url_len, true,
            )
        })
    }
}

/// The verdict alone: `jwt_verify_request` without the claims.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verify_request_status(
    verifier: *const jwt_verifier,
    authorization: *const c_char,
    authorization_len: usize,
    dpop: *const c_char,
    dpop_len: usize,
    method: *const c_char,
    method_len: usize,
    url: *const c_char,
    url_len: usize,
) -> Status {
    ffi_panic_boundary! {
        to_status(ref_arg(verifier.cast::<Verifier>()).and_then(|v| {
            verify_request(
                v, authorization, authorization_len, dpop, dpop_len, method, method_len, url,
                url_len, false,
            )
            .map(drop)
        }))
    }
}

/// The `WWW-Authenticate` value for a refusal with `status` by this verifier, as every
/// jwtguard host sends it: RFC 6750's Bearer challenge and, unless DPoP is off, RFC 9449's
/// DPoP challenge with the allowed `algs` (DPoP required: that one alone); the error goes on
/// the challenge of the scheme the refusal is about. `authorization` is the request's
/// `Authorization` value (`(NULL, 0)` when absent), `realm` the realm, `scope` the route's
/// required scopes, space-separated (named in an `insufficient_scope` challenge; `(NULL, 0)`
/// for none). A status that carries no challenge (503, 500, success) gives the empty text.
/// The text is copied NUL-terminated into `buffer`; `*needed_out` receives its length
/// without the NUL (0 when the call fails for another reason). A buffer too small returns
/// `JWT_STATUS_INVALID_ARGUMENT` with nothing copied: call again with `*needed_out + 1`
/// bytes (a first call with a `NULL` buffer and a length of 0 asks for the size).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn jwt_verifier_challenge(
    verifier: *const jwt_verifier,
    status: u32,
    authorization: *const c_char,
    authorization_len: usize,
    realm: *const c_char,
    realm_len: usize,
    scope: *const c_char,
    scope_len: usize,
    buffer: *mut c_char,
    buffer_len: usize,
    needed_out: *mut usize,
) -> Status {
    ffi_panic_boundary! {
        to_status((|| {
            write_out(needed_out, 0)?;
            let v = ref_arg(verifier.cast::<Verifier>())?;
            let status = Status::from_u32(status).ok_or(Status::InvalidArgument)?;
            let authorization = bytes_or_none(authorization, authorization_len)?;
            let realm = str_arg(realm, realm_len)?;
            let scopes: Vec<String> = optional_str(scope, scope_len)?
                .unwrap_or("")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let text = answer::challenge_for(
                realm,
                &scopes,
                status,
                v.dpop(),
                answer::scheme_of(authorization),
            )
            .unwrap_or_default();
            write_out(needed_out, text.len())?;
            copy_out(text.as_bytes(), buffer, buffer_len)
        })())
    }
}

/// An `Authorization` value read only for its scheme: bytes that are not UTF-8 name none.
fn bytes_or_none<'a>(ptr: *const c_char, len: usize) -> Result<Option<&'a str>, Status> {
    if ptr.is_null() && len == 0 {
        return Ok(None);
    }
    Ok(std::str::from_utf8(bytes_arg(ptr, len)?).ok())
}

/// Fetch the verifier's keys now and wait (discovering the JWKS URL first if needed): for
/// hosts that load keys at start, in each worker process. Returns `JWT_STATUS_OK`,
/// `JWT_STATUS_KEYS_UNAVAILABLE` when the fetch failed (cached keys, if any, stay), or
/// `JWT_STATUS_NULL_ARGUMENT`. A fixed JWKS needs nothing and returns `JWT_STATUS_OK`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verifier_refresh(verifier: *const jwt_verifier) -> Status {
    ffi_panic_boundary! {
        to_status(ref_arg(verifier.cast::<Verifier>()).and_then(|v| v.refresh_keys().map_err(|e| e.status())))
    }
}

/// Start fetching the verifier's keys on a background thread if they are missing or due, and
/// return at once. For event-loop hosts at worker start.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verifier_prefetch(verifier: *const jwt_verifier) -> Status {
    ffi_panic_boundary! {
        to_status(ref_arg(verifier.cast::<Verifier>()).map(|v| v.prefetch_keys()))
    }
}

/// Whether the verifier's keys are being fetched (or its JWKS URL discovered) right now. A
/// host in non-blocking mode that got `JWT_STATUS_KEY_NOT_FOUND` or
/// `JWT_STATUS_KEYS_UNAVAILABLE` can retry the request on a timer while this is true, instead
/// of refusing it (a rotated key, a cold start); and also when `jwt_verifier_fetch_epoch`
/// moved since before the verification (a fetch ended meanwhile: its keys came after the
/// verification looked). False for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verifier_fetching(verifier: *const jwt_verifier) -> bool {
    ffi_panic_boundary! {
        ref_arg(verifier.cast::<Verifier>()).is_ok_and(|v| v.fetch_in_progress())
    }
}

/// How many key fetches (and JWKS URL discoveries) of this verifier's issuers have ended in
/// this process, successful or not. Read it before a verification; if that verification
/// returns `JWT_STATUS_KEY_NOT_FOUND` or `JWT_STATUS_KEYS_UNAVAILABLE` and the number has
/// moved (or `jwt_verifier_fetching` is true), keys may have arrived: retry shortly rather
/// than refuse. 0 for NULL or fixed keys.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verifier_fetch_epoch(verifier: *const jwt_verifier) -> u64 {
    ffi_panic_boundary! {
        ref_arg(verifier.cast::<Verifier>()).map_or(0, |v| v.fetch_epoch())
    }
}

/// What `jwt_verifier_count` counts.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum jwt_counter {
    /// Verifications that succeeded (this verifier).
    VerifyOk = 0,
    /// Verifications that failed, for any reason (this verifier).
    VerifyFailed = 1,
    /// JWKS fetches that produced keys (the verifier's JWKS URL, whole process).
    FetchOk = 2,
    /// JWKS fetches that failed.
    FetchFailed = 3,
    /// JWKS revalidations answered 304 Not Modified.
    FetchNotModified = 4,
    /// Refetches caused by unknown `kid`s.
    UnknownKidRefetch = 5,
    /// Key lookups answered from fresh cached keys (a token-cache hit counts here only when
    /// it had to look at the keys in full: a refresh due; stale keys count as stale hits).
    CacheHit = 6,
    /// Key lookups answered from keys past their expiry while refreshes fail.
    StaleHit = 7,
    /// Verifications answered from the token cache (this verifier).
    TokenCacheHit = 8,
    /// Token-cache lookups that found nothing usable.
    TokenCacheMiss = 9,
    /// Tokens dropped from a full token cache.
    TokenCacheEviction = 10,
}

/// Read a counter (see `jwt_counter`). 0 for NULL, an unknown counter, or a JWKS counter of a
/// verifier whose keys are fixed or not yet discovered.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verifier_count(verifier: *const jwt_verifier, counter: u32) -> u64 {
    ffi_panic_boundary! {
        let Ok(v) = ref_arg(verifier.cast::<Verifier>()) else {
            return 0;
        };
        let stats = v.jwks_stats();
        match counter {
            0 => v.count(Status::Ok),
            1 => Status::ALL.iter().filter(|s| !s.is_ok()).map(|s| v.count(*s)).sum(),
            2 => stats.fetches_ok,
            3 => stats.fetches_failed,
            4 => stats.fetches_not_modified,
            5 => stats.unknown_kid_refetches,
            6 => stats.cache_hits,
            7 => stats.stale_hits,
            8 => v.token_cache_stats().hits,
            9 => v.token_cache_stats().misses,
            10 => v.token_cache_stats().evictions,
            _ => 0,
        }
    }
}

/// How many verifications by this verifier ended with `status` (`JWT_STATUS_OK` for
/// successes). 0 for NULL or a number that is not a status.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_verifier_count_status(verifier: *const jwt_verifier, status: u32) -> u64 {
    ffi_panic_boundary! {
        match (ref_arg(verifier.cast::<Verifier>()), Status::from_u32(status)) {
            (Ok(v), Some(s)) => v.count(s),
            _ => 0,
        }
    }
}
