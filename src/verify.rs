//! The verification pipeline: size cap, compact parsing, header rules, key selection,
//! signature, claims.

use crate::claims::{self, Claims};
use crate::clock::Clock;
use crate::counters::Striped;
use crate::dpop::{self, DpopMode, DpopPolicy, ProofRequest, ReplayCache};
use crate::error::{Error, Result, Status};
use crate::jwks::cache::{self, CacheOptions, JwksSource, SourceStats};
use crate::jwks::discovery::Discovery;
use crate::jwks::fetch;
use crate::jwks::keyset::{KeySet, Selection};
use crate::policy::{Algorithm, Policy};
use crate::token::{self, Header};
use crate::token_cache::{Lookup, TokenCache, TokenCacheStats};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a verifier's keys come from.
#[derive(Clone, Debug)]
pub enum Keys {
    /// A JWKS URL, served through the process-global cache.
    Url(String),
    /// A fixed JWKS document (JSON text).
    Json(String),
    /// OpenID Connect discovery from the (first) issuer:
    /// `{issuer}/.well-known/openid-configuration` names the JWKS URL.
    Discover,
}

/// Everything a [`Verifier`] is built from.
#[derive(Clone, Debug)]
pub struct Config {
    /// What tokens are accepted.
    pub policy: Policy,
    /// Where keys come from.
    pub keys: Keys,
    /// Cache and fetch policy for `Keys::Url`.
    pub cache: CacheOptions,
    /// The clock for claim checks and cache policy.
    pub clock: Clock,
    /// How many verified tokens to remember (0: none); see [`crate::token_cache`]. One
    /// cache serves every issuer of the verifier.
    pub token_cache: usize,
    /// Further issuers, each with its own keys and policy (see [`Config::with_issuer`]).
    pub more_issuers: Vec<IssuerConfig>,
    /// What DPoP proofs are accepted, and whether DPoP is off, allowed or required (one
    /// policy for every issuer of the verifier).
    pub dpop: DpopPolicy,
}

/// One issuer of a verifier that holds several: what its tokens must satisfy and where its
/// keys come from. A token's unverified `iss` picks the issuer (exact match against the
/// policy's issuers); the token is then verified against that issuer's keys and policy only.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// What this issuer's tokens must satisfy (its `issuers` are the `iss` values it owns).
    pub policy: Policy,
    /// Where this issuer's keys come from.
    pub keys: Keys,
    /// Cache and fetch policy for this issuer's keys.
    pub cache: CacheOptions,
}

impl IssuerConfig {
    /// An issuer with default cache policy.
    pub fn new(policy: Policy, keys: Keys) -> Self {
        IssuerConfig {
            policy,
            keys,
            cache: CacheOptions::default(),
        }
    }
}

/// Verified tokens remembered per verifier by default: the tokens of 10,000 clients, each
/// reusing its token for the token's lifetime, in about 10-40 MB at most.
pub const DEFAULT_TOKEN_CACHE: usize = 10_000;
/// Most verified tokens a verifier may remember.
pub const MAX_TOKEN_CACHE: usize = 10_000_000;

impl Config {
    /// A configuration with default cache policy, the system clock and a token cache.
    pub fn new(policy: Policy, keys: Keys) -> Self {
        Config {
            policy,
            keys,
            cache: CacheOptions::default(),
            clock: Clock::System,
            token_cache: DEFAULT_TOKEN_CACHE,
            more_issuers: Vec::new(),
            dpop: DpopPolicy::default(),
        }
    }

    /// Add another issuer with its own keys and policy. A verifier of several issuers reads
    /// a token's `iss` before anything else and verifies the token against that issuer only:
    /// an `iss` no issuer owns is `issuer_invalid` at once (no key is fetched for it), and one
    /// issuer's keys never verify another's tokens. An `iss` value may belong to one issuer
    /// only.
    pub fn with_issuer(mut self, issuer: IssuerConfig) -> Self {
        self.more_issuers.push(issuer);
        self
    }
}

enum KeySource {
    Fixed(Arc<KeySet>),
    Cached(Arc<JwksSource>),
    Discovered(Arc<Discovery>),
}

/// One issuer of a verifier: its policy and keys.
struct Issuer {
    policy: Policy,
    source: KeySource,
    cache: CacheOptions,
}

/// A configured verifier. Cheap to share: wrap it in an `Arc` and use it from many threads.
pub struct Verifier {
    /// At least one; the first is [`Config`]'s own.
    issuers: Box<[Issuer]>,
    /// Which issuer owns each `iss` value (empty with one issuer: its claim check decides).
    by_iss: HashMap<String, usize>,
    /// The largest token any issuer accepts.
    max_token_bytes: usize,
    clock: Clock,
    /// Verifications by outcome, indexed like `Status::ALL` (per thread: no shared cache
    /// line on the hot path).
    outcomes: Striped,
    tokens: Option<TokenCache>,
    dpop: DpopPolicy,
    /// Proofs accepted within their window (made on the first proof).
    replay: std::sync::OnceLock<ReplayCache>,
}

