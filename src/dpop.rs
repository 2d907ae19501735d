//! Sender-constrained tokens: DPoP (RFC 9449).
//!
//! A DPoP-bound access token carries `cnf.jkt`, the RFC 7638 thumbprint of a key the client
//! holds, and every request carries a `DPoP` header: a proof JWT signed by that key over the
//! request's method and URL and the access token's hash. [`check_proof`] runs the checks of RFC
//! 9449 section 4.3, each with its own [`Status`]; [`ReplayCache`] remembers the `jti` of every
//! proof accepted within the proof window. The verifier ([`crate::Verifier::verify_request`])
//! joins the two with the token checks and the policy ([`DpopMode`]).

use crate::error::{Error, Result, Status};
use crate::jwks::keyset;
use crate::policy::Algorithm;
use crate::token;
use aws_lc_rs::digest;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

/// What a verifier does with DPoP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DpopMode {
    /// The `DPoP` scheme is refused, and so is every token bound to a key (a binding that
    /// cannot be checked is never ignored).
    Off,
    /// Bearer tokens without `cnf` work as before; a token bound with `cnf.jkt` is accepted
    /// only as `Authorization: DPoP` with a valid proof.
    #[default]
    Allowed,
    /// Only DPoP-bound tokens with a valid proof are accepted.
    Required,
}

impl DpopMode {
    /// The name used in configuration: `off`, `allowed`, `required`.
    pub fn name(self) -> &'static str {
        match self {
            DpopMode::Off => "off",
            DpopMode::Allowed => "allowed",
            DpopMode::Required => "required",
        }
    }

    /// The mode with this number in the C ABI (0 off, 1 allowed, 2 required).
    pub fn from_u32(n: u32) -> Option<DpopMode> {
        match n {
            0 => Some(DpopMode::Off),
            1 => Some(DpopMode::Allowed),
            2 => Some(DpopMode::Required),
            _ => None,
        }
    }
}

impl FromStr for DpopMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "off" => Ok(DpopMode::Off),
            "allowed" => Ok(DpopMode::Allowed),
            "required" => Ok(DpopMode::Required),
            _ => Err(Error::with_detail(
                Status::ConfigInvalid,
                format!("dpop must be off, allowed or required, not {s:?}"),
            )),
        }
    }
}

impl fmt::Display for DpopMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long a proof is good for after its `iat`, by default (the leeway comes on top).
pub const DEFAULT_DPOP_WINDOW_SECS: u64 = 60;
/// Longest proof window accepted.
pub const MAX_DPOP_WINDOW_SECS: u64 = 3600;
/// Proofs remembered per verifier by default: at the default window and leeway a proof is
/// remembered for two minutes, so this holds about 2,000 DPoP requests a second, in about 12 MB
/// when full.
pub const DEFAULT_DPOP_REPLAY_CACHE: usize = 250_000;
/// Most proofs a verifier may remember.
pub const MAX_DPOP_REPLAY_CACHE: usize = 10_000_000;
/// Largest proof accepted, before any decoding (an RSA-8192 `jwk` fits).
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Longest `jti` accepted.
pub const MAX_JTI_BYTES: usize = 512;

/// What a verifier accepts from DPoP proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopPolicy {
    /// Off, allowed (the default) or required.
    pub mode: DpopMode,
    /// Algorithms a proof may be signed with (every asymmetric one jwtguard knows, by default;
    /// `none` and `HS*` are not algorithms here at all).
    pub algorithms: Vec<Algorithm>,
    /// How long after its `iat` a proof is accepted, in seconds; the verifier's leeway applies
    /// on top (and to an `iat` in the future).
    pub window_secs: u64,
    /// How many proofs are remembered against replay. When it is full of proofs still inside
    /// their window, new proofs are refused (`dpop_replay_cache_full`, 503): forgetting one
    /// would let it be replayed.
    pub replay_cache: usize,
    /// The public origins (`scheme://host[:port]`) this API answers for. When any is given, a
    /// proof is accepted only for a request URL of one of them, whatever `Host` (or
    /// forwarded host and scheme) the client sent; empty: the host's URL is taken as it is.
    pub origins: Vec<String>,
}

