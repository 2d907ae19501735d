//! Verified claims: typed access, the claim checks of the pipeline, and scope logic.

use crate::error::{Error, Result, Status};
use crate::policy::{Policy, RFC9068_REQUIRED_CLAIMS};
use serde_json::{Map, Value};

/// The claims of a verified token, with the payload JSON exactly as the issuer sent it.
/// Immutable and shared: a clone is a reference count (the token cache hands out clones).
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    inner: std::sync::Arc<Parsed>,
}

#[derive(Debug, PartialEq)]
struct Parsed {
    json: String,
    map: Map<String, Value>,
}

impl Claims {
    pub(crate) fn new(json: String, map: Map<String, Value>) -> Self {
        Claims {
            inner: std::sync::Arc::new(Parsed { json, map }),
        }
    }

    /// Claims from JSON text, unverified: for the fuzz targets only (built with
    /// `--cfg fuzzing`, which cargo-fuzz sets), never in a normal build.
    #[cfg(fuzzing)]
    pub fn from_unverified_json(json: &str) -> Option<Self> {
        let map = crate::token::parse_object(json.as_bytes()).ok()?;
        Some(Claims::new(json.to_string(), map))
    }

    /// The payload JSON as sent (decoded from base64url, not re-serialised).
    pub fn json(&self) -> &str {
        &self.inner.json
    }

    /// All claims.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.inner.map
    }

    /// One claim.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.inner.map.get(name)
    }

    /// One claim as a string.
    pub fn get_str(&self, name: &str) -> Result<&str> {
        match self.inner.map.get(name) {
            None => Err(Status::ClaimNotFound.into()),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(Status::ClaimWrongType.into()),
        }
    }

    /// One claim as a number.
    pub fn get_f64(&self, name: &str) -> Result<f64> {
        match self.inner.map.get(name) {
            None => Err(Status::ClaimNotFound.into()),
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| Status::ClaimWrongType.into()),
            Some(_) => Err(Status::ClaimWrongType.into()),
        }
    }

    /// One claim as text for logs and headers: a string as is, a number or boolean as JSON, an
    /// array as its elements' text joined by single spaces, an object (or a nested array) as
    /// JSON, `null` as the empty string.
    pub fn get_text(&self, name: &str) -> Result<String> {
        fn text(value: &Value) -> String {
            match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            }
        }
        match self.inner.map.get(name) {
            None => Err(Status::ClaimNotFound.into()),
            Some(Value::Array(items)) => Ok(items.iter().map(text).collect::<Vec<_>>().join(" ")),
            Some(value) => Ok(text(value)),
        }
    }

    /// [`Claims::get_text`] made safe for an HTTP header value: control characters
    /// (U+0000 to U+001F, U+007F), the backslash and a space at either end become JSON string
    /// escapes, so the text holds no CR, LF or NUL, HTTP cannot trim it, and distinct claims stay
    /// distinct (`"admin "` is `admin\u0020`, never `admin`). An array's elements are joined
    /// by single spaces with every space inside an element escaped, so `["Domain Admins"]` and
    /// `["Domain", "Admins"]` never read alike.
    pub fn get_header_text(&self, name: &str) -> Result<String> {
        match self.inner.map.get(name) {
            Some(Value::Array(items)) => Ok(items
                .iter()
                .map(|item| match item {
                    Value::String(s) => escape(s, true),
                    Value::Null => String::new(),
                    other => escape(&other.to_string(), true),
                })
                .collect::<Vec<_>>()
                .join(" ")),
            _ => Ok(header_safe(&self.get_text(name)?)),
        }
    }

    /// Whether the token grants `scope` (see [`has_scope`]).
    pub fn has_scope(&self, scope: &str) -> bool {
        has_scope(&self.inner.map, scope)
    }
}

/// `text` with control characters, backslashes and a leading or trailing space written as JSON
/// string escapes (HTTP trims a field value's spaces: `" admin"` would read as `admin`).
pub fn header_safe(text: &str) -> String {
    escape(text, false)
}

/// [`header_safe`], every space escaped when `all_spaces` (an array element: spaces join them).
fn escape(text: &str, all_spaces: bool) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        match c {
            ' ' if all_spaces || i == 0 || i == last => out.push_str("\\u0020"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether claims grant `scope`: an exact, case-sensitive match of one space-separated entry of
/// `scope` (RFC 8693 / 9068, a string), of `scp` (a string or an array of strings, as Okta and
/// Entra ID send it), or of one entry of Auth0's RBAC `permissions` (an array of strings).
/// Claims of any other type grant nothing; an empty `scope` is never granted.
pub fn has_scope(claims: &Map<String, Value>, scope: &str) -> bool {
    if scope.is_empty() || scope.contains(' ') {
        return false;
    }
    let in_string = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.split(' ').any(|entry| entry == scope))
    };
    let in_array = |v: Option<&Value>| {
        v.and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|entry| entry.as_str() == Some(scope)))
    };
    in_string(claims.get("scope"))
        || in_string(claims.get("scp"))
        || in_array(claims.get("scp"))
        || in_array(claims.get("permissions"))
}

/// Latest NumericDate accepted: 9999-12-31T23:59:59Z.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// A NumericDate claim: `None` when absent, an error when present but not a number in range.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && (0.0..=MAX_NUMERIC_DATE).contains(&v) => Ok(Some(v)),
            _ => Err(Error::with_detail(
                Status::TimeClaimInvalid,
                format!("{name} is out of range"),
            )),
        },
        Some(_) => Err(Error::with_detail(
            Status::TimeClaimInvalid,
            format!("{name} is not a number"),
        )),
    }
}

