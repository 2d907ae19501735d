//! Differential testing (issue 11): valid tokens mutated many ways (bit flips, segment swaps,
//! re-encodings, header and claim edits, re-signed or not), each judged by jwtguard and by an
//! independent verifier (the `jsonwebtoken` crate's `decode`, same keys and checks). jwtguard
//! must never accept a token the other refuses. Where jwtguard refuses what the other accepts
//! it is stricter on purpose, and every such case must be one of the reasons listed in
//! `STRICTER` (printed with counts: `cargo test --test differential -- --nocapture`).

mod common;

use common::*;
use jsonwebtoken::{Algorithm as JwtAlg, DecodingKey, Validation};
use jwtguard::{Algorithm, Clock, Config, Keys, Policy, Status, Verifier};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Where jwtguard refuses on purpose what `jsonwebtoken` accepts.
const STRICTER: &[(Status, &str)] = &[
    (
        Status::TokenMalformed,
        "base64url must be canonical and unpadded; segments must be exactly three",
    ),
    (
        Status::HeaderInvalid,
        "a header member of the wrong type (kid, typ not strings) or duplicate names",
    ),
    (
        Status::PayloadInvalid,
        "duplicate claim names (an attacker's choice of which one counts)",
    ),
    (
        Status::TypeNotAllowed,
        "typ must be at+jwt or JWT (RFC 9068 / RFC 8725 explicit typing)",
    ),
    (
        Status::CriticalHeaderUnsupported,
        "crit names extensions jwtguard does not implement (RFC 7515 4.1.11)",
    ),
    (
        Status::TimeClaimInvalid,
        "time claims must be numbers in range (a string or 1e300 exp is refused)",
    ),
    (
        Status::TokenNotYetValid,
        "nbf checked; jsonwebtoken skips nbf by default",
    ),
    (
        Status::TokenIssuedInFuture,
        "iat beyond the leeway is refused; jsonwebtoken ignores iat",
    ),
    (
        Status::KeyNotFound,
        "a token without kid is accepted only when one key fits its alg",
    ),
];

struct Independent {
    keys: HashMap<String, (DecodingKey, Vec<JwtAlg>)>,
}

impl Independent {
    fn new(signers: &[Signer]) -> Independent {
        let mut keys: HashMap<String, (DecodingKey, Vec<JwtAlg>)> = HashMap::new();
        for s in signers {
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(s.jwk(false)).unwrap();
            let entry = keys
                .entry(s.kid.clone())
                .or_insert_with(|| (DecodingKey::from_jwk(&jwk).unwrap(), vec![]));
            entry.1.push(s.alg);
        }
        Independent { keys }
    }

    fn accepts(&self, token: &str) -> bool {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return false;
        };
        // By kid; without one, the one key whose family serves the alg (if exactly one).
        let found = match &header.kid {
            Some(kid) => self.keys.get(kid),
            None => {
                let mut fit = self
                    .keys
                    .values()
                    .filter(|(_, algs)| algs.contains(&header.alg));
                match (fit.next(), fit.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            }
        };
        let Some((key, algs)) = found else {
            return false;
        };
        if !algs.contains(&header.alg) {
            return false;
        }
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[AUDIENCE]);
        v.leeway = 60;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        jsonwebtoken::decode::<Value>(token, key, &v).is_ok()
    }
}

/// xorshift64*: deterministic, so every failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn b64(text: &str) -> String {
    jwtguard::token::b64_encode(text.as_bytes())
}

