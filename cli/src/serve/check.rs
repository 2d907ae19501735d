//! One forward-auth check: which path the proxy asks about, which route rule applies, and the
//! verdict in the same terms as every other jwtguard host.

use super::config::{Route, Rule, ServeConfig};
use jwtguard::answer::{self, Judgement, Reply};
use jwtguard::verify::Scheme;
use jwtguard::{Claims, Request, Status};

/// Where the original request's path and method come from, in order: the nginx
/// `auth_request` convention, then Traefik's and Caddy's, then the check request itself
/// (Envoy's `ext_authz` HTTP service forwards the original method and path).
pub const URI_HEADERS: [&str; 2] = ["x-original-uri", "x-forwarded-uri"];
pub const METHOD_HEADERS: [&str; 2] = ["x-original-method", "x-forwarded-method"];
/// Sent by a proxy's error page (nginx `error_page` after `auth_request`, which keeps only the
/// status of a refusal) to fetch the refusal's whole answer: its value is the status the proxy
/// is answering (`400` when nginx refused the request itself; after an `auth_request` refusal
/// nginx says `000`). Such a request is never allowed: when the token passes now, the answer
/// is the malformed-header 400 for a 400 (two `Authorization` lines), the replayed-proof 401
/// for a DPoP call (the proof's `jti` is not looked at again, so a replay is what passes now)
/// and 503 (try again) otherwise.
pub const REFUSAL_HEADER: &str = "x-jwtguard-refusal";

/// Why a check request itself is unusable (answered 400, never a verdict on a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// The original URI is not an origin-form or absolute path.
    NotAPath,
    /// A `%` not followed by two hex digits, or one that decodes to NUL.
    BadEscape,
    /// Bytes whose meaning depends on the upstream: an encoded `/` or `\` (`%2F`, `%5C`), a
    /// backslash, an escape left after decoding (`%252e`: decoded twice by some), a `.` or
    /// `..` segment with a `;` parameter (`/..;/`, resolved by some servlet containers).
    Ambivalent,
    /// `..` above the root.
    AboveRoot,
    /// The same original-URI or original-method header twice.
    Ambiguous,
    /// The original method is not an HTTP method token.
    BadMethod,
}

impl BadRequest {
    pub fn describe(self) -> &'static str {
        match self {
            BadRequest::NotAPath => "the original URI is not a path",
            BadRequest::BadEscape => "the original URI has a bad percent escape",
            BadRequest::Ambivalent => {
                "the original URI holds an encoded slash, a backslash, a double escape or a dot segment with parameters"
            }
            BadRequest::AboveRoot => "the original URI climbs above the root",
            BadRequest::Ambiguous => "the original URI or method header appears more than once",
            BadRequest::BadMethod => "the original method is not a method",
        }
    }
}