/// The authentication scheme of an `Authorization` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449).
    Dpop,
}

/// What a host knows of a request, for [`Verifier::verify_request`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// The `Authorization` header's value (`None` when absent).
    pub authorization: Option<&'a str>,
    /// The `DPoP` header's value (`None` when absent). Several `DPoP` lines: pass them joined
    /// with `", "`, as HTTP combines repeated fields; that is refused (`dpop_proof_multiple`).
    pub dpop: Option<&'a str>,
    /// The request method (`GET`, ...), needed when a proof is checked.
    pub method: Option<&'a str>,
    /// The URL the client addressed, `scheme://host[:port]/path[?query]`, needed when a proof
    /// is checked (query and fragment are ignored).
    pub url: Option<&'a str>,
}

/// A JWS whose signature verified.
#[derive(Debug)]
pub struct VerifiedJws {
    /// The parsed header members jwtguard reads.
    pub header: Header,
    /// The algorithm that verified.
    pub alg: Algorithm,
    /// The decoded payload bytes.
    pub payload: Vec<u8>,
}

/// A token split and decoded up to the signature, before any key is chosen.
struct Decoded<'a> {
    signing_input: &'a str,
    payload_b64: &'a str,
    header: Header,
    alg: Algorithm,
    signature: Vec<u8>,
}

fn decode<'a>(token: &'a str, algorithms: &[Algorithm], max_bytes: usize) -> Result<Decoded<'a>> {
    let compact = token::split(token, max_bytes)?;
    let header = token::parse_header(compact.header)?;
    let alg: Algorithm = header.alg.parse()?;
    if !crate::policy::permits(algorithms, alg) {
        return Err(Error::with_detail(
            Status::AlgorithmNotAllowed,
            format!("{alg} is not in the allow-list"),
        ));
    }
    if header.has_crit {
        return Err(Status::CriticalHeaderUnsupported.into());
    }
    let signature = token::b64_decode(compact.signature)?;
    Ok(Decoded {
        signing_input: compact.signing_input,
        payload_b64: compact.payload,
        header,
        alg,
        signature,
    })
}

impl Decoded<'_> {
    /// Verify against `keys`: `Ok(false)` when no key fits (the caller may refetch).
    fn verify_with(&self, keys: &KeySet) -> Result<bool> {
        match keys.select(self.header.kid.as_deref(), self.alg)? {
            Selection::Key(key) => {
                key.verify(self.alg, self.signing_input.as_bytes(), &self.signature)?;
                Ok(true)
            }
            Selection::NotFound => Ok(false),
        }
    }

    fn payload(&self) -> Result<Vec<u8>> {
        token::b64_decode(self.payload_b64)
    }
}

/// Verify a compact JWS against a key set, without any claim checks: the JWS-level entry point
/// (used for test vectors whose payloads are not claim sets).
pub fn verify_jws(
    token: &str,
    keys: &KeySet,
    algorithms: &[Algorithm],
    max_bytes: usize,
) -> Result<VerifiedJws> {
    let decoded = decode(token, algorithms, max_bytes)?;
    if !decoded.verify_with(keys)? {
        return Err(Status::KeyNotFound.into());
    }
    Ok(VerifiedJws {
        payload: decoded.payload()?,
        alg: decoded.alg,
        header: decoded.header,
    })
}

/// `typ` rules: absent, `JWT`, `at+jwt` or `application/at+jwt` (any case); strict mode only
/// the `at+jwt` forms.
fn check_typ(typ: Option<&str>, strict: bool) -> Result<()> {
    let ok = match typ.map(str::to_ascii_lowercase).as_deref() {
        None => !strict,
        Some("jwt") => !strict,
        Some("at+jwt" | "application/at+jwt") => true,
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Status::TypeNotAllowed.into())
    }
}

/// Extract the token from an `Authorization` header value: `Bearer <token>` with a
/// case-insensitive scheme, spaces or tabs between, and exactly one token. Every host gets the
/// same answer for the same bytes: a value holding anything but visible ASCII, spaces and
/// tabs (CR or LF of a folded or injected line, NUL, bytes above 0x7e, whether UTF-8 or not)
/// is malformed, and so is a request's several `Authorization` lines joined with ", " (RFC 9110
/// field combination; hosts pass them joined).
pub fn bearer_token(header: Option<&str>) -> Result<&str> {
    match authorization_token(header)? {
        (Scheme::Bearer, token) => Ok(token),
        (Scheme::Dpop, _) => Err(Error::with_detail(
            Status::AuthorizationSchemeUnsupported,
            "Authorization header must start with Bearer",
        )),
    }
}