fn mutate(rng: &mut Rng, signer: &Signer, token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let header = json!({"alg": signer.alg_name(), "kid": signer.kid, "typ": "at+jwt"});
    match rng.below(12) {
        0 => {
            // one bit anywhere
            let mut bytes = token.as_bytes().to_vec();
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(7);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        1 => format!("{}.{}.{}", parts[1], parts[0], parts[2]),
        2 => format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        3 => {
            // standard base64 alphabet and padding for the payload
            let raw = jwtguard::token::b64_decode(parts[1]).unwrap();
            let std = base64_std(&raw);
            format!("{}.{}.{}", parts[0], std, parts[2])
        }
        4 => {
            let alg = ["RS256", "PS256", "ES256", "EdDSA", "HS256", "none", "RS512"][rng.below(7)];
            let mut h = header.clone();
            h["alg"] = json!(alg);
            signer.sign_segments(&b64(&h.to_string()), parts[1])
        }
        5 => {
            let mut h = header.clone();
            match rng.below(5) {
                0 => {
                    h.as_object_mut().unwrap().remove("kid");
                }
                1 => h["crit"] = json!(["exp"]),
                2 => {
                    h["typ"] =
                        json!(["JWT", "application/jwt", "at+JWT", "jwt", "dpop+jwt"][rng.below(5)])
                }
                3 => h["kid"] = json!(7),
                _ => {
                    h.as_object_mut().unwrap().remove("typ");
                }
            }
            signer.sign_segments(&b64(&h.to_string()), parts[1])
        }
        6 => {
            // a claim edited, re-signed: the claim checks alone decide
            let mut c = good_claims();
            match rng.below(9) {
                0 => c["iss"] = json!("https://tenant.example"),
                1 => c["aud"] = json!([AUDIENCE, "other"]),
                2 => c["aud"] = json!("https://api.example/"),
                3 => c["exp"] = json!(NOW - 120),
                4 => c["exp"] = json!((NOW + 3600).to_string()),
                5 => c["nbf"] = json!(NOW + 600),
                6 => c["iat"] = json!(NOW + 600),
                7 => {
                    c.as_object_mut().unwrap().remove("exp");
                }
                _ => c["exp"] = json!(1e300),
            }
            signer.sign_raw(&header.to_string(), &c.to_string())
        }
        7 => {
            // duplicate claim names, re-signed
            let payload = format!(
                r#"{{"iss":"https://evil.example/","iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"iat":{}}}"#,
                NOW + 3600,
                NOW - 10
            );
            signer.sign_raw(&header.to_string(), &payload)
        }
        8 => format!("{token}{}", ["A", ".", "=", " ", ".x"][rng.below(5)]),
        9 => token[..rng.below(token.len())].to_string(),
        10 => format!("{}.{}.{}", parts[0], parts[1], ""),
        _ => {
            // another signer's signature over the same input
            let input = format!("{}.{}", parts[0], parts[1]);
            let other = Signer::rs256_b();
            let sig =
                jsonwebtoken::crypto::sign(input.as_bytes(), &other.key, JwtAlg::RS256).unwrap();
            format!("{input}.{sig}")
        }
    }
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn jwtguard_never_accepts_what_an_independent_verifier_refuses() {
    let signers = [
        Signer::rs256(),
        Signer::ps256(),
        Signer::es256(),
        Signer::eddsa(),
    ];
    let jwks_doc = jwks(&[
        Signer::rs256().jwk(false),
        Signer::es256().jwk(true),
        Signer::eddsa().jwk(true),
    ]);
    let mut config = Config::new(
        Policy::new(ISSUER, AUDIENCE).with_algorithms(&[
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ]),
        Keys::Json(jwks_doc),
    );
    // jsonwebtoken reads the system clock: so does jwtguard here (NOW is in the near future,
    // and the tokens' exp lies beyond both).
    config.clock = Clock::System;
    config.token_cache = 0;
    let ours = Verifier::new(config).unwrap();
    let theirs = Independent::new(&signers);

    let far = json!({"exp": NOW + 10 * 365 * 86400, "iat": 1_700_000_000});
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut stricter: BTreeMap<String, usize> = BTreeMap::new();
    let mut agreed = (0usize, 0usize);
    for round in 0..3000 {
        let signer = &signers[round % signers.len()];
        let base = signer.token(&claims_with(far.clone()));
        assert!(
            theirs.accepts(&base) && ours.verify(&base).is_ok(),
            "the base token verifies"
        );
        let token = mutate(&mut rng, signer, &base);
        let mine = ours
            .verify(&token)
            .map_or_else(|e| e.status(), |_| Status::Ok);
        let other = theirs.accepts(&token);
        match (mine == Status::Ok, other) {
            (true, false) => panic!("jwtguard accepted what jsonwebtoken refuses: {token}"),
            (false, true) => {
                assert!(
                    STRICTER.iter().any(|(s, _)| *s == mine),
                    "jwtguard refused with {mine:?}, which is not a listed stricter rule: {token}"
                );
                *stricter.entry(format!("{mine:?}")).or_default() += 1;
            }
            (true, true) => agreed.0 += 1,
            (false, false) => agreed.1 += 1,
        }
    }
    println!(
        "both accept {}, both refuse {}, jwtguard stricter: {stricter:?}",
        agreed.0, agreed.1
    );
    // The mutations reach both verdicts (the test can fail both ways).
    assert!(agreed.0 > 50 && agreed.1 > 1000, "{agreed:?}");
}
