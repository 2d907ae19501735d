//! The filter's configuration: Envoy hands the `filter_config` Struct over as JSON text (a
//! `StringValue` holding JSON is accepted too). Everything is checked here, at config load:
//! unknown keys and bad values are refused with a message Envoy prints.

use jwtguard::{Algorithm, CacheOptions, Config, Keys, Policy, Verifier};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Where the token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>` (the default).
    Authorization,
    /// A request header holding the bare token (lowercase name).
    Header(String),
    /// A cookie holding the bare token.
    Cookie(String),
}

/// The listener-level filter configuration.
pub struct FilterConfig {
    pub verifier: Verifier,
    pub require_scope: Vec<String>,
    pub realm: String,
    /// (claim, lowercase header name): set on the upstream request, any incoming header of
    /// that name removed first.
    pub forward_claims: Vec<(String, String)>,
    pub token: TokenSource,
    /// The scheme of the URL a DPoP proof is checked against, when the operator set it
    /// (`dpop_scheme`: Envoy behind a proxy that terminates TLS); otherwise the downstream
    /// connection's (https over TLS, else http). Never the client's `:scheme`, which an
    /// absolute-form request line or an HTTP/2 client sets to what it likes.
    pub dpop_scheme: Option<&'static str>,
}

/// A route's `DynamicModuleFilterPerRoute` configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteConfig {
    /// Replaces the listener's `require_scope` on this route.
    pub require_scope: Vec<String>,
}

/// The JSON object a config buffer holds: a Struct's JSON, or a JSON string whose text is
/// that JSON (a `StringValue`).
fn object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the config is not JSON: {e}"))?;
    let value = match value {
        Value::String(text) => serde_json::from_str(&text)
            .map_err(|e| format!("the config string is not JSON: {e}"))?,
        other => other,
    };
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err("the config must be an object".into()),
    }
}

fn strings(key: &str, value: &Value) -> Result<Vec<String>, String> {
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key}: every item must be a string"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(format!("{key}: must be a string or a list of strings")),
    };
    if list.iter().any(String::is_empty) {
        return Err(format!("{key}: an empty string"));
    }
    Ok(list)
}

fn string(key: &str, value: &Value) -> Result<String, String> {
    match value.as_str() {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(format!("{key}: must be a non-empty string")),
    }
}

fn seconds(key: &str, value: &Value) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("{key}: must be a whole number of seconds, 0 or more"))
}

/// An RFC 6749 scope token: visible ASCII except `"` and `\`.
fn check_scopes(key: &str, scopes: &[String]) -> Result<(), String> {
    for scope in scopes {
        if !scope
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            return Err(format!(
                "{key}: {scope:?} is not one scope (no spaces, quotes or backslashes)"
            ));
        }
    }
    Ok(())
}

/// An RFC 9110 token (header names, cookie names).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An HTTP field name (RFC 9110 token), lowercased; never a pseudo-header.
fn header_name(key: &str, name: &str) -> Result<String, String> {
    if !is_token(name) {
        return Err(format!("{key}: {name:?} is not a header name"));
    }
    Ok(name.to_ascii_lowercase())
}

/// Headers a claim must never replace: the message's framing and routing, hop-by-hop fields.
const NOT_FORWARDABLE: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// What one issuer is: these keys at the top level, or in each entry of `issuers`.
const ISSUER_KEYS: [&str; 6] = [
    "issuer",
    "audience",
    "jwks_uri",
    "algorithms",
    "leeway",
    "strict",
];