/// Extract the scheme and token from an `Authorization` header value: `Bearer <token>` or
/// `DPoP <token>` (scheme in any case), by the rules of [`bearer_token`].
pub fn authorization_token(header: Option<&str>) -> Result<(Scheme, &str)> {
    let blank = |c: char| c == ' ' || c == '\t';
    let value = header.map(|h| h.trim_matches(blank)).unwrap_or("");
    if value.is_empty() {
        return Err(Status::TokenMissing.into());
    }
    // This runs on every request: the long part, the token, is scanned once, branch-free.
    let is_blank = |b: u8| b == b' ' || b == b'\t';
    let graphic = |text: &str| {
        text.bytes().fold(true, |ok, b| {
            ok & (b.wrapping_sub(0x21) < 0x5e) & (b != b',')
        })
    };
    let (scheme, rest) = match value.bytes().position(is_blank) {
        Some(i) => (&value[..i], value[i..].trim_start_matches([' ', '\t'])),
        None => (value, ""),
    };
    let clean = graphic(scheme) && graphic(rest);
    if !clean && !value.bytes().all(|b| is_blank(b) || b.is_ascii_graphic()) {
        return Err(Error::with_detail(
            Status::AuthorizationHeaderMalformed,
            "the Authorization header holds a control or non-ASCII character",
        ));
    }
    // A comma is where a host joined several Authorization lines (an empty one too: ", Bearer
    // t"); no token holds one. Other schemes' credentials may (Digest), so only a comma in
    // the scheme itself, or after Bearer or DPoP, is read as that.
    if scheme.contains(',') {
        return Err(Error::with_detail(
            Status::AuthorizationHeaderMalformed,
            "several Authorization headers",
        ));
    }
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else if joined_credentials(rest) {
        return Err(Error::with_detail(
            Status::AuthorizationHeaderMalformed,
            "several Authorization headers",
        ));
    } else {
        return Err(Error::with_detail(
            Status::AuthorizationSchemeUnsupported,
            "Authorization header must start with Bearer or DPoP",
        ));
    };
    if rest.is_empty() {
        return Err(Error::with_detail(
            Status::AuthorizationHeaderMalformed,
            "Token not found",
        ));
    }
    if !clean {
        return Err(Error::with_detail(
            Status::AuthorizationHeaderMalformed,
            "Authorization header must be Bearer token",
        ));
    }
    Ok((scheme, rest))
}

/// Whether another scheme's credentials hold a second line joined to them (`Basic x, Bearer t`):
/// after a comma, a word followed by a blank (a scheme and its credentials), which another
/// scheme's parameters never are (they are `name=value`).
fn joined_credentials(credentials: &str) -> bool {
    credentials.split(',').skip(1).any(|part| {
        let part = part.trim_start_matches([' ', '\t']);
        match part.find([' ', '\t']) {
            Some(end) => !part[..end].contains(['=', '"']),
            None => false,
        }
    })
}

impl Issuer {
    /// Every check, with nothing made (a key source is process-wide and outlives a refused
    /// verifier): the policy, the cache options, the CA file, the URLs. A fixed JWKS is parsed
    /// here, once, and handed to [`Issuer::new`].
    fn check(config: &IssuerConfig) -> Result<Option<KeySet>> {
        let (policy, cache) = (&config.policy, &config.cache);
        policy.validate()?;
        cache.validate()?;
        if let Some(path) = &cache.fetch.ca_file {
            fetch::load_ca_file(path)?;
        }
        let insecure = cache.fetch.allow_insecure_http;
        match &config.keys {
            Keys::Json(text) => {
                let set = KeySet::from_json(text.as_bytes())?;
                if set.is_empty() {
                    return Err(Error::with_detail(
                        Status::JwksInvalid,
                        "the JWKS has no usable key",
                    ));
                }
                return Ok(Some(set));
            }
            Keys::Url(url) => {
                fetch::check_url(url, insecure)?;
            }
            Keys::Discover => {
                let url = crate::jwks::discovery::configuration_url(&policy.issuers[0]);
                fetch::check_url(&url, insecure)?;
            }
        }
        Ok(None)
    }

    /// An issuer [`Issuer::check`] passed (`fixed`: the JWKS it parsed): cannot fail, so no
    /// source is made for a verifier that is then refused.
    fn new(config: IssuerConfig, fixed: Option<KeySet>) -> Issuer {
        let IssuerConfig {
            policy,
            keys,
            cache,
        } = config;
        let source = match (keys, fixed) {
            (_, Some(set)) => KeySource::Fixed(Arc::new(set)),
            (Keys::Url(url), None) => {
                let source = cache::source(&url, &cache.fetch);
                if let Some(path) = &cache.snapshot {
                    source.add_snapshot(path.clone());
                }
                KeySource::Cached(source)
            }
            (_, None) => KeySource::Discovered(Arc::new(Discovery::new(&policy.issuers[0]))),
        };
        Issuer {
            policy,
            source,
            cache,
        }
    }