impl Default for DpopPolicy {
    fn default() -> Self {
        DpopPolicy {
            mode: DpopMode::Allowed,
            algorithms: Algorithm::ALL.to_vec(),
            window_secs: DEFAULT_DPOP_WINDOW_SECS,
            replay_cache: DEFAULT_DPOP_REPLAY_CACHE,
            origins: Vec::new(),
        }
    }
}

impl DpopPolicy {
    /// Check the policy is usable.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::with_detail(Status::ConfigInvalid, what.to_string()));
        if self.algorithms.is_empty() {
            return bad("the DPoP algorithm allow-list is empty");
        }
        if self.window_secs == 0 || self.window_secs > MAX_DPOP_WINDOW_SECS {
            return bad("the DPoP proof window must be 1 to 3600 seconds");
        }
        if self.replay_cache == 0 || self.replay_cache > MAX_DPOP_REPLAY_CACHE {
            return bad("the DPoP replay cache must hold 1 to 10,000,000 proofs");
        }
        if let Some(bad_origin) = self.origins.iter().find(|o| origin_of(o).is_none()) {
            return bad(&format!(
                "a DPoP origin must be http(s)://host[:port] with no path, got {bad_origin:?}"
            ));
        }
        Ok(())
    }

    /// The `algs` of a DPoP challenge: the allowed algorithms, space-separated.
    pub fn algs(&self) -> String {
        crate::policy::permitted_names(&self.algorithms)
    }
}

/// What a proof is checked against: the request it came with.
#[derive(Clone, Copy, Debug)]
pub struct ProofRequest<'a> {
    /// The request method, exactly as sent (`GET`, `POST`; compared case-sensitively).
    pub method: &'a str,
    /// The request URL as the client addressed it: `scheme://host[:port]/path`, a query and
    /// fragment being ignored.
    pub url: &'a str,
    /// The access token presented with the proof (`ath` is checked against it); `None` at a
    /// token endpoint, where there is none yet.
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check but replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key, base64url: what `cnf.jkt` must equal.
    pub thumbprint: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: f64,
}

fn refuse(status: Status, detail: impl Into<String>) -> Error {
    Error::with_detail(status, detail)
}

/// Members of a JWK that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over its required members in
/// lexicographic order, no whitespace, base64url. `None` for a key type without one here.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let kty = jwk.get("kty")?.as_str()?;
    let members: &[&str] = match kty {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&Value::from(*name).to_string());
        canonical.push(':');
        canonical.push_str(&Value::from(value).to_string());
    }
    canonical.push('}');
    Some(token::b64_encode(
        digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref(),
    ))
}

/// `ath`: base64url of the SHA-256 of the access token's ASCII bytes.
pub fn token_hash(access_token: &str) -> String {
    token::b64_encode(digest::digest(&digest::SHA256, access_token.as_bytes()).as_ref())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters a path keeps as they are: unreserved, sub-delims, `:`, `@` and `/`.
fn is_path_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// RFC 3986 section 5.2.4, for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path[1..].split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// An `http` or `https` URL normalised for comparing `htu` (RFC 9449 section 4.3, RFC 3986
/// sections 6.2.2 and 6.2.3): query and fragment dropped; scheme and host in lower case; the
/// default port (and an empty one) dropped, a port's leading zeros too; percent-encoded
/// unreserved characters decoded, every other percent-encoding in upper case, and a byte a
/// path may not hold as it is percent-encoded (so a host's decoded path and the client's
/// encoded one compare equal); dot segments removed; an empty path is `/`. `None` for what is
/// not such a URL (another scheme, user info, a bad port or percent-encoding).
pub fn normalize_url(url: &str) -> Option<String> {
    let url = url.split(['#', '?']).next().unwrap_or("");
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&authority[..inside.len() + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    // A reg-name or IPv4 address, or an IPv6 literal in brackets: a ':' or a bracket anywhere
    // else would read differently once normalised ("h::1x:" is host "h::1x", port "").
    let host_ok = |b: u8| is_unreserved(b) || b"!$&'()*+,;=".contains(&b);
    let v6_ok = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    let valid = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inside) => !inside.is_empty() && inside.bytes().all(v6_ok),
        None => !host.is_empty() && host.bytes().all(host_ok),
    };
    if !valid {
        return None;
    }
    let mut out = format!("{scheme}://{}", host.to_ascii_lowercase());
    match port {
        None | Some("") => {}
        Some(p) => {
            if p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let number: u32 = p.parse().ok()?;
            if number > 65535 {
                return None;
            }
            if number != default_port {
                out.push_str(&format!(":{number}"));
            }
        }
    }
    let mut normal = String::with_capacity(path.len() + 1);
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            ) else {
                return None;
            };
            let decoded = hi * 16 + lo;
            if is_unreserved(decoded) {
                normal.push(decoded as char);
            } else {
                normal.push_str(&format!("%{decoded:02X}"));
            }
            i += 3;
        } else {
            if is_path_char(b) {
                normal.push(b as char);
            } else {
                normal.push_str(&format!("%{b:02X}"));
            }
            i += 1;
        }
    }
    if normal.is_empty() {
        normal.push('/');
    }
    out.push_str(&remove_dot_segments(&normal));
    Some(out)
}

