//! What the filter answers for a request: the core verifies, this module only turns the
//! verdict into Envoy's terms (forwarded headers, or a local reply with the same status,
//! challenge and JSON body as every other jwtguard host).

use crate::config::FilterConfig;
use jwtguard::answer::{Judgement, judge, scheme_of};
use jwtguard::verify::Scheme;
use jwtguard::{Claims, Request, Status};

/// The outcome for one request.
pub enum Verdict {
    /// Let it through, with these (header, value) pairs set on the upstream request (the
    /// claims too, for a route chosen again once they are set).
    Allow(Claims, Vec<(String, String)>),
    /// Answer locally (the status says why).
    Refuse(Status, Reply),
    /// Keys for this token are being fetched: wait and decide again.
    Wait,
}

pub use jwtguard::answer::Reply;

/// The token this request carries, from the configured source: `values` are the request's
/// values of that header (every line, in order), `cookies` its Cookie lines.
pub enum Presented<'a> {
    /// The request's credentials: its `Authorization` lines, joined with ", " as HTTP
    /// combines repeated fields (two of them are refused as malformed, as on every host),
    /// its `DPoP` lines joined the same way, its method and the URL the client addressed.
    Authorization(Request<'a>),
    /// A bare token (a configured header or cookie), absent when missing or empty.
    Bare(Option<&'a str>),
}

/// The value of cookie `name` in a request's Cookie lines.
pub fn cookie<'a>(lines: &[&'a str], name: &str) -> Option<&'a str> {
    lines
        .iter()
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Join a header's lines (`None` when the request has none).
pub fn joined(lines: &[&str]) -> Option<String> {
    (!lines.is_empty()).then(|| lines.join(", "))
}

/// The URL a DPoP proof's `htu` must name: `scheme` (the connection's or the operator's),
/// the request's `:authority` and `:path` (whose query the check ignores).
pub fn request_url(scheme: &str, authority: Option<&str>, path: Option<&str>) -> String {
    format!(
        "{scheme}://{}{}",
        authority.unwrap_or(""),
        path.unwrap_or("/")
    )
}

/// The authority of the URL a DPoP proof's `htu` must name, or `None` for no URL (no proof
/// matches it). Envoy routes by the listener, never by the port a client writes in
/// `:authority`: two listeners on two ports serving one name, each with its own verifier and
/// replay cache, would each take a proof once. So, without pinned origins (`pinned` false),
/// the port is the one the connection arrived on (`local_port`), and the client's authority
/// must name that same port, no port (or an empty one) naming the scheme's default (80 for
/// http, 443 for https); an authority naming another port, or a connection without a port,
/// gives no URL. With pinned origins, the authority as sent (a public port mapped to another
/// one here): the core checks the whole origin against the pins.
pub fn proof_authority(
    scheme: &str,
    authority: Option<&str>,
    local_port: Option<u16>,
    pinned: bool,
) -> Option<String> {
    let authority = authority?;
    if pinned {
        return Some(authority.to_string());
    }
    let local = local_port?;
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (inside, after) = v6.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (&authority[..inside.len() + 2], port)
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let named = match port {
        None | Some("") => {
            if scheme == "https" {
                443
            } else {
                80
            }
        }
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u32>().ok()?
        }
        Some(_) => return None,
    };
    (named == u32::from(local)).then(|| format!("{host}:{local}"))
}

/// Verify and decide. `may_wait`: whether waiting for keys is still allowed.
pub fn decide(
    config: &FilterConfig,
    scopes: &[String],
    presented: Presented<'_>,
    may_wait: bool,
) -> Verdict {
    let scheme = match &presented {
        Presented::Authorization(request) => scheme_of(request.authorization),
        Presented::Bare(_) => None,
    };
    let verify = || match presented {
        Presented::Authorization(request) => config.verifier.verify_request(&request),
        Presented::Bare(None) => Err(Status::TokenMissing.into()),
        Presented::Bare(Some(token)) => config.verifier.verify(token),
    };
    match judge(&config.verifier, verify, scopes, may_wait) {
        Judgement::Allow(claims) => {
            let headers = forwarded(config, &claims);
            Verdict::Allow(claims, headers)
        }
        Judgement::Refuse(status) => {
            Verdict::Refuse(status, refusal(config, scopes, status, scheme))
        }
        Judgement::Wait => Verdict::Wait,
    }
}

/// The claims named in `forward_claims`, as header-safe text (control characters escaped).
fn forwarded(config: &FilterConfig, claims: &Claims) -> Vec<(String, String)> {
    config
        .forward_claims
        .iter()
        .filter_map(|(claim, header)| {
            claims
                .get_header_text(claim)
                .ok()
                .map(|text| (header.clone(), text))
        })
        .collect()
}