    /// The source of keys from the network, discovering it if needed (borrowed: no reference
    /// count is touched per verification).
    fn network_source(&self, clock: &Clock) -> Result<Option<&Arc<JwksSource>>> {
        self.network_source_with(clock, &self.cache)
    }

    fn network_source_with(
        &self,
        clock: &Clock,
        options: &CacheOptions,
    ) -> Result<Option<&Arc<JwksSource>>> {
        match &self.source {
            KeySource::Fixed(_) => Ok(None),
            KeySource::Cached(s) => Ok(Some(s)),
            KeySource::Discovered(d) => match d.resolved() {
                Some(s) => Ok(Some(s)),
                None => d.source(clock, options).map(Some),
            },
        }
    }

    fn jwks_source(&self) -> Option<&Arc<JwksSource>> {
        match &self.source {
            KeySource::Cached(s) => Some(s),
            KeySource::Discovered(d) => d.current(),
            KeySource::Fixed(_) => None,
        }
    }

    /// The id of the key set a verification would use now (no reference count or lock
    /// touched while the keys are fresh).
    fn current_keys_id(&self, clock: &Clock) -> Result<u64> {
        match (&self.source, self.network_source(clock)?) {
            (KeySource::Fixed(keys), _) => Ok(keys.id()),
            (_, Some(source)) => source.keys_id(clock, &self.cache),
            (_, None) => Err(Status::KeysUnavailable.into()),
        }
    }

    /// The whole pipeline; also returns the key set that verified the token.
    fn verify(&self, token: &str, clock: &Clock) -> Result<(Claims, Arc<KeySet>)> {
        let decoded = decode(token, &self.policy.algorithms, self.policy.max_token_bytes)?;
        check_typ(decoded.header.typ.as_deref(), self.policy.strict)?;
        let verified_by = match (&self.source, self.network_source(clock)?) {
            (KeySource::Fixed(keys), _) => decoded.verify_with(keys)?.then(|| keys.clone()),
            (_, None) => None,
            (_, Some(source)) => {
                let mut keys = source.keys(clock, &self.cache)?;
                let mut verified = decoded.verify_with(&keys)?;
                // Asked twice at most: the first refetch may only have waited for (or found
                // the result of) a fetch that began before the key was published; the second
                // then fetches for this kid itself. The refetch cooldown still bounds what a
                // kid costs: when the first one fetched for it, the second returns at once.
                for _ in 0..2 {
                    if verified {
                        break;
                    }
                    match source.refetch_for_unknown_kid(
                        &keys,
                        decoded.header.kid.as_deref(),
                        clock,
                        &self.cache,
                    ) {
                        Some(newer) => {
                            verified = decoded.verify_with(&newer)?;
                            keys = newer;
                        }
                        None => break,
                    }
                }
                verified.then_some(keys)
            }
        };
        let Some(keys) = verified_by else {
            return Err(Status::KeyNotFound.into());
        };
        let payload = decoded.payload()?;
        let map = token::parse_object(&payload)
            .map_err(|e| Error::with_detail(Status::PayloadInvalid, e))?;
        claims::check(&map, &self.policy, clock.now())?;
        // parse_object accepted the bytes as JSON, so they are UTF-8.
        let json = String::from_utf8(payload).map_err(|_| Status::PayloadInvalid)?;
        Ok((Claims::new(json, map), keys))
    }

    fn keys_ready(&self, clock: &Clock) -> bool {
        match &self.source {
            KeySource::Fixed(_) => true,
            KeySource::Cached(s) => s.has_usable_keys(clock, &self.cache),
            KeySource::Discovered(d) => d
                .resolved()
                .is_some_and(|s| s.has_usable_keys(clock, &self.cache)),
        }
    }
}

/// An issuer whose keys are found by discovery and that owns several `iss` names becomes one
/// issuer per name, each discovering its own keys: discovery from the first name alone would
/// let that issuer's keys vouch for every other name (a tenant acting as another). Two names
/// of one issuer (a canonical and a custom domain) still work: each name's discovery document
/// must name it as `issuer`, and when both publish the same `jwks_uri` they share one cache
/// entry. Names that share keys by an explicit `jwks_uri` (or a fixed JWKS) stay one issuer.
fn split_discovered_names(issuer: IssuerConfig) -> Vec<IssuerConfig> {
    if !matches!(issuer.keys, Keys::Discover) || issuer.policy.issuers.len() < 2 {
        return vec![issuer];
    }
    issuer
        .policy
        .issuers
        .iter()
        .map(|name| IssuerConfig {
            policy: Policy {
                issuers: vec![name.clone()],
                ..issuer.policy.clone()
            },
            keys: Keys::Discover,
            cache: issuer.cache.clone(),
        })
        .collect()
}