/// One issuer's policy and keys, from the `ISSUER_KEYS` of the top level or of an entry.
fn issuer_entry(map: &Map<String, Value>) -> Result<(Policy, Keys), String> {
    let mut issuers = None;
    let mut audiences = None;
    let mut keys = Keys::Discover;
    let mut algorithms = vec![Algorithm::RS256];
    let mut leeway = None;
    let mut strict = false;
    for (key, value) in map {
        match key.as_str() {
            "issuer" => issuers = Some(strings(key, value)?),
            "audience" => audiences = Some(strings(key, value)?),
            "jwks_uri" => keys = Keys::Url(string(key, value)?),
            "algorithms" => {
                algorithms = strings(key, value)?
                    .iter()
                    .map(|a| {
                        a.parse::<Algorithm>()
                            .map_err(|_| format!("algorithms: {a:?} is not supported"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "leeway" => leeway = Some(seconds(key, value)?),
            "strict" => {
                strict = value
                    .as_bool()
                    .ok_or_else(|| format!("{key}: must be true or false"))?
            }
            other => return Err(format!("unknown key {other:?}")),
        }
    }
    let issuers = issuers.ok_or("issuer: required")?;
    let audiences = audiences.ok_or("audience: required")?;
    let mut policy = Policy::empty()
        .with_algorithms(&algorithms)
        .with_strict(strict);
    for issuer in issuers {
        policy = policy.with_issuer(issuer);
    }
    for audience in audiences {
        policy = policy.with_audience(audience);
    }
    if let Some(secs) = leeway {
        policy = policy.with_leeway(secs);
    }
    Ok((policy, keys))
}

/// Parse and check a listener-level config, and build its verifier (no network yet). One
/// issuer is given by the top-level `issuer`, `audience`, `jwks_uri`, `algorithms`, `leeway`
/// and `strict`; several by `issuers: [{...}, ...]`, each entry holding those keys (a token's
/// `iss` picks the entry; the cache options are shared).
pub fn filter_config(bytes: &[u8]) -> Result<FilterConfig, String> {
    let map = object(bytes)?;
    let mut own = Map::new();
    let mut entries: Option<Vec<Map<String, Value>>> = None;
    let mut realm = "api".to_string();
    let mut require_scope = Vec::new();
    let mut forward_claims = Vec::new();
    let mut token = TokenSource::Authorization;
    let mut token_cache = jwtguard::verify::DEFAULT_TOKEN_CACHE;
    let mut dpop = jwtguard::DpopPolicy::default();
    let mut dpop_scheme = None;
    let mut cache = CacheOptions {
        non_blocking: true,
        ..CacheOptions::default()
    };
    for (key, value) in &map {
        if ISSUER_KEYS.contains(&key.as_str()) {
            own.insert(key.clone(), value.clone());
            continue;
        }
        match key.as_str() {
            "issuers" => {
                let Value::Array(items) = value else {
                    return Err(format!("{key}: must be a list of issuer objects"));
                };
                if items.is_empty() {
                    return Err(format!("{key}: an empty list"));
                }
                entries = Some(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| match item {
                            Value::Object(entry) => Ok(entry.clone()),
                            _ => Err(format!("{key}[{i}]: must be an object")),
                        })
                        .collect::<Result<_, _>>()?,
                );
            }
            "realm" => {
                realm = string(key, value)?;
                if !realm.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                    return Err(format!("{key}: visible ASCII and spaces only"));
                }
            }
            "require_scope" => {
                require_scope = strings(key, value)?;
                check_scopes(key, &require_scope)?;
            }
            "forward_claims" => {
                let Value::Object(pairs) = value else {
                    return Err(format!("{key}: must be an object {{claim: header}}"));
                };
                for (claim, header) in pairs {
                    let header = header
                        .as_str()
                        .ok_or_else(|| format!("{key}.{claim}: must be a header name"))?;
                    let header = header_name(key, header)?;
                    if NOT_FORWARDABLE.contains(&header.as_str()) {
                        return Err(format!("{key}.{claim}: {header:?} cannot carry a claim"));
                    }
                    forward_claims.push((claim.clone(), header));
                }
            }
            "token_header" => token = TokenSource::Header(header_name(key, &string(key, value)?)?),
            "token_cookie" => {
                let name = string(key, value)?;
                if !is_token(&name) {
                    return Err(format!("{key}: {name:?} is not a cookie name"));
                }
                token = TokenSource::Cookie(name)
            }
            "cache_ttl" => cache.ttl = Duration::from_secs(seconds(key, value)?),
            "refetch_cooldown" => {
                cache.refetch_cooldown = Duration::from_secs(seconds(key, value)?)
            }
            "token_cache" => {
                token_cache = value
                    .as_u64()
                    .ok_or_else(|| format!("{key}: must be a number of entries, 0 or more"))?
                    as usize
            }
            "dpop" => {
                dpop.mode = string(key, value)?
                    .parse()
                    .map_err(|_| format!("{key}: off, allowed or required"))?
            }
            "dpop_algorithms" => {
                dpop.algorithms = strings(key, value)?
                    .iter()
                    .map(|name| {
                        name.parse()
                            .map_err(|_| format!("{key}: {name:?} is not an algorithm"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "dpop_window" => dpop.window_secs = seconds(key, value)?,
            "dpop_replay_cache" => {
                dpop.replay_cache = value
                    .as_u64()
                    .ok_or_else(|| format!("{key}: must be a number of proofs"))?
                    as usize
            }
            "dpop_origins" => {
                dpop.origins = strings(key, value)?;
                if let Some(bad) = dpop
                    .origins
                    .iter()
                    .find(|o| jwtguard::dpop::origin_of(o).is_none())
                {
                    return Err(format!(
                        "{key}: {bad:?} is not an origin (http(s)://host[:port], no path)"
                    ));
                }
            }
            "dpop_scheme" => {
                dpop_scheme = Some(match string(key, value)?.as_str() {
                    "http" => "http",
                    "https" => "https",
                    _ => return Err(format!("{key}: http or https")),
                })
            }
            "max_stale" => cache.max_stale = Duration::from_secs(seconds(key, value)?),
            "snapshot" => cache.snapshot = Some(PathBuf::from(string(key, value)?)),
            "ca_file" => cache.fetch.ca_file = Some(PathBuf::from(string(key, value)?)),
            other => return Err(format!("unknown key {other:?}")),
        }
    }
    if map.contains_key("token_header") && map.contains_key("token_cookie") {
        return Err("token_header and token_cookie: choose one".into());
    }
    let entries = match entries {
        None => vec![(String::new(), own)],
        Some(_) if !own.is_empty() => {
            let given: Vec<&str> = own.keys().map(String::as_str).collect();
            return Err(format!(
                "issuers: give {} inside each entry, not beside issuers",
                given.join(", ")
            ));
        }
        Some(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, entry)| (format!("issuers[{i}]: "), entry))
            .collect(),
    };
    let mut issuers = Vec::new();
    for (what, entry) in &entries {
        let (policy, keys) = issuer_entry(entry).map_err(|e| format!("{what}{e}"))?;
        issuers.push(jwtguard::verify::IssuerConfig {
            policy,
            keys,
            cache: cache.clone(),
        });
    }
    let mut rest = issuers.into_iter();
    let first = rest.next().ok_or("issuer: required")?;
    let mut config = Config::new(first.policy, first.keys);
    config.cache = first.cache;
    for more in rest {
        config = config.with_issuer(more);
    }
    config.token_cache = token_cache;
    config.dpop = dpop;
    let verifier = Verifier::new(config).map_err(|e| e.to_string())?;
    Ok(FilterConfig {
        verifier,
        require_scope,
        realm,
        forward_claims,
        token,
        dpop_scheme,
    })
}

/// Parse and check a route's config.
pub fn route_config(bytes: &[u8]) -> Result<RouteConfig, String> {
    let mut route = RouteConfig::default();
    for (key, value) in &object(bytes)? {
        match key.as_str() {
            "require_scope" => {
                route.require_scope = strings(key, value)?;
                check_scopes(key, &route.require_scope)?;
            }
            other => return Err(format!("per-route config: unknown key {other:?}")),
        }
    }
    Ok(route)
}
