//! What an HTTP host answers for a refusal: the status, the RFC 6750 challenge (or
//! `Retry-After`) and the quickstart's JSON body. Hosts written in Rust (the Envoy module,
//! `jwtguard serve`) take it from here; the nginx module and the C and Python hosts build the
//! same bytes from the same status texts, and the host tests compare them.

use crate::claims::Claims;
use crate::dpop::{DpopMode, DpopPolicy};
use crate::error::{Result, Status};
use crate::verify::{Scheme, Verifier};

/// A refusal, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// 400, 401, 403 or 503 (500 for a status no client caused).
    pub status: u16,
    /// Lower-case names: `content-type`, and `www-authenticate` or `retry-after`.
    pub headers: Vec<(String, String)>,
    /// `{"code":...,"description":...}` and a newline.
    pub body: String,
}

/// Backslash-escape `"` and `\` (a quoted-string, and a JSON string of ASCII text).
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `WWW-Authenticate` value for a refusal with `status` (`realm` and, for
/// `insufficient_scope`, the scopes the route requires), or `None` when the answer carries
/// no challenge (503, 500).
pub fn challenge(realm: &str, scopes: &[String], status: Status) -> Option<String> {
    if !matches!(status.http_status(), 400 | 401 | 403) {
        return None;
    }
    let mut challenge = format!("Bearer realm=\"{}\"", quoted(realm));
    push_error(&mut challenge, scopes, status);
    Some(challenge)
}

/// `, error=..., error_description=...[, scope=...]` for a refusal with an error code.
fn push_error(challenge: &mut String, scopes: &[String], status: Status) {
    let error = status.rfc6750_error();
    if !error.is_empty() {
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{}\"",
            quoted(status.description())
        ));
    }
    if status == Status::InsufficientScope && !scopes.is_empty() {
        challenge.push_str(&format!(", scope=\"{}\"", quoted(&scopes.join(" "))));
    }
}

/// The scheme an `Authorization` value names, if it is one jwtguard knows.
pub fn scheme_of(authorization: Option<&str>) -> Option<Scheme> {
    let value = authorization?.trim_start_matches([' ', '\t']);
    let scheme = value.split([' ', '\t']).next().unwrap_or("");
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(Scheme::Bearer)
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some(Scheme::Dpop)
    } else {
        None
    }
}

/// Whether a refusal is about DPoP itself (the proof, or the token's binding), rather than
/// about the token.
fn about_dpop(status: Status) -> bool {
    matches!(status as u32, 600..=615)
        || matches!(status, Status::DpopTokenNotBound | Status::DpopRequired)
}

/// The `WWW-Authenticate` value under a DPoP policy (RFC 9449 section 7.1), for a request whose
/// `Authorization` named `scheme`: DPoP off, the Bearer challenge alone ([`challenge`]);
/// allowed, `Bearer realm=..., DPoP realm=..., algs="..."`; required, the DPoP challenge
/// alone. The error goes on the challenge of the scheme the refusal is about: the proof and
/// the binding are DPoP's (`invalid_dpop_proof`); a token presented with `DPoP` is DPoP's
/// too, except a bound token sent as a bearer token, which is the Bearer request's error.
pub fn challenge_for(
    realm: &str,
    scopes: &[String],
    status: Status,
    dpop: &DpopPolicy,
    scheme: Option<Scheme>,
) -> Option<String> {
    if dpop.mode == DpopMode::Off {
        return challenge(realm, scopes, status);
    }
    if !matches!(status.http_status(), 400 | 401 | 403) {
        return None;
    }
    let on_dpop = dpop.mode == DpopMode::Required
        || about_dpop(status)
        || (scheme == Some(Scheme::Dpop) && status != Status::DpopBoundTokenAsBearer);
    let mut value = String::new();
    if dpop.mode == DpopMode::Allowed {
        value = format!("Bearer realm=\"{}\"", quoted(realm));
        if !on_dpop {
            push_error(&mut value, scopes, status);
        }
        value.push_str(", ");
    }
    value.push_str(&format!(
        "DPoP realm=\"{}\", algs=\"{}\"",
        quoted(realm),
        dpop.algs()
    ));
    if on_dpop {
        push_error(&mut value, scopes, status);
    }
    Some(value)
}