/// Whose proofs a DPoP request's are, for the replay cache's per-client share: the principal
/// the token was issued to (`iss` and `sub`; for a client-credentials token the client itself),
/// else the OAuth client (`client_id`), else every token of that issuer naming neither, as one.
/// Never the proof's key: an issuer binds a token to any key a client brings, so one client
/// with many keys would take many shares.
fn replay_client(claims: &serde_json::Map<String, Value>) -> String {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let iss = text("iss").unwrap_or("");
    match (text("sub"), text("client_id")) {
        // The issuer's length first: no two (iss, sub) pairs read as one string.
        (Some(sub), _) => format!("sub {} {iss}{sub}", iss.len()),
        (None, Some(client)) => format!("client_id {} {iss}{client}", iss.len()),
        (None, None) => format!("anonymous {iss}"),
    }
}

impl Verifier {
    /// Build a verifier. A fixed JWKS is parsed now; a JWKS URL is checked now and fetched on
    /// first use (so building never touches the network).
    pub fn new(config: Config) -> Result<Verifier> {
        config.dpop.validate()?;
        if config.token_cache > MAX_TOKEN_CACHE {
            return Err(Error::with_detail(
                Status::ConfigInvalid,
                format!("token_cache must be at most {MAX_TOKEN_CACHE} entries"),
            ));
        }
        let all: Vec<IssuerConfig> = std::iter::once(IssuerConfig {
            policy: config.policy,
            keys: config.keys,
            cache: config.cache,
        })
        .chain(config.more_issuers)
        .flat_map(split_discovered_names)
        .collect();
        // Everything is checked before any key source is made: a source is process-wide and
        // lives on, even when this verifier is refused.
        let mut by_iss = HashMap::new();
        let mut fixed = Vec::with_capacity(all.len());
        for (index, issuer) in all.iter().enumerate() {
            fixed.push(Issuer::check(issuer)?);
            for name in &issuer.policy.issuers {
                if by_iss.insert(name.clone(), index).is_some() && all.len() > 1 {
                    return Err(Error::with_detail(
                        Status::ConfigInvalid,
                        format!("the issuer {name:?} is configured twice"),
                    ));
                }
            }
        }
        if all.len() == 1 {
            by_iss.clear();
        }
        let issuers: Vec<Issuer> = all
            .into_iter()
            .zip(fixed)
            .map(|(config, set)| Issuer::new(config, set))
            .collect();
        let max_token_bytes = issuers
            .iter()
            .map(|i| i.policy.max_token_bytes)
            .max()
            .unwrap_or(0);
        Ok(Verifier {
            issuers: issuers.into_boxed_slice(),
            by_iss,
            max_token_bytes,
            clock: config.clock,
            outcomes: Striped::new(Status::ALL.len()),
            tokens: (config.token_cache > 0).then(|| TokenCache::new(config.token_cache)),
            dpop: config.dpop,
            replay: std::sync::OnceLock::new(),
        })
    }

    /// How many verifications ended with `status` (`Status::Ok` for successes).
    pub fn count(&self, status: Status) -> u64 {
        Status::ALL
            .iter()
            .position(|s| *s == status)
            .map_or(0, |i| self.outcomes.get(i))
    }

    fn record(&self, status: Status) {
        if status == Status::Ok {
            self.outcomes.add(0);
        } else if let Some(i) = Status::ALL.iter().position(|s| *s == status) {
            self.outcomes.add(i);
        }
    }

