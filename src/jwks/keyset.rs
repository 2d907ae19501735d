//! A JWKS parsed once into verification keys.
//!
//! Every key is checked and parsed when the set is loaded; verification only looks keys up.
//! Keys jwtguard cannot or must not use are skipped with a reason, never fatal to the set.

use crate::error::{Error, Result, Status};
use crate::policy::{Algorithm, KeyFamily};
use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// JWK members are base64url; some issuers pad them, which changes nothing about the key.
const JWK_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One usable public key with its parsed forms, one per algorithm it may verify.
pub struct Key {
    kid: Option<String>,
    family: KeyFamily,
    /// Parsed once, at load, for every algorithm this key is eligible for.
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
    /// The key material, to tell a repeated key from a different key under the same `kid`.
    material: Vec<u8>,
}

impl Key {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key family.
    pub fn family(&self) -> KeyFamily {
        self.family
    }

    /// Whether this key may verify `alg` (family, JWK `alg`).
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.parsed.iter().any(|(a, _)| *a == alg)
    }

    /// Verify `signature` over `message` with `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<()> {
        let (_, key) = self
            .parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .ok_or(Status::KeyAlgorithmMismatch)?;
        key.verify_sig(message, signature)
            .map_err(|_| Error::new(Status::SignatureInvalid))
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field(
                "algorithms",
                &self
                    .parsed
                    .iter()
                    .map(|(a, _)| a.name())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A key the set could not use, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the JWKS `keys` array.
    pub index: usize,
    /// The key's `kid`, if it had a string one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: String,
}

enum Slot {
    One(Arc<Key>),
    /// Several different keys share this `kid`: tokens naming it are rejected.
    Ambiguous,
}

/// What key selection found for a token.
#[derive(Debug)]
pub enum Selection<'a> {
    /// The one key to verify with.
    Key(&'a Key),
    /// No key fits: the caller may refetch the JWKS once.
    NotFound,
}

/// A key set's identity: unique in the process, never reused, never 0.
struct SetId(u64);

impl Default for SetId {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SetId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A parsed JWKS.
#[derive(Default)]
pub struct KeySet {
    id: SetId,
    by_kid: HashMap<String, Slot>,
    all: Vec<Arc<Key>>,
    skipped: Vec<SkippedKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.all)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl KeySet {
    /// Parse a JWKS document: a JSON object with a `keys` array. A document of any other shape
    /// is an error; single keys that cannot be used are skipped.
    pub fn from_json(bytes: &[u8]) -> Result<KeySet> {
        let doc: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::with_detail(Status::JwksInvalid, format!("not JSON: {e}")))?;
        let keys = doc
            .as_object()
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::with_detail(Status::JwksInvalid, "not an object with a \"keys\" array")
            })?;
        let mut set = KeySet::default();
        for (index, raw) in keys.iter().enumerate() {
            let kid = raw.get("kid").and_then(Value::as_str).map(str::to_owned);
            match parse_key(raw) {
                Ok(key) => set.insert(key),
                Err(reason) => set.skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        Ok(set)
    }

    fn insert(&mut self, key: Key) {
        let key = Arc::new(key);
        if let Some(kid) = key.kid.clone() {
            match self.by_kid.get(&kid) {
                None => {
                    self.by_kid.insert(kid, Slot::One(key.clone()));
                }
                Some(Slot::One(existing)) if existing.material == key.material => {
                    // The same key listed twice: harmless, keep the first.
                    return;
                }
                Some(_) => {
                    self.by_kid.insert(kid, Slot::Ambiguous);
                }
            }
        }
        self.all.push(key);
    }

    /// This set's identity (unique in the process and never reused), so that what was
    /// verified with it can be recognised without holding on to it.
    pub fn id(&self) -> u64 {
        self.id.0
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The usable keys.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.all.iter().map(|k| k.as_ref())
    }

    /// Keys that were skipped at load, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Select the key for a token. With a `kid`: the key of that `kid` (ambiguous → error,
    /// wrong family or `alg` → error). Without a `kid`: the one key eligible for `alg`, if
    /// exactly one is.
    pub fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<Selection<'_>> {
        match kid {
            Some(kid) => match self.by_kid.get(kid) {
                None => Ok(Selection::NotFound),
                Some(Slot::Ambiguous) => Err(Error::with_detail(
                    Status::KeyAmbiguous,
                    "several different keys share this kid",
                )),
                Some(Slot::One(key)) if key.supports(alg) => Ok(Selection::Key(key)),
                Some(Slot::One(_)) => Err(Error::with_detail(
                    Status::KeyAlgorithmMismatch,
                    format!("the key cannot verify {alg}"),
                )),
            },
            None => {
                let mut eligible = self.all.iter().filter(|k| k.supports(alg));
                match (eligible.next(), eligible.next()) {
                    (Some(key), None) => Ok(Selection::Key(key)),
                    (None, _) => Ok(Selection::NotFound),
                    (Some(_), Some(_)) => Err(Error::with_detail(
                        Status::KeyAmbiguous,
                        "token has no kid and several keys fit",
                    )),
                }
            }
        }
    }
}