/// The time claims of a token (`exp` required), read once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Times {
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
}

impl Times {
    /// Read `exp`, `nbf` and `iat`.
    pub fn of(claims: &Map<String, Value>) -> Result<Times> {
        Ok(Times {
            exp: numeric_date(claims, "exp")?
                .ok_or_else(|| Error::with_detail(Status::TimeClaimInvalid, "exp is missing"))?,
            nbf: numeric_date(claims, "nbf")?,
            iat: numeric_date(claims, "iat")?,
        })
    }

    /// Whether they hold at `now` (Unix seconds) with `policy`'s leeway.
    pub fn check(&self, policy: &Policy, now: f64) -> Result<()> {
        let leeway = policy.leeway_secs as f64;
        let now = now.floor();
        if self.exp < now - leeway {
            return Err(Status::TokenExpired.into());
        }
        if self.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(Status::TokenNotYetValid.into());
        }
        if self.iat.is_some_and(|iat| iat > now + leeway) {
            return Err(Status::TokenIssuedInFuture.into());
        }
        Ok(())
    }
}

/// Check the registered claims against the policy at time `now` (Unix seconds).
pub fn check(claims: &Map<String, Value>, policy: &Policy, now: f64) -> Result<()> {
    Times::of(claims)?.check(policy, now)?;

    match claims.get("iss") {
        Some(Value::String(iss)) if policy.issuers.iter().any(|i| i == iss) => {}
        _ => return Err(Status::IssuerInvalid.into()),
    }

    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => policy.audiences.contains(aud),
        Some(Value::Array(list)) => {
            list.iter().all(Value::is_string)
                && list.iter().any(|a| {
                    a.as_str()
                        .is_some_and(|a| policy.audiences.iter().any(|p| p == a))
                })
        }
        _ => false,
    };
    if !aud_ok {
        return Err(Status::AudienceInvalid.into());
    }

    let strict_claims = if policy.strict {
        &RFC9068_REQUIRED_CLAIMS[..]
    } else {
        &[][..]
    };
    for name in policy
        .required_claims
        .iter()
        .map(String::as_str)
        .chain(strict_claims.iter().copied())
    {
        let ok = match (name, claims.get(name)) {
            (_, None | Some(Value::Null)) => false,
            ("sub" | "client_id" | "jti" | "iss" | "scope", Some(v)) => {
                v.as_str().is_some_and(|s| !s.is_empty())
            }
            _ => true,
        };
        if !ok {
            return Err(Error::with_detail(
                Status::RequiredClaimMissing,
                format!("{name} is missing or invalid"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Review 3, item 15: HTTP trims a field value's spaces, so a claim's leading or trailing
    /// space is escaped (one principal never reads as another); inner spaces stay.
    #[test]
    fn header_text_survives_trimming() {
        assert_eq!(header_safe("admin "), "admin\\u0020");
        assert_eq!(header_safe(" lead"), "\\u0020lead");
        assert_eq!(header_safe("  two  "), "\\u0020 two \\u0020");
        assert_eq!(header_safe(" "), "\\u0020");
        assert_eq!(header_safe("a b"), "a b");
        assert_eq!(header_safe(""), "");
        assert_eq!(header_safe("\tx\r\n\\"), "\\tx\\r\\n\\\\");
        assert_eq!(header_safe("\u{7f}\u{1}é"), "\\u007f\\u0001é");
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// Review 3 (outside look): an array's elements are joined by spaces, so a space inside
    /// one is escaped: `["Domain Admins"]` never reads as `["Domain", "Admins"]`.
    #[test]
    fn array_claims_stay_distinct_as_header_text() {
        let text = |v: Value| {
            let m = map(json!({"roles": v}));
            Claims::new(Value::Object(m.clone()).to_string(), m)
                .get_header_text("roles")
                .unwrap()
        };
        assert_eq!(text(json!(["Domain Admins"])), "Domain\\u0020Admins");
        assert_eq!(text(json!(["Domain", "Admins"])), "Domain Admins");
        assert_eq!(text(json!(["user", " admin"])), "user \\u0020admin");
        assert_eq!(text(json!([" a", "b "])), "\\u0020a b\\u0020");
        assert_eq!(
            text(json!(["a\nb", 1, null, {"k": "v w"}])),
            "a\\nb 1  {\"k\":\"v\\u0020w\"}"
        );
        assert_eq!(text(json!("a b ")), "a b\\u0020");
    }

    #[test]
    fn scope_sources_and_exact_matching() {
        let want = "read:messages";
        for yes in [
            json!({"scope": "openid read:messages"}),
            json!({"scope": "read:messages"}),
            json!({"scp": "read:messages write:x"}),
            json!({"scp": ["a", "read:messages"]}),
            json!({"permissions": ["read:messages"]}),
        ] {
            assert!(has_scope(&map(yes.clone()), want), "{yes}");
        }
        for no in [
            json!({"scope": "read:messages2"}),
            json!({"scope": "xread:messages"}),
            json!({"scope": "read:message"}),
            json!({"scope": "READ:MESSAGES"}),
            json!({"scope": ""}),
            json!({"scope": ["read:messages"]}),
            json!({"scope": 1}),
            json!({"scp": {"read:messages": true}}),
            json!({"permissions": "read:messages"}),
            json!({"permissions": [["read:messages"]]}),
            json!({}),
        ] {
            assert!(!has_scope(&map(no.clone()), want), "{no}");
        }
        assert!(!has_scope(&map(json!({"scope": "a  b"})), ""));
        assert!(!has_scope(&map(json!({"scope": "a b"})), "a b"));
    }
}