/// The original method, checked to be an HTTP method token (every method is a check: the
/// route rules do not depend on it; DPoP proofs will).
pub fn method(value: &[u8]) -> Result<String, BadRequest> {
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if value.is_empty() || value.len() > 32 || !value.iter().all(token) {
        return Err(BadRequest::BadMethod);
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

/// The path as the proxy routes it: the query and fragment cut, percent escapes decoded,
/// `.` and `..` segments resolved and repeated slashes merged (what nginx does to `$uri`),
/// so that `/api/public/../private` or `/api/%70ublic` is judged as the path it reaches.
/// What proxies and upstreams read differently is refused instead of guessed: an encoded
/// slash or backslash (nginx decodes `%2F`, Envoy routes it undecoded), a backslash, an
/// escape that survives decoding, a dot segment with a `;` parameter.
pub fn normalize(target: &[u8]) -> Result<Vec<u8>, BadRequest> {
    let mut target = target;
    for scheme in [&b"http://"[..], b"https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            // The authority ends at the first `/`, `?` or `#`; without a `/` the path is `/`.
            target = match rest.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')) {
                Some(i) if rest[i] == b'/' => &rest[i..],
                _ => b"/",
            };
            break;
        }
    }
    let end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    let path = &target[..end];
    if path.first() != Some(&b'/') {
        return Err(BadRequest::NotAPath);
    }
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let (Some(hi), Some(lo)) = (
                path.get(i + 1).and_then(|&c| hex(c)),
                path.get(i + 2).and_then(|&c| hex(c)),
            ) else {
                return Err(BadRequest::BadEscape);
            };
            let byte = (hi * 16 + lo) as u8;
            if byte == 0 {
                return Err(BadRequest::BadEscape);
            }
            if byte == b'/' || byte == b'\\' {
                return Err(BadRequest::Ambivalent);
            }
            decoded.push(byte);
            i += 3;
        } else {
            if b == b'\\' {
                return Err(BadRequest::Ambivalent);
            }
            decoded.push(b);
            i += 1;
        }
    }
    let hex = |c: u8| c.is_ascii_hexdigit();
    if decoded
        .windows(3)
        .any(|w| w[0] == b'%' && hex(w[1]) && hex(w[2]))
    {
        return Err(BadRequest::Ambivalent);
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing = false;
    for segment in decoded.split(|&b| b == b'/').skip(1) {
        trailing = false;
        let name = segment.split(|&b| b == b';').next().unwrap_or_default();
        if name.len() < segment.len() && (name == b"." || name == b"..") {
            return Err(BadRequest::Ambivalent);
        }
        match segment {
            b"" => trailing = true,
            b"." => trailing = true,
            b".." => {
                if segments.pop().is_none() {
                    return Err(BadRequest::AboveRoot);
                }
                trailing = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(decoded.len());
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if out.is_empty() || trailing {
        out.push(b'/');
    }
    Ok(out)
}

/// Whether `prefix` covers `path`: the same path, or a path below it (`/api/public` covers
/// `/api/public/x`, never `/api/publicity`; a prefix ending in `/` covers what it starts).
fn covers(prefix: &[u8], path: &[u8]) -> bool {
    path.starts_with(prefix)
        && (path.len() == prefix.len() || prefix.ends_with(b"/") || path[prefix.len()] == b'/')
}

fn matching<'a>(routes: &'a [Route], path: &[u8], fold: bool) -> Option<&'a Rule> {
    routes
        .iter()
        .find(|r| {
            if fold {
                covers(r.prefix.to_ascii_lowercase().as_bytes(), path)
            } else {
                covers(r.prefix.as_bytes(), path)
            }
        })
        .map(|r| &r.rule)
}

/// The rule for a normalised path: the longest prefix covering it (`routes` are sorted so),
/// or a valid token with no scope when none does. Some proxies route without regard to case
/// (Caddy's `path` matcher): the path is matched as it is and case-folded, and the stricter
/// answer wins — public only when both are public, every scope either requires.
pub fn rule_for(routes: &[Route], path: &[u8]) -> Rule {
    let default = Rule::Token(Vec::new());
    let exact = matching(routes, path, false).unwrap_or(&default);
    let folded_path = path.to_ascii_lowercase();
    let folded = matching(routes, &folded_path, true).unwrap_or(&default);
    if let (Rule::Public, Rule::Public) = (exact, folded) {
        return Rule::Public;
    }
    let mut scopes: Vec<String> = Vec::new();
    for rule in [exact, folded] {
        if let Rule::Token(list) = rule {
            for scope in list {
                if !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
            }
        }
    }
    Rule::Token(scopes)
}

/// A check's verdict.
pub enum Verdict {
    /// 200 with these headers (every configured claim header, empty when the route is public
    /// or the claim is absent, so that a proxy that copies them overwrites what a client sent).
    Allow(Vec<(String, Vec<u8>)>, Reason),
    /// Refused: the status says why.
    Refuse(Status, Reply),
    /// Keys are being fetched: ask again shortly.
    Wait,
}

/// Why a request was let through (for the metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Public,
    Token,
}

/// Decide for a request with this rule and these `Authorization` lines (joined as HTTP joins
/// repeated fields; `None` when absent; `Err` when not text). `may_wait`: whether answering
/// `Wait` is still allowed.
pub fn decide(
    config: &ServeConfig,
    rule: &Rule,
    authorization: Result<Option<&str>, ()>,
    dpop: &Dpop<'_>,
    may_wait: bool,
) -> Verdict {
    let scopes = match rule {
        Rule::Public => {
            let empty = config
                .claim_headers
                .iter()
                .map(|(_, h)| (h.clone(), Vec::new()))
                .collect();
            return Verdict::Allow(empty, Reason::Public);
        }
        Rule::Token(scopes) => scopes,
    };
    let scheme = authorization.ok().and_then(answer::scheme_of);
    let verify = || match (authorization, dpop.proofs) {
        (Ok(value), Ok(proofs)) => {
            let request = Request {
                authorization: value,
                dpop: proofs,
                method: Some(dpop.method),
                url: Some(dpop.url),
            };
            if dpop.again {
                config.verifier.verify_request_again(&request)
            } else {
                config.verifier.verify_request(&request)
            }
        }
        (Err(()), _) => Err(Status::AuthorizationHeaderMalformed.into()),
        (_, Err(())) => Err(Status::DpopProofMalformed.into()),
    };
    match answer::judge(&config.verifier, verify, scopes, may_wait) {
        Judgement::Allow(claims) => Verdict::Allow(claim_headers(config, &claims), Reason::Token),
        Judgement::Refuse(status) => refuse(config, scopes, status, scheme),
        Judgement::Wait => Verdict::Wait,
    }
}

/// What a DPoP proof is checked against: the original request's `DPoP` lines (joined as HTTP
/// joins repeated fields; `Err` when not text), its method and the URL the client addressed.
pub struct Dpop<'a> {
    /// The `DPoP` lines.
    pub proofs: Result<Option<&'a str>, ()>,
    /// The original method.
    pub method: &'a str,
    /// The original URL: `X-Forwarded-Proto`, `X-Forwarded-Host` (else `Host`) and the
    /// original URI.
    pub url: &'a str,
    /// The request was judged before (a refusal page): the proof's `jti` is neither looked up
    /// nor recorded, so the first judgement's use of it does not read as a replay.
    pub again: bool,
}