fn b64(field: &str, value: &str) -> std::result::Result<Vec<u8>, String> {
    JWK_B64
        .decode(value)
        .or_else(|_| URL_SAFE_NO_PAD.decode(value))
        .map_err(|e| format!("{field}: bad base64url ({e})"))
}

/// Check one JWK and parse it for every algorithm it may verify.
fn parse_key(raw: &Value) -> std::result::Result<Key, String> {
    parse_key_for(raw, None)
}

/// Check one public JWK (a DPoP proof's `jwk`) and parse it for `alg` only: the same rules as
/// a JWKS member (`use`, `key_ops`, its own `alg`, sizes). Private members are the caller's to
/// refuse first.
pub(crate) fn parse_public_key(raw: &Value, alg: Algorithm) -> std::result::Result<Key, String> {
    parse_key_for(raw, Some(alg))
}

fn parse_key_for(raw: &Value, only: Option<Algorithm>) -> std::result::Result<Key, String> {
    if !raw.is_object() {
        return Err("not a JSON object".into());
    }
    if let Some(kid) = raw.get("kid")
        && !kid.is_string()
    {
        return Err("kid is not a string".into());
    }
    // RFC 9864's fully specified `Ed25519`, which the JWK parser does not know: read apart.
    let mut raw = raw.clone();
    let fully_specified = match raw.get("alg").and_then(Value::as_str) {
        Some("Ed25519") => {
            raw.as_object_mut().map(|o| o.remove("alg"));
            Some(Algorithm::Ed25519)
        }
        _ => None,
    };
    let jwk: Jwk = serde_json::from_value(raw).map_err(|e| format!("not a usable JWK: {e}"))?;
    let common = &jwk.common;
    match &common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(other) => return Err(format!("use is {other:?}, not sig")),
    }
    if let Some(ops) = &common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("key_ops does not contain verify".into());
    }
    let (family, material) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = strip_leading_zeros(b64("n", &rsa.n)?);
            let e = strip_leading_zeros(b64("e", &rsa.e)?);
            check_rsa(&n, &e)?;
            let mut material = b"RSA:".to_vec();
            material.extend_from_slice(&n);
            material.push(b':');
            material.extend_from_slice(&e);
            (KeyFamily::Rsa, (material, n, e))
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let (family, len) = match ec.curve {
                EllipticCurve::P256 => (KeyFamily::EcP256, 32),
                EllipticCurve::P384 => (KeyFamily::EcP384, 48),
                ref other => return Err(format!("EC curve {other:?} is not supported")),
            };
            let x = b64("x", &ec.x)?;
            let y = b64("y", &ec.y)?;
            if x.len() != len || y.len() != len {
                return Err(format!("EC coordinates must be {len} bytes"));
            }
            let mut point = vec![0x04];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (family, (point, Vec::new(), Vec::new()))
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Err(format!("OKP curve {:?} is not supported", okp.curve));
            }
            let x = b64("x", &okp.x)?;
            if x.len() != 32 {
                return Err("Ed25519 x must be 32 bytes".into());
            }
            (KeyFamily::Ed25519, (x, Vec::new(), Vec::new()))
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric (oct) keys are never used".into());
        }
        _ => return Err("unsupported key type".into()),
    };
    let declared = match common.key_algorithm {
        None => fully_specified,
        Some(ka) => Some(declared_algorithm(ka)?),
    };

    let algorithms: Vec<Algorithm> = Algorithm::ALL
        .iter()
        .copied()
        .filter(|a| {
            a.family() == family
                && declared.is_none_or(|d| same_signature(d, *a))
                && only.is_none_or(|o| o == *a)
        })
        .collect();
    if algorithms.is_empty() {
        return Err("its alg does not fit its key type".into());
    }
    let (material, n, e) = material;
    let mut parsed = Vec::with_capacity(algorithms.len());
    for alg in algorithms {
        let key = match family {
            KeyFamily::Rsa => {
                let params = match alg {
                    Algorithm::RS256 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::RS384 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::RS512 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::PS256 => &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256,
                    Algorithm::PS384 => &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA384,
                    _ => &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA512,
                };
                RsaPublicKeyComponents { n: &n, e: &e }.to_parsed_public_key(params)
            }
            _ => ParsedPublicKey::new(alg.verification(), &material),
        }
        .map_err(|e| format!("key rejected: {e}"))?;
        parsed.push((alg, key));
    }
    Ok(Key {
        kid: common.key_id.clone(),
        family,
        parsed,
        material,
    })
}