/// An origin (`scheme://host[:port]`, nothing after but an optional `/`) in the normal form of
/// [`normalize_url`], without the path: `https://API.example:443` is `https://api.example`.
/// `None` for anything else.
pub fn origin_of(origin: &str) -> Option<String> {
    let (_, rest) = origin.split_once("://")?;
    if rest.contains(['/', '?', '#']) && !rest.ends_with('/') || rest.matches('/').count() > 1 {
        return None;
    }
    let normal = normalize_url(origin)?;
    normal.strip_suffix('/').map(str::to_owned)
}

/// Whether `value` can be a request's authority (`host[:port]`, as in a `Host` or
/// `X-Forwarded-Host` header), by the same rules [`normalize_url`] reads an authority with: no
/// `/`, `?`, `#`, `@` or backslash, a `:` only before the port or inside an IPv6 literal.
/// Hosts that build a request URL from such a header check it first: glued into a URL,
/// `Host: api.example/other/path?` would make a proof for another URL acceptable here.
pub fn is_authority(value: &str) -> bool {
    !value.contains(['/', '?', '#']) && normalize_url(&format!("http://{value}/")).is_some()
}

/// [`normalize_url`] for the URL of the request being answered (`scheme://authority` and an
/// origin-form path): `None` also for a `#` anywhere or a `?` before the path, which no real
/// request URL holds (they come from a hostile `Host` header pasted into it).
fn normalize_request_url(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    if url.contains('#') || rest.find(['/', '?']).map(|i| rest.as_bytes()[i]) != Some(b'/') {
        return None;
    }
    normalize_url(url)
}

fn member<'a>(map: &'a Map<String, Value>, name: &str) -> Result<&'a str> {
    match map.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(refuse(
            Status::DpopProofClaimsInvalid,
            format!("{name} is not a non-empty string"),
        )),
        None => Err(refuse(
            Status::DpopProofClaimsInvalid,
            format!("{name} is missing"),
        )),
    }
}

