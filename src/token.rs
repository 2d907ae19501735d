//! Splitting a compact JWS, strict base64url, and JSON parsing that rejects duplicate members.

use crate::error::{Error, Result, Status};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The three segments of a compact JWS, still encoded, plus the signing input.
#[derive(Debug)]
pub struct Compact<'a> {
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    /// The encoded header segment.
    pub header: &'a str,
    /// The encoded payload segment.
    pub payload: &'a str,
    /// The encoded signature segment.
    pub signature: &'a str,
}

/// Split a compact JWS after checking its size. Exactly three segments; header and signature
/// must not be empty. The payload may be empty at this level (JWTs reject that later).
pub fn split(token: &str, max_bytes: usize) -> Result<Compact<'_>> {
    if token.len() > max_bytes {
        return Err(Error::with_detail(
            Status::TokenTooLarge,
            format!("{} bytes, limit {}", token.len(), max_bytes),
        ));
    }
    if token.is_empty() {
        return Err(Error::with_detail(Status::TokenMalformed, "empty token"));
    }
    let mut parts = token.splitn(4, '.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::with_detail(
            Status::TokenMalformed,
            "not three segments",
        ));
    };
    if header.is_empty() {
        return Err(Error::with_detail(Status::TokenMalformed, "empty header"));
    }
    if signature.is_empty() {
        return Err(Error::with_detail(
            Status::TokenMalformed,
            "empty signature",
        ));
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(Compact {
        signing_input,
        header,
        payload,
        signature,
    })
}

/// Decode one base64url segment: no padding, no `+` `/` or whitespace, canonical trailing bits.
pub fn b64_decode(segment: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|e| Error::with_detail(Status::TokenMalformed, format!("base64url: {e}")))
}

/// Encode bytes as unpadded base64url.
pub fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JSON value parsed with duplicate member names rejected at every depth.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<StrictValue, E> {
        serde_json::Number::from_f64(v)
            .map(|n| StrictValue(Value::Number(n)))
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }

    fn visit_unit<E>(self) -> std::result::Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_none<E>(self) -> std::result::Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<StrictValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(StrictValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<StrictValue, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate member {key:?}")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(StrictValue(Value::Object(out)))
    }
}

/// Parse UTF-8 JSON that must be an object, rejecting duplicate member names at every depth.
pub fn parse_object(bytes: &[u8]) -> std::result::Result<Map<String, Value>, String> {
    let StrictValue(v) = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err("not a JSON object".to_string()),
    }
}

/// The members of a JOSE header that jwtguard reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// `alg`, as written.
    pub alg: String,
    /// `kid`, when present.
    pub kid: Option<String>,
    /// `typ`, when present.
    pub typ: Option<String>,
    /// Whether `crit` is present (in any form).
    pub has_crit: bool,
}

/// Decode and parse a header segment. `alg` must be a string, `kid` and `typ` strings when
/// present. `jku`, `x5u`, `jwk` and `x5c` are never read.
pub fn parse_header(segment: &str) -> Result<Header> {
    let bytes = b64_decode(segment)?;
    let map = parse_object(&bytes).map_err(|e| Error::with_detail(Status::HeaderInvalid, e))?;
    let alg = match map.get("alg") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(Error::with_detail(
                Status::AlgorithmNotAllowed,
                "alg is not a string",
            ));
        }
        None => {
            return Err(Error::with_detail(
                Status::AlgorithmNotAllowed,
                "alg is missing",
            ));
        }
    };
    let optional_string = |name: &str| match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::with_detail(
            Status::HeaderInvalid,
            format!("{name} is not a string"),
        )),
    };
    Ok(Header {
        kid: optional_string("kid")?,
        typ: optional_string("typ")?,
        has_crit: map.contains_key("crit"),
        alg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_counts_segments() {
        assert!(split("a.b.c", 100).is_ok());
        assert!(split("a..c", 100).is_ok());
        for bad in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "a.b.c.d.e",
            ".b.c",
            "a.b.",
            "..",
            "....",
        ] {
            assert_eq!(
                split(bad, 100).unwrap_err().status(),
                Status::TokenMalformed,
                "{bad:?}"
            );
        }
        assert_eq!(
            split("a.b.c", 4).unwrap_err().status(),
            Status::TokenTooLarge
        );
        let c = split("hh.pp.ss", 100).unwrap();
        assert_eq!(c.signing_input, "hh.pp");
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(b64_decode("Zm8").unwrap(), b"fo");
        for bad in ["Zm8=", "Zm9v=", "Z m9v", "Zm9v\n", "+/8", "Zm9", "Zm-"] {
            assert!(b64_decode(bad).is_err(), "{bad:?}");
        }
        // Non-canonical trailing bits: "Zm9" decodes "fo" only with nonzero padding bits.
        assert!(b64_decode("Zm9").is_err());
        assert_eq!(b64_decode("Zg").unwrap(), b"f");
        assert!(b64_decode("Zm").is_err());
    }

    #[test]
    fn duplicates_are_rejected_at_any_depth() {
        assert!(parse_object(br#"{"alg":"RS256","alg":"none"}"#).is_err());
        assert!(parse_object(br#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(parse_object(br#"{"a":[{"b":1,"b":2}]}"#).is_err());
        assert!(parse_object(br#"{"a":{"b":1},"b":{"b":2}}"#).is_ok());
    }

    #[test]
    fn only_objects_are_accepted() {
        for bad in [
            &b"[]"[..],
            b"\"x\"",
            b"1",
            b"null",
            b"",
            b"{",
            b"\xff\xfe",
            b"{\"a\":\"\x00\"}",
        ] {
            assert!(parse_object(bad).is_err(), "{bad:?}");
        }
        assert!(parse_object(b"{}").is_ok());
    }

    #[test]
    fn header_member_types_are_checked() {
        let h = |json: &str| parse_header(&b64_encode(json.as_bytes()));
        assert_eq!(
            h(r#"{"alg":"RS256","kid":"k"}"#).unwrap().kid.as_deref(),
            Some("k")
        );
        assert_eq!(
            h(r#"{"alg":1}"#).unwrap_err().status(),
            Status::AlgorithmNotAllowed
        );
        assert_eq!(
            h(r#"{"kid":"k"}"#).unwrap_err().status(),
            Status::AlgorithmNotAllowed
        );
        assert_eq!(
            h(r#"{"alg":"RS256","kid":7}"#).unwrap_err().status(),
            Status::HeaderInvalid
        );
        assert_eq!(
            h(r#"{"alg":"RS256","kid":null}"#).unwrap_err().status(),
            Status::HeaderInvalid
        );
        assert_eq!(
            h(r#"{"alg":"RS256","typ":[]}"#).unwrap_err().status(),
            Status::HeaderInvalid
        );
        assert!(h(r#"{"alg":"RS256","crit":[]}"#).unwrap().has_crit);
    }
}