    /// Fetch every issuer's keys now and wait for them (discovering JWKS URLs first if
    /// needed). For hosts that prefetch at start (nginx workers) and for tests. A fixed JWKS
    /// needs nothing. The first failure is returned, after every issuer was tried.
    pub fn refresh_keys(&self) -> Result<()> {
        let mut outcome = Ok(());
        for issuer in self.issuers.iter() {
            let result = match issuer.network_source(&self.clock) {
                Ok(Some(source)) => source.refresh_now(&self.clock, &issuer.cache),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }

    /// Whether keys are being fetched (or a JWKS URL discovered) right now, so that a
    /// verification refused for want of keys may succeed shortly. Event-loop hosts use it to
    /// retry such a request on a timer instead of refusing it.
    pub fn fetch_in_progress(&self) -> bool {
        self.issuers.iter().any(|i| match &i.source {
            KeySource::Fixed(_) => false,
            KeySource::Cached(s) => s.is_fetching(),
            KeySource::Discovered(d) => d.is_running(),
        })
    }

    /// How many key fetches (and discoveries) of this verifier's issuers have ended, in this
    /// process. An event-loop host reads it before a verification: when that verification
    /// fails for want of keys (`KeyNotFound`, `KeysUnavailable`), keys may arrive shortly if a
    /// fetch is running now ([`fetch_in_progress`](Self::fetch_in_progress)) or one ended
    /// meanwhile (the number moved); either way the request is worth retrying.
    pub fn fetch_epoch(&self) -> u64 {
        self.issuers
            .iter()
            .map(|i| match &i.source {
                KeySource::Fixed(_) => 0,
                KeySource::Cached(s) => s.fetch_epoch(),
                KeySource::Discovered(d) => d.fetch_epoch(),
            })
            .fold(0u64, u64::wrapping_add)
    }

    /// Start fetching every issuer's keys (discovering JWKS URLs first if needed) in the
    /// background if they are missing or due, without waiting, whatever the blocking mode.
    pub fn prefetch_keys(&self) {
        for issuer in self.issuers.iter() {
            let mut background = issuer.cache.clone();
            background.non_blocking = true;
            if let Ok(Some(source)) = issuer.network_source_with(&self.clock, &background) {
                let _ = source.keys(&self.clock, &background);
            }
        }
    }

    /// Whether every issuer has keys to verify with now, without fetching (fixed keys always
    /// do): what a readiness probe asks.
    pub fn keys_ready(&self) -> bool {
        self.issuers.iter().all(|i| i.keys_ready(&self.clock))
    }

    /// The policy of the verifier's first (or only) issuer.
    pub fn policy(&self) -> &Policy {
        &self.issuers[0].policy
    }

    /// Every issuer's policy, the first one first.
    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.issuers.iter().map(|i| &i.policy)
    }

    /// The largest token any issuer accepts, in bytes.
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    /// The cache entry behind the first issuer, when its keys come from a URL (with
    /// discovery: once it succeeded, or the snapshot's stand-in before).
    pub fn jwks_source(&self) -> Option<&Arc<JwksSource>> {
        self.issuers[0].jwks_source()
    }

    /// The cache entries behind every issuer whose keys come from a URL, in issuer order.
    pub fn jwks_sources(&self) -> impl Iterator<Item = &Arc<JwksSource>> {
        self.issuers.iter().filter_map(Issuer::jwks_source)
    }

    /// The counters of every distinct JWKS source behind this verifier, summed (a URL that
    /// several issuers share counts once).
    pub fn jwks_stats(&self) -> SourceStats {
        let mut seen: Vec<&Arc<JwksSource>> = Vec::new();
        let mut total = SourceStats::default();
        for source in self.jwks_sources() {
            if seen.iter().any(|s| Arc::ptr_eq(s, source)) {
                continue;
            }
            seen.push(source);
            let s = source.stats();
            total.fetches_ok += s.fetches_ok;
            total.fetches_failed += s.fetches_failed;
            total.fetches_not_modified += s.fetches_not_modified;
            total.unknown_kid_refetches += s.unknown_kid_refetches;
            total.cache_hits += s.cache_hits;
            total.stale_hits += s.stale_hits;
            total.fetch_panics += s.fetch_panics;
        }
        total
    }

    /// Verify a token and return its claims.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        self.verify_bytes(token.as_bytes())
    }

    /// Verify a token given as bytes (a token that is not UTF-8 is malformed). A token the
    /// token cache holds is answered before its bytes are even checked for UTF-8.
    ///
    /// A token verified alone is a bearer token: one bound to a key (`cnf`) is refused
    /// (`dpop_bound_token_as_bearer`), and so is every token when DPoP is required. Check
    /// DPoP-bound tokens with [`verify_request`](Self::verify_request).
    pub fn verify_bytes(&self, token: &[u8]) -> Result<Claims> {
        let result = self.bearer(|| self.verify_inner(token).map(|(claims, _)| claims));
        self.record(result.as_ref().map_or_else(|e| e.status(), |_| Status::Ok));
        result
    }

    /// A bearer token's verification (`verify`), under the DPoP policy.
    fn bearer(&self, verify: impl FnOnce() -> Result<Claims>) -> Result<Claims> {
        if self.dpop.mode == DpopMode::Required {
            return Err(Status::DpopRequired.into());
        }
        let claims = verify()?;
        if dpop::bound_key(claims.as_map()).is_some() {
            return Err(Status::DpopBoundTokenAsBearer.into());
        }
        Ok(claims)
    }

    /// The DPoP policy.
    pub fn dpop(&self) -> &DpopPolicy {
        &self.dpop
    }