/// The reply for a refusal (the core's, as on every host), with this filter's realm and its
/// verifier's DPoP policy, for a request whose `Authorization` named `scheme`.
pub fn refusal(
    config: &FilterConfig,
    scopes: &[String],
    status: Status,
    scheme: Option<Scheme>,
) -> Reply {
    jwtguard::answer::refusal_for(
        &config.realm,
        scopes,
        status,
        config.verifier.dpop(),
        scheme,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_joined_lines() {
        assert_eq!(
            cookie(&["a=1; access_token=t.u.v", "b=2"], "access_token"),
            Some("t.u.v")
        );
        assert_eq!(cookie(&["access_token="], "access_token"), None);
        assert_eq!(cookie(&[], "x"), None);
        assert_eq!(
            joined(&["Bearer a", "Bearer b"]).as_deref(),
            Some("Bearer a, Bearer b")
        );
        assert_eq!(joined(&[]), None);
    }

    #[test]
    fn bad_configs_are_refused_with_a_message() {
        use crate::config::filter_config;
        for (text, message) in [
            (r#"{"audience":"a"}"#, "issuer: required"),
            (
                r#"{"issuer":"https://i/","audience":"a","nope":1}"#,
                "unknown key \"nope\"",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","leeway":-1}"#,
                "leeway",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","require_scope":["a b"]}"#,
                "not one scope",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","algorithms":["none"]}"#,
                "algorithms",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","forward_claims":{"sub":"x y"}}"#,
                "not a header name",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","leeway":999999}"#,
                "leeway",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","realm":"a\r\nx: 1"}"#,
                "realm",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","forward_claims":{"sub":"Host"}}"#,
                "cannot carry a claim",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","token_cookie":"a;b"}"#,
                "not a cookie name",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","token_cache":99999999999}"#,
                "token_cache",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","dpop_origins":["https://api.example/v1"]}"#,
                "dpop_origins: \"https://api.example/v1\" is not an origin",
            ),
            (
                r#"{"issuer":"https://i/","audience":"a","dpop_scheme":"ftp"}"#,
                "dpop_scheme: http or https",
            ),
            ("[1]", "must be an object"),
            ("not json", "not JSON"),
        ] {
            let error = filter_config(text.as_bytes())
                .err()
                .unwrap_or_else(|| panic!("{text} accepted"));
            assert!(error.contains(message), "{text}: {error}");
        }
        let pinned = filter_config(
            br#"{"issuer":"https://i/","audience":"a","dpop_origins":["https://API.example:443"],"dpop_scheme":"https"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pinned.dpop_scheme, Some("https"));
        assert_eq!(pinned.verifier.dpop().origins, ["https://API.example:443"]);
        assert_eq!(
            request_url("https", Some("api.example"), Some("/x?y")),
            "https://api.example/x?y"
        );
        assert_eq!(request_url("http", None, None), "http:///");
        // A StringValue holding the JSON is accepted too.
        let text = serde_json::to_string(r#"{"issuer":"https://i/","audience":"a"}"#).unwrap();
        assert!(filter_config(text.as_bytes()).is_ok());
    }

    #[test]
    fn the_proof_port_is_the_connections_unless_origins_are_pinned() {
        let at =
            |scheme, authority, local, pinned| proof_authority(scheme, authority, local, pinned);
        assert_eq!(
            at("http", Some("api:8080"), Some(8080), false).as_deref(),
            Some("api:8080")
        );
        assert_eq!(
            at("http", Some("api"), Some(80), false).as_deref(),
            Some("api:80")
        );
        assert_eq!(
            at("http", Some("api:"), Some(80), false).as_deref(),
            Some("api:80")
        );
        assert_eq!(
            at("https", Some("api"), Some(443), false).as_deref(),
            Some("api:443")
        );
        assert_eq!(
            at("http", Some("[::1]:81"), Some(81), false).as_deref(),
            Some("[::1]:81")
        );
        assert_eq!(
            at("http", Some("[::1]"), Some(80), false).as_deref(),
            Some("[::1]:80")
        );
        // Another port than the connection's, none naming the scheme's default: no URL.
        assert_eq!(at("http", Some("api:8081"), Some(8080), false), None);
        assert_eq!(at("http", Some("api"), Some(8080), false), None);
        assert_eq!(at("https", Some("api"), Some(80), false), None);
        assert_eq!(at("http", Some("api:080x"), Some(80), false), None);
        assert_eq!(at("http", Some("api:000080"), Some(80), false), None);
        assert_eq!(at("http", Some("[::1]x"), Some(80), false), None);
        assert_eq!(at("http", Some("api"), None, false), None);
        assert_eq!(at("http", None, Some(80), false), None);
        // Pinned: the authority as sent (the core checks it against the pins).
        assert_eq!(
            at("http", Some("api:8081"), Some(8080), true).as_deref(),
            Some("api:8081")
        );
        assert_eq!(at("http", Some("api"), None, true).as_deref(), Some("api"));
    }
}