/// Check one DPoP proof (the `DPoP` header's value) against the request it came with: every
/// check of RFC 9449 section 4.3 but replay (see [`ReplayCache`]) and the key binding (the
/// caller compares [`Proof::thumbprint`] with the token's `cnf.jkt`). `now` is the verifier's
/// clock, `leeway` its clock skew allowance in seconds.
pub fn check_proof(
    proof: &str,
    policy: &DpopPolicy,
    request: &ProofRequest<'_>,
    now: f64,
    leeway: u64,
) -> Result<Proof> {
    let proof = proof.trim_matches([' ', '\t']);
    if proof.is_empty() {
        return Err(Status::DpopProofMissing.into());
    }
    // A compact JWS holds no comma: one is where a host joined several DPoP headers.
    if proof.contains(',') {
        return Err(refuse(Status::DpopProofMultiple, "several DPoP proofs"));
    }
    let malformed = |e: Error| refuse(Status::DpopProofMalformed, e.to_string());
    let compact = token::split(proof, MAX_PROOF_BYTES).map_err(malformed)?;
    let header_bytes = token::b64_decode(compact.header).map_err(malformed)?;
    let header = token::parse_object(&header_bytes)
        .map_err(|e| refuse(Status::DpopProofMalformed, format!("header: {e}")))?;
    let payload_bytes = token::b64_decode(compact.payload).map_err(malformed)?;
    let claims = token::parse_object(&payload_bytes)
        .map_err(|e| refuse(Status::DpopProofMalformed, format!("payload: {e}")))?;
    let signature = token::b64_decode(compact.signature).map_err(malformed)?;
    if header.contains_key("crit") {
        return Err(refuse(Status::DpopProofMalformed, "crit is not understood"));
    }

    match header.get("typ").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("dpop+jwt") => {}
        Some(t) if t.eq_ignore_ascii_case("application/dpop+jwt") => {}
        _ => return Err(Status::DpopProofTypeInvalid.into()),
    }
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some(name) => name.parse::<Algorithm>().map_err(|_| {
            refuse(
                Status::DpopProofAlgorithmNotAllowed,
                format!("alg {name:?} is not an asymmetric algorithm"),
            )
        })?,
        None => {
            return Err(refuse(
                Status::DpopProofAlgorithmNotAllowed,
                "alg is missing or not a string",
            ));
        }
    };
    if !crate::policy::permits(&policy.algorithms, alg) {
        return Err(refuse(
            Status::DpopProofAlgorithmNotAllowed,
            format!("{alg} is not in the DPoP allow-list"),
        ));
    }
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(refuse(
            Status::DpopProofKeyInvalid,
            "jwk is missing or not an object",
        ));
    };
    if let Some(name) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(refuse(
            Status::DpopProofKeyPrivate,
            format!("jwk has the private member {name:?}"),
        ));
    }
    let key = keyset::parse_public_key(&Value::Object(jwk.clone()), alg)
        .map_err(|e| refuse(Status::DpopProofKeyInvalid, e))?;
    let thumbprint = thumbprint(jwk).ok_or_else(|| {
        refuse(
            Status::DpopProofKeyInvalid,
            "no thumbprint for this key type",
        )
    })?;
    key.verify(alg, compact.signing_input.as_bytes(), &signature)
        .map_err(|_| Error::from(Status::DpopProofSignatureInvalid))?;

    let jti = member(&claims, "jti")?;
    if jti.len() > MAX_JTI_BYTES {
        return Err(refuse(Status::DpopProofClaimsInvalid, "jti is too long"));
    }
    let htm = member(&claims, "htm")?;
    let htu = member(&claims, "htu")?;
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => n.as_f64().filter(|t| t.is_finite()),
        _ => None,
    }
    .ok_or_else(|| refuse(Status::DpopProofClaimsInvalid, "iat is not a number"))?;

    if htm != request.method {
        return Err(refuse(
            Status::DpopProofMethodMismatch,
            format!("htm {htm:?}, request {:?}", request.method),
        ));
    }
    let expected = normalize_request_url(request.url).ok_or_else(|| {
        refuse(
            Status::DpopProofUrlMismatch,
            format!("the request URL {:?} is not an http(s) URL", request.url),
        )
    })?;
    if !policy.origins.is_empty()
        && !policy.origins.iter().filter_map(|o| origin_of(o)).any(|o| {
            expected
                .strip_prefix(o.as_str())
                .is_some_and(|path| path.starts_with('/'))
        })
    {
        return Err(refuse(
            Status::DpopProofUrlMismatch,
            format!("the request URL {expected:?} is not on an origin this API answers for"),
        ));
    }
    if normalize_url(htu).as_deref() != Some(expected.as_str()) {
        return Err(refuse(
            Status::DpopProofUrlMismatch,
            format!("htu {htu:?}, request {expected:?}"),
        ));
    }
    let leeway = leeway as f64;
    if iat > now + leeway {
        return Err(refuse(
            Status::DpopProofIssuedInFuture,
            format!("iat {iat}, now {now}"),
        ));
    }
    if iat + policy.window_secs as f64 + leeway < now {
        return Err(refuse(
            Status::DpopProofExpired,
            format!("iat {iat}, now {now}"),
        ));
    }
    if let Some(access_token) = request.access_token {
        match claims.get("ath") {
            Some(Value::String(ath)) if *ath == token_hash(access_token) => {}
            Some(_) => return Err(Status::DpopProofTokenHashMismatch.into()),
            None => {
                return Err(refuse(Status::DpopProofTokenHashMismatch, "ath is missing"));
            }
        }
    }
    Ok(Proof {
        thumbprint,
        jti: jti.to_owned(),
        iat,
    })
}