/// The reply for a refusal: the status, `WWW-Authenticate` (RFC 6750) or `Retry-After: 5`,
/// and the quickstart's JSON body.
pub fn refusal(realm: &str, scopes: &[String], status: Status) -> Reply {
    reply(status, challenge(realm, scopes, status))
}

/// The reply for a refusal under a DPoP policy, for a request whose `Authorization` named
/// `scheme` (see [`challenge_for`]).
pub fn refusal_for(
    realm: &str,
    scopes: &[String],
    status: Status,
    dpop: &DpopPolicy,
    scheme: Option<Scheme>,
) -> Reply {
    reply(status, challenge_for(realm, scopes, status, dpop, scheme))
}

fn reply(status: Status, challenge: Option<String>) -> Reply {
    let http = status.http_status();
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if http == 503 {
        headers.push(("retry-after".into(), "5".into()));
    } else if let Some(challenge) = challenge {
        headers.push(("www-authenticate".into(), challenge));
    }
    Reply {
        status: if matches!(http, 400 | 401 | 403 | 503) {
            http
        } else {
            500
        },
        headers,
        body: format!(
            "{{\"code\":\"{}\",\"description\":\"{}\"}}\n",
            quoted(status.code()),
            quoted(status.description())
        ),
    }
}

/// What a host does with a verification on a route that requires `scopes`.
#[derive(Debug)]
pub enum Judgement {
    /// Let the request through.
    Allow(Claims),
    /// Refuse it, for this reason.
    Refuse(Status),
    /// Keys for this token are being fetched: ask again shortly (event-loop hosts wait on a
    /// timer instead of refusing a token whose keys are on their way).
    Wait,
}

/// Verify (`verify`, a verification by `verifier`) and judge the result for a route
/// requiring every one of `scopes`. `may_wait`: whether `Wait` is still allowed (a host bounds
/// how long it waits). A refusal for want of keys is `Wait` when keys may come shortly: a
/// fetch is running, or one ended while `verify` ran (its keys arrived after `verify` looked:
/// without this, a token whose key a just-finished fetch brought would be refused).
pub fn judge(
    verifier: &Verifier,
    verify: impl FnOnce() -> Result<Claims>,
    scopes: &[String],
    may_wait: bool,
) -> Judgement {
    let epoch = may_wait.then(|| verifier.fetch_epoch());
    let status = match verify() {
        Ok(claims) => match scopes.iter().find(|s| !claims.has_scope(s)) {
            None => return Judgement::Allow(claims),
            Some(_) => Status::InsufficientScope,
        },
        Err(e) => e.status(),
    };
    if let Some(epoch) = epoch
        && matches!(status, Status::KeysUnavailable | Status::KeyNotFound)
        && (verifier.fetch_in_progress() || verifier.fetch_epoch() != epoch)
    {
        return Judgement::Wait;
    }
    Judgement::Refuse(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_matches_the_other_hosts() {
        let reply = refusal("api", &["read:messages".into()], Status::InsufficientScope);
        assert_eq!(reply.status, 403);
        assert_eq!(
            reply.body,
            "{\"code\":\"Unauthorized\",\"description\":\"You don't have access to this resource\"}\n"
        );
        assert!(reply.headers.contains(&(
            "www-authenticate".into(),
            "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"You don't have access to this resource\", scope=\"read:messages\"".into()
        )));
        let missing = refusal("api", &[], Status::TokenMissing);
        assert!(
            missing
                .headers
                .contains(&("www-authenticate".into(), "Bearer realm=\"api\"".into()))
        );
        let unavailable = refusal("api", &[], Status::KeysUnavailable);
        assert_eq!(unavailable.status, 503);
        assert!(
            unavailable
                .headers
                .contains(&("retry-after".into(), "5".into()))
        );
        assert_eq!(challenge("a\"b", &[], Status::KeysUnavailable), None);
        assert_eq!(
            challenge("a\"b", &[], Status::TokenMissing).unwrap(),
            "Bearer realm=\"a\\\"b\""
        );
    }
}