    /// Verify a request's credentials: `Authorization: Bearer <token>`, or `Authorization:
    /// DPoP <token>` with its `DPoP` proof checked against the method and URL (RFC 9449
    /// section 4.3), under the DPoP policy ([`DpopMode`]). A token bound to a key (`cnf`) is
    /// accepted only with the `DPoP` scheme and a valid proof by that key; a proof's `jti` is
    /// accepted once within its window.
    pub fn verify_request(&self, request: &Request<'_>) -> Result<Claims> {
        let result = self.verify_request_inner(request, true);
        self.record(result.as_ref().map_or_else(|e| e.status(), |_| Status::Ok));
        result
    }

    /// [`Verifier::verify_request`] for a request this verifier judged before: the same checks,
    /// except that a DPoP proof's `jti` is neither looked up nor recorded, so the first
    /// judgement's use of it does not read as a replay. Two uses, each with its own meaning of
    /// `Ok`: after this verifier *accepted* the request (nginx checking one client request
    /// again after an internal redirect, or in a subrequest), `Ok` allows; after it *refused*
    /// the request (a forward-auth proxy asking again for the refusal's whole answer), never
    /// allow on it: `Ok` then means the refusal was a replay (or the replay cache was full).
    /// Never for a request this verifier has not judged. Not counted.
    pub fn verify_request_again(&self, request: &Request<'_>) -> Result<Claims> {
        self.verify_request_inner(request, false)
    }

    fn verify_request_inner(&self, request: &Request<'_>, replay_check: bool) -> Result<Claims> {
        let (scheme, token) = authorization_token(request.authorization)?;
        if scheme == Scheme::Bearer {
            return self.bearer(|| self.verify_inner(token.as_bytes()).map(|(c, _)| c));
        }
        if self.dpop.mode == DpopMode::Off {
            return Err(Status::DpopSchemeDisabled.into());
        }
        let proof = request
            .dpop
            .map(|p| p.trim_matches([' ', '\t']))
            .filter(|p| !p.is_empty())
            .ok_or(Status::DpopProofMissing)?;
        if proof.contains(',') {
            return Err(Error::with_detail(
                Status::DpopProofMultiple,
                "several DPoP proofs",
            ));
        }
        let (claims, index) = self.verify_inner(token.as_bytes())?;
        let jkt = match dpop::bound_key(claims.as_map()) {
            Some(Ok(jkt)) => jkt,
            Some(Err(())) => {
                return Err(Error::with_detail(
                    Status::DpopTokenNotBound,
                    "cnf holds no jkt",
                ));
            }
            None => return Err(Status::DpopTokenNotBound.into()),
        };
        let (Some(method), Some(url)) = (request.method, request.url) else {
            return Err(Error::with_detail(
                Status::InvalidArgument,
                "a DPoP proof needs the request's method and URL",
            ));
        };
        let leeway = self.issuers[index].policy.leeway_secs;
        let now = self.clock.now();
        let checked = dpop::check_proof(
            proof,
            &self.dpop,
            &ProofRequest {
                method,
                url,
                access_token: Some(token),
            },
            now,
            leeway,
        )?;
        if checked.thumbprint != jkt {
            return Err(Status::DpopProofKeyMismatch.into());
        }
        if replay_check {
            let ends = (checked.iat + (self.dpop.window_secs + leeway) as f64).ceil();
            self.replay
                .get_or_init(|| ReplayCache::new(self.dpop.replay_cache))
                .insert(
                    &checked,
                    &replay_client(claims.as_map()),
                    ends.max(0.0) as u64,
                    now,
                )?;
        }
        Ok(claims)
    }

    /// The issuer a token belongs to, by its unverified `iss` (with one issuer, that one: its
    /// claim checks judge `iss`).
    fn issuer_of(&self, token: &str) -> Result<usize> {
        if self.issuers.len() == 1 {
            return Ok(0);
        }
        let compact = token::split(token, self.max_token_bytes)?;
        let payload = token::b64_decode(compact.payload)?;
        let map = token::parse_object(&payload)
            .map_err(|e| Error::with_detail(Status::PayloadInvalid, e))?;
        match map.get("iss") {
            Some(Value::String(iss)) => self.by_iss.get(iss.as_str()).copied().ok_or_else(|| {
                Error::with_detail(Status::IssuerInvalid, "no configured issuer has this iss")
            }),
            Some(_) => Err(Error::with_detail(
                Status::IssuerInvalid,
                "iss is not a string",
            )),
            None => Err(Error::with_detail(Status::IssuerInvalid, "iss is missing")),
        }
    }