/// The key a token is bound to: its `cnf.jkt`. `Err(())` when `cnf` is present but holds no
/// usable `jkt` (another kind of binding, or a malformed one): such a token is bound, yet not
/// to a DPoP key.
pub fn bound_key(claims: &Map<String, Value>) -> Option<std::result::Result<&str, ()>> {
    let cnf = claims.get("cnf")?;
    Some(match cnf.get("jkt") {
        Some(Value::String(jkt)) if !jkt.is_empty() => Ok(jkt),
        _ => Err(()),
    })
}

const SHARDS: usize = 16;

/// The share of the cache one client may fill with live proofs: however many keys it holds, one
/// client cannot fill the cache and have another client's first proof refused.
const CLIENT_SHARE: usize = 8;

struct Shard {
    /// Proof id → the last second its proof is inside the window, and its client's tag.
    seen: HashMap<[u8; 16], (u64, u64)>,
    /// The soonest any entry ends (`u64::MAX` when empty): a full cache with nothing ended is
    /// answered at once, without a scan.
    earliest: u64,
}

/// How much of the cache is taken, in all and per client.
#[derive(Default)]
struct Quota {
    /// Client tag → how many entries (live, or ended and not yet swept) are that client's.
    per_client: HashMap<u64, usize>,
    /// Every entry of every shard.
    total: usize,
}

impl Quota {
    fn add(&mut self, client: u64) {
        *self.per_client.entry(client).or_default() += 1;
        self.total += 1;
    }

    /// One entry of `client` fewer.
    fn forget(&mut self, client: u64) {
        if let Some(count) = self.per_client.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&client);
            }
        }
        self.total -= 1;
    }
}

/// The `jti` of every proof accepted within its window, per verifier, bounded. Entries are
/// keyed by a SHA-256 of the proof key's thumbprint and the `jti` (so two clients cannot
/// collide) and live until the proof's window ends. When full of live entries it refuses new
/// proofs rather than forget a live one. Each entry counts against a client (whom the token
/// was issued to: see [`crate::Verifier::verify_request`]); one client may hold at most an
/// eighth of the cache, whatever number of keys it proves with, so it cannot fill the cache
/// for the others. The bound is on the whole cache, not per shard: a client choosing its `jti`
/// values cannot fill the part of the cache another client's proofs land in. Each process has
/// its own: worker processes forked from one parent (nginx) each keep their own from the fork
/// on.
pub struct ReplayCache {
    shards: Box<[Mutex<Shard>]>,
    capacity: usize,
    /// Locked after a shard, never before.
    quota: Mutex<Quota>,
    client_share: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn tag(bytes: &[u8]) -> u64 {
    let hash = digest::digest(&digest::SHA256, bytes);
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&hash.as_ref()[..8]);
    u64::from_le_bytes(tag)
}