/// Whether a key declared for `declared` may verify `alg`: the same algorithm, or the two names
/// of EdDSA on Ed25519 (RFC 8037's `EdDSA`, RFC 9864's `Ed25519`).
fn same_signature(declared: Algorithm, alg: Algorithm) -> bool {
    let ed = |a: Algorithm| matches!(a, Algorithm::EdDSA | Algorithm::Ed25519);
    declared == alg || (ed(declared) && ed(alg))
}

fn declared_algorithm(ka: KeyAlgorithm) -> std::result::Result<Algorithm, String> {
    let alg = match ka {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        other => {
            return Err(format!(
                "alg {other:?} is not a supported signature algorithm"
            ));
        }
    };
    Ok(alg)
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}

fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(top) => n.len() * 8 - top.leading_zeros() as usize,
    }
}

fn check_rsa(n: &[u8], e: &[u8]) -> std::result::Result<(), String> {
    let bits = bit_len(n);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(format!(
            "RSA modulus of {bits} bits (accepted: {MIN_RSA_BITS} to {MAX_RSA_BITS})"
        ));
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err("RSA modulus is even".into());
    }
    if e.is_empty() || e.len() > 4 {
        return Err("RSA exponent out of range".into());
    }
    let e_value = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if e_value < 3 || e_value & 1 == 0 {
        return Err(format!("RSA exponent {e_value} is not an odd number >= 3"));
    }
    if roca_fingerprint(n) {
        return Err("RSA modulus has the ROCA (CVE-2017-15361) fingerprint".into());
    }
    Ok(())
}

/// Small primes used by the ROCA fingerprint test.
const ROCA_PRIMES: [u64; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// Keys from the vulnerable generator (CVE-2017-15361) have primes of the form
/// `k * M + (65537^a mod M)`, so their modulus, reduced by each small prime `r`, lies in the
/// subgroup that 65537 generates modulo `r`. A random modulus fails that for some `r`.
fn roca_fingerprint(n: &[u8]) -> bool {
    ROCA_PRIMES.iter().all(|&r| {
        let residue = n
            .iter()
            .fold(0u64, |acc, b| (acc * 256 + u64::from(*b)) % r);
        let generator = 65537 % r;
        let mut x = 1u64;
        for _ in 0..r {
            if x == residue {
                return true;
            }
            x = x * generator % r;
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
    }

    #[test]
    fn shape_errors_fail_the_document() {
        for bad in [
            &b"[]"[..],
            b"{}",
            br#"{"keys":"x"}"#,
            b"garbage",
            br#"{"keys":{}}"#,
        ] {
            assert_eq!(
                KeySet::from_json(bad).unwrap_err().status(),
                Status::JwksInvalid
            );
        }
        assert!(KeySet::from_json(br#"{"keys":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let set = KeySet::from_json(
            br#"{"keys":[
                {"kty":"oct","k":"c2VjcmV0","kid":"a"},
                {"kty":"AKP","alg":"ML-DSA-44","pub":"AAAA","kid":"b"},
                {"kty":"OKP","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","kid":"c"},
                {"kty":"EC","crv":"secp256k1","x":"AA","y":"AA","kid":"d"},
                {"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"e"},
                7, null, "x"
            ]}"#,
        )
        .unwrap();
        assert!(set.is_empty());
        assert_eq!(set.skipped().len(), 8);
    }
}