    /// The token checks, and which issuer's they were.
    fn verify_inner(&self, token: &[u8]) -> Result<(Claims, usize)> {
        let text =
            |bytes| std::str::from_utf8(bytes).map_err(|_| Error::from(Status::TokenMalformed));
        let Some(tokens) = &self.tokens else {
            let token = text(token)?;
            let index = self.issuer_of(token)?;
            return self.issuers[index]
                .verify(token, &self.clock)
                .map(|(claims, _)| (claims, index));
        };
        let lookup = tokens.lookup(token, |index| {
            self.issuers[index].current_keys_id(&self.clock)
        })?;
        if let Lookup::Hit(claims, times, index) = lookup {
            // What time changes is checked again on every hit.
            return match times.check(&self.issuers[index].policy, self.clock.now()) {
                Ok(()) => Ok((claims, index)),
                Err(e) => {
                    tokens.remove(token);
                    Err(e)
                }
            };
        }
        let text = text(token)?;
        let index = self.issuer_of(text)?;
        let (claims, keys) = self.issuers[index].verify(text, &self.clock)?;
        tokens.insert(token, &claims, index, keys.id());
        Ok((claims, index))
    }

    /// The token cache's counters (all zero when it is off).
    pub fn token_cache_stats(&self) -> TokenCacheStats {
        self.tokens
            .as_ref()
            .map(TokenCache::stats)
            .unwrap_or_default()
    }

    /// Verify the token in an `Authorization` header value (`None` when the header is
    /// absent): [`verify_request`](Self::verify_request) without a `DPoP` proof (so a `DPoP`
    /// scheme is refused for want of one).
    pub fn verify_authorization(&self, header: Option<&str>) -> Result<Claims> {
        self.verify_request(&Request {
            authorization: header,
            ..Request::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_rules() {
        for ok in [
            None,
            Some("JWT"),
            Some("jwt"),
            Some("at+jwt"),
            Some("application/at+jwt"),
            Some("at+JWT"),
        ] {
            assert!(check_typ(ok, false).is_ok(), "{ok:?}");
        }
        for bad in ["id_token+jwt", "JOSE+JSON", "", "JWS"] {
            assert!(check_typ(Some(bad), false).is_err(), "{bad}");
        }
        assert!(check_typ(None, true).is_err());
        assert!(check_typ(Some("JWT"), true).is_err());
        assert!(check_typ(Some("at+jwt"), true).is_ok());
        assert!(check_typ(Some("Application/AT+JWT"), true).is_ok());
    }

    #[test]
    fn authorization_header_forms() {
        assert_eq!(bearer_token(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(
            bearer_token(None).unwrap_err().status(),
            Status::TokenMissing
        );
        assert_eq!(
            bearer_token(Some("  ")).unwrap_err().status(),
            Status::TokenMissing
        );
        assert_eq!(bearer_token(Some("\tBearer\tabc")), Ok("abc"));
        // Another line joined to another scheme's: malformed, whichever comes first.
        for joined in [
            "Basic dXNl, Bearer a.b.c",
            "Token x,DPoP a.b.c",
            "Basic a, Basic b",
        ] {
            assert_eq!(
                bearer_token(Some(joined)).unwrap_err().status(),
                Status::AuthorizationHeaderMalformed,
                "{joined}"
            );
        }
        // A scheme it does not take (the seed's and RFC 6750's 401), whatever follows it.
        for other in [
            "Basic abc",
            "Token abc",
            "Digest a=b, c=d",
            "Digest username=\"Mufasa\", realm=\"http auth\", nonce=\"x y\"",
            "abc",
            "DPoP a.b.c",
        ] {
            assert_eq!(
                bearer_token(Some(other)).unwrap_err().status(),
                Status::AuthorizationSchemeUnsupported,
                "{other}"
            );
        }
        for bad in [
            "Bearer",
            "Bearer a b",
            // an empty line joined to a full one, either way round
            ", Bearer a.b.c",
            "Bearer a.b.c, ",
            "Bearer a.b.c,",
            ",Bearer a.b.c",
            "Bearer,Bearer a.b.c",
            // two Authorization lines, joined as HTTP combines them
            "Bearer a.b.c, Bearer d.e.f",
            "Bearer a.b.c,Bearer a.b.c",
            // a folded line, an injected line, other controls, non-ASCII
            "Bearer\r\n a.b.c",
            "Bearer a.b.c\r\nX-Admin: 1",
            "Bearer\na.b.c",
            "Bearer a.b\0.c",
            "Bearer a.b.c\x7f",
            "Bearer a.b.c\u{ff}",
            "Bearer a.b.\u{e9}",
            "Bearer\x0ba.b.c",
        ] {
            assert_eq!(
                bearer_token(Some(bad)).unwrap_err().status(),
                Status::AuthorizationHeaderMalformed,
                "{bad}"
            );
        }
    }
}