impl ReplayCache {
    /// A cache of `capacity` proofs (at least one).
    pub fn new(capacity: usize) -> ReplayCache {
        let capacity = capacity.max(1);
        ReplayCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        seen: HashMap::new(),
                        earliest: u64::MAX,
                    })
                })
                .collect(),
            capacity,
            quota: Mutex::new(Quota::default()),
            client_share: (capacity / CLIENT_SHARE).max(1),
        }
    }

    /// Record `proof` of `client`, good until `ends` (unix seconds), at `now`:
    /// `DpopProofReplayed` when its `jti` was seen and is still live, `DpopReplayCacheFull`
    /// when there is no room (or none left for this client).
    pub fn insert(&self, proof: &Proof, client: &str, ends: u64, now: f64) -> Result<()> {
        let mut input = Vec::with_capacity(proof.thumbprint.len() + 1 + proof.jti.len());
        input.extend_from_slice(proof.thumbprint.as_bytes());
        input.push(b'\n');
        input.extend_from_slice(proof.jti.as_bytes());
        let hash = digest::digest(&digest::SHA256, &input);
        let mut id = [0u8; 16];
        id.copy_from_slice(&hash.as_ref()[..16]);
        let client = tag(client.as_bytes());
        let live = |end: u64| end as f64 >= now;
        let index = usize::from(id[0]) % self.shards.len();
        for swept in [false, true] {
            let mut shard = lock(&self.shards[index]);
            if let Some((end, _)) = shard.seen.get(&id)
                && live(*end)
            {
                return Err(refuse(
                    Status::DpopProofReplayed,
                    format!("jti {:?}", proof.jti),
                ));
            }
            let mut quota = lock(&self.quota);
            // An ended entry of the same proof id is replaced, taking no more room.
            let full = quota.total >= self.capacity && !shard.seen.contains_key(&id);
            let client_full =
                quota.per_client.get(&client).copied().unwrap_or(0) >= self.client_share;
            if !full && !client_full {
                if let Some((_, old)) = shard.seen.insert(id, (ends, client)) {
                    quota.forget(old);
                }
                quota.add(client);
                shard.earliest = shard.earliest.min(ends);
                return Ok(());
            }
            if swept {
                let why = if client_full {
                    "this client holds its share of the cache"
                } else {
                    "the cache is full"
                };
                return Err(refuse(Status::DpopReplayCacheFull, why));
            }
            drop(quota);
            drop(shard);
            // Ended proofs may sit in any shard: forget every ended proof (a shard whose
            // soonest end has not passed is skipped without a scan).
            for shard in self.shards.iter() {
                self.sweep(&mut lock(shard), live);
            }
        }
        unreachable!("the second pass answers")
    }

    /// Forget the proofs of `shard` that ended, if any did.
    fn sweep(&self, shard: &mut Shard, live: impl Fn(u64) -> bool) {
        if live(shard.earliest) {
            return;
        }
        let mut quota = lock(&self.quota);
        shard.seen.retain(|_, (end, client)| {
            let keep = live(*end);
            if !keep {
                quota.forget(*client);
            }
            keep
        });
        shard.earliest = shard
            .seen
            .values()
            .map(|(end, _)| *end)
            .min()
            .unwrap_or(u64::MAX);
    }

    /// How many proofs are remembered now.
    pub fn len(&self) -> usize {
        lock(&self.quota).total
    }

    /// Whether no proof is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise_as_rfc_3986_says() {
        let n = |u: &str| normalize_url(u);
        let same = [
            ("https://api.example/a/b", "HTTPS://API.Example:443/a/b"),
            ("https://api.example/a/b", "https://api.example/a/b?x=1#f"),
            ("https://api.example/", "https://api.example"),
            ("https://api.example/", "https://api.example:/"),
            ("http://h:8080/p", "http://h:08080/p"),
            ("http://h/p", "http://h:80/p"),
            ("http://h/~a", "http://h/%7Ea"),
            ("http://h/%2F", "http://h/%2f"),
            ("http://h/a%20b", "http://h/a b"),
            ("http://h/a/c", "http://h/a/b/../c"),
            ("http://h/a/", "http://h/a/./"),
            ("http://h/", "http://h/../.."),
            ("http://[::1]:8080/p", "http://[::1]:8080/p"),
            ("http://[::1]/p", "http://[::1]:80/p"),
        ];
        for (a, b) in same {
            assert_eq!(n(a), n(b), "{a} vs {b}");
            assert!(n(a).is_some(), "{a}");
        }
        let different = [
            ("https://api.example/a", "http://api.example/a"),
            ("https://api.example/a", "https://api.example:8443/a"),
            ("https://api.example/a", "https://other.example/a"),
            ("https://api.example/a", "https://api.example/A"),
            ("https://api.example/a", "https://api.example/a/"),
            ("http://h/a%2Fb", "http://h/a/b"),
        ];
        for (a, b) in different {
            assert_ne!(n(a), n(b), "{a} vs {b}");
        }
        for bad in [
            "",
            "/a",
            "ftp://h/",
            "https://u@h/",
            "https:///a",
            "https://h:99999/",
            "https://h:x/",
            "https://h/%zz",
            "https://h/%4",
            "https://h h/",
            "https://[::1/",
        ] {
            assert_eq!(n(bad), None, "{bad:?}");
        }
        assert_eq!(n("HTTP://H/%7e/a%2f").unwrap(), "http://h/~/a%2F");
    }

    #[test]
    fn a_request_url_is_checked_for_what_a_hostile_host_header_adds() {
        for bad in [
            "http://api.example?/api/private",
            "http://api.example#/api/private",
            "http://rs2.example/x/y#/api/private",
            "http://api.example",
            "http://api.example/api/private#frag",
        ] {
            assert_eq!(normalize_request_url(bad), None, "{bad}");
        }
        assert_eq!(
            normalize_request_url("HTTP://API.example:80/a/../api/private?x=1").as_deref(),
            Some("http://api.example/api/private")
        );
        assert!(is_authority("api.example:8443") && is_authority("[::1]:80"));
        // Found by the dpop fuzz target: a ':' in a host outside brackets.
        for bad in [
            "http://2::1https://api.example/x",
            "http://a:b:/x",
            "http://[::1/x",
            "http://]/x",
            "http://[]/x",
        ] {
            assert_eq!(normalize_url(bad), None, "{bad}");
        }
        for bad in [
            "",
            "a/b",
            "a?",
            "a#",
            "u@a",
            "a\\b",
            "a b",
            "a\r\nX: y",
            "a:b:c",
            "a:99999",
        ] {
            assert!(!is_authority(bad), "{bad:?}");
        }
    }

    #[test]
    fn thumbprint_matches_rfc_7638() {
        // RFC 7638 section 3.1's example key and thumbprint.
        let jwk: Map<String, Value> = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let oct: Map<String, Value> = serde_json::from_str(r#"{"kty":"oct","k":"AA"}"#).unwrap();
        assert_eq!(thumbprint(&oct), None);
    }

    /// A proof of its own client key.
    fn proof(jti: &str) -> Proof {
        Proof {
            thumbprint: format!("key {jti}"),
            jti: jti.into(),
            iat: 0.0,
        }
    }

    /// Record a proof of its own client (named by its key).
    fn own(cache: &ReplayCache, proof: &Proof, ends: u64, now: f64) -> Result<()> {
        cache.insert(proof, &proof.thumbprint, ends, now)
    }

    #[test]
    fn the_replay_cache_refuses_when_full_and_forgets_only_ended_proofs() {
        let cache = ReplayCache::new(2);
        own(&cache, &proof("a"), 100, 10.0).unwrap();
        assert_eq!(
            own(&cache, &proof("a"), 100, 11.0).unwrap_err().status(),
            Status::DpopProofReplayed
        );
        own(&cache, &proof("b"), 200, 12.0).unwrap();
        assert_eq!(cache.len(), 2);
        // Full of live proofs, wherever the next one would land.
        for i in 0..64 {
            assert_eq!(
                own(&cache, &proof(&format!("c{i}")), 200, 12.0)
                    .unwrap_err()
                    .status(),
                Status::DpopReplayCacheFull
            );
        }
        // Once "a" ended (100), there is room for one; "b" is still live.
        own(&cache, &proof("d0"), 300, 150.0).unwrap();
        assert_eq!(
            own(&cache, &proof("d1"), 300, 150.0).unwrap_err().status(),
            Status::DpopReplayCacheFull
        );
        assert_eq!(
            own(&cache, &proof("b"), 300, 150.0).unwrap_err().status(),
            Status::DpopProofReplayed
        );
        // A proof id seen under another key is another proof.
        let other = Proof {
            thumbprint: "u".into(),
            ..proof("x")
        };
        let cache = ReplayCache::new(10);
        own(&cache, &proof("x"), 100, 0.0).unwrap();
        own(&cache, &other, 100, 0.0).unwrap();
    }

    #[test]
    fn one_client_cannot_fill_the_cache_for_the_others_with_any_number_of_keys() {
        let keyed = |key: &str, jti: &str| Proof {
            thumbprint: key.into(),
            ..proof(jti)
        };
        let cache = ReplayCache::new(800);
        // One client proving with 64 keys, 100 proofs each.
        let mut flood = 0;
        for k in 0..64 {
            for i in 0..100 {
                let p = keyed(&format!("flood key {k}"), &format!("f{i}"));
                if cache.insert(&p, "flooder", 200, 10.0).is_ok() {
                    flood += 1;
                }
            }
        }
        // An eighth of the whole cache, wherever its proofs fall.
        assert_eq!(flood, 100);
        let err = cache
            .insert(&keyed("flood key 99", "one more"), "flooder", 200, 10.0)
            .unwrap_err();
        assert_eq!(err.status(), Status::DpopReplayCacheFull);
        assert!(
            err.to_string().contains("this client holds its share"),
            "{err}"
        );
        // Every other client's first proof gets in: 700 clients, one proof each.
        for i in 0..700 {
            let client = format!("client {i}");
            cache
                .insert(&keyed(&client, "v"), &client, 200, 10.0)
                .unwrap();
        }
        assert_eq!(cache.len(), 800);
        let err = cache
            .insert(&keyed("late", "v"), "late", 200, 10.0)
            .unwrap_err();
        assert!(err.to_string().contains("the cache is full"), "{err}");
        // Once the proofs ended, the flooder has room again, and its count is right: an
        // eighth of the cache exactly.
        let more = (0..500)
            .filter(|i| {
                cache
                    .insert(
                        &keyed("flood key 0", &format!("g{i}")),
                        "flooder",
                        300,
                        250.0,
                    )
                    .is_ok()
            })
            .count();
        assert_eq!(more, 100);
        assert_eq!(
            cache.len(),
            100,
            "every ended proof is gone, in every shard"
        );
        // An ended entry replaced by the same proof id keeps the counts right.
        let same = ReplayCache::new(16);
        own(&same, &keyed("k", "j"), 100, 10.0).unwrap();
        own(&same, &keyed("k", "j"), 300, 150.0).unwrap();
        assert_eq!(same.len(), 1);
        assert_eq!(
            same.quota.lock().unwrap().per_client.get(&tag(b"k")),
            Some(&1)
        );
    }

    #[test]
    fn a_clients_count_drops_by_what_ended_only() {
        let cache = ReplayCache::new(800);
        let keyed = |jti: String| Proof {
            thumbprint: "k".into(),
            ..proof(&jti)
        };
        // Its share (100): half ending at 100, half at 300.
        for i in 0..100 {
            let ends = if i % 2 == 0 { 100 } else { 300 };
            cache
                .insert(&keyed(format!("a{i}")), "c", ends, 10.0)
                .unwrap();
        }
        // At 150 the first half ended: room for 50 more, not for a whole share.
        let more = (0..200)
            .filter(|i| {
                cache
                    .insert(&keyed(format!("b{i}")), "c", 400, 150.0)
                    .is_ok()
            })
            .count();
        assert_eq!(more, 50);
        assert_eq!(cache.len(), 100);
    }

    #[test]
    fn a_client_choosing_its_jti_cannot_fill_the_part_of_the_cache_another_lands_in() {
        let cache = ReplayCache::new(16 * 10);
        // Proofs whose ids all fall in one shard: as many as its share, no fewer.
        let mut taken = 0;
        for i in 0..100_000 {
            let p = Proof {
                thumbprint: "grinder".into(),
                ..proof(&format!("j{i}"))
            };
            let hash = digest::digest(&digest::SHA256, format!("grinder\nj{i}").as_bytes());
            if usize::from(hash.as_ref()[0]) % SHARDS != 0 {
                continue;
            }
            if cache.insert(&p, "grinder", 200, 10.0).is_ok() {
                taken += 1;
            } else {
                break;
            }
        }
        assert_eq!(taken, 20);
        // Others' proofs land in every shard, that one too.
        for i in 0..140 {
            own(&cache, &proof(&format!("o{i}")), 200, 10.0).unwrap();
        }
    }
}