/// The refusal for `status`, for a request whose `Authorization` named `scheme`.
pub fn refuse(
    config: &ServeConfig,
    scopes: &[String],
    status: Status,
    scheme: Option<Scheme>,
) -> Verdict {
    Verdict::Refuse(
        status,
        answer::refusal_for(
            &config.realm,
            scopes,
            status,
            config.verifier.dpop(),
            scheme,
        ),
    )
}

/// The rule's scopes (none for a public route).
pub fn scopes(rule: &Rule) -> &[String] {
    match rule {
        Rule::Public => &[],
        Rule::Token(scopes) => scopes,
    }
}

/// Every configured claim header, with the claim as header-safe text (control characters
/// escaped), empty when the token lacks the claim.
fn claim_headers(config: &ServeConfig, claims: &Claims) -> Vec<(String, Vec<u8>)> {
    config
        .claim_headers
        .iter()
        .map(|(claim, header)| {
            let text = claims.get_header_text(claim).unwrap_or_default();
            (header.clone(), text.into_bytes())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_judged_as_the_proxy_routes_them() {
        let n = |p: &str| normalize(p.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        for (raw, want) in [
            ("/api/private", "/api/private"),
            ("/api/public/../private", "/api/private"),
            ("/api/public/%2e%2e/private", "/api/private"),
            ("/api/%70ublic", "/api/public"),
            ("/api//public", "/api/public"),
            ("//api/./public", "/api/public"),
            ("/api/public?x=../../private", "/api/public"),
            ("/api/public#frag", "/api/public"),
            ("/api/", "/api/"),
            ("/api/x/..", "/api/"),
            ("/", "/"),
            (
                "http://host.example/api/public/../private?q",
                "/api/private",
            ),
            ("HTTPS://host.example", "/"),
            ("http://h?/api/public", "/"),
            ("http://h#/api/public", "/"),
            ("/api/a;b", "/api/a;b"),
        ] {
            assert_eq!(n(raw).as_deref(), Ok(want), "{raw}");
        }
        assert_eq!(n("api/public"), Err(BadRequest::NotAPath));
        assert_eq!(n(""), Err(BadRequest::NotAPath));
        assert_eq!(n("*"), Err(BadRequest::NotAPath));
        assert_eq!(n("/api/%zz"), Err(BadRequest::BadEscape));
        assert_eq!(n("/api/%2"), Err(BadRequest::BadEscape));
        assert_eq!(n("/api/%00x"), Err(BadRequest::BadEscape));
        assert_eq!(n("/../etc"), Err(BadRequest::AboveRoot));
        assert_eq!(n("/api/%2e%2e/%2e%2e/x"), Err(BadRequest::AboveRoot));
        for ambivalent in [
            "/api/public%2F..%2Fprivate",
            "/api/public%2f..%2fprivate",
            "/app/x%2F..%2F..%2Fapi%2Fpublic",
            "/api/public%5C..%5Cprivate",
            "/api/public\\..\\private",
            "/api/public/%252e%252e/private",
            "/api/public/..;/private",
            "/api/public/.;x/private",
        ] {
            assert_eq!(n(ambivalent), Err(BadRequest::Ambivalent), "{ambivalent}");
        }
    }

    #[test]
    fn the_longest_prefix_wins_by_whole_segments_and_case_never_loosens() {
        let route = |prefix: &str, rule: Rule| Route {
            prefix: prefix.into(),
            rule,
        };
        let mut routes = vec![
            route("/api", Rule::Public),
            route("/api/private", Rule::Token(vec!["a".into()])),
            route("/api/private/open", Rule::Public),
            route("/files/", Rule::Public),
            route("/Admin", Rule::Token(vec!["admin".into()])),
        ];
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        let token = |scopes: &[&str]| Rule::Token(scopes.iter().map(|s| s.to_string()).collect());
        assert_eq!(rule_for(&routes, b"/api/x"), Rule::Public);
        assert_eq!(rule_for(&routes, b"/api"), Rule::Public);
        assert_eq!(rule_for(&routes, b"/api/private/x"), token(&["a"]));
        assert_eq!(rule_for(&routes, b"/api/private"), token(&["a"]));
        // Not a sibling that merely starts alike.
        assert_eq!(rule_for(&routes, b"/api/privateer"), Rule::Public);
        assert_eq!(rule_for(&routes, b"/apis"), token(&[]));
        assert_eq!(rule_for(&routes, b"/api/private/open/1"), Rule::Public);
        assert_eq!(rule_for(&routes, b"/files/a"), Rule::Public);
        assert_eq!(rule_for(&routes, b"/other"), token(&[]));
        // A proxy that routes without case: the stricter reading wins.
        assert_eq!(rule_for(&routes, b"/API/PRIVATE"), token(&["a"]));
        assert_eq!(rule_for(&routes, b"/API/x"), token(&[]));
        assert_eq!(rule_for(&routes, b"/admin/x"), token(&["admin"]));
        assert_eq!(rule_for(&routes, b"/Admin/x"), token(&["admin"]));
    }
}
