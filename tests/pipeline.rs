//! The verification pipeline against the project's security cases (1-30, 32, 36-40),
//! with fixed JWKS documents and a manual clock. Case numbers are in the test names.

mod common;

use common::*;
use jsonwebtoken::{Algorithm as JwtAlg, EncodingKey};
use jwtguard::token::{b64_decode, b64_encode};
use jwtguard::{Algorithm, Clock, Config, Keys, Policy, Status, Verifier};
use serde_json::{Value, json};

fn policy() -> Policy {
    Policy::new(ISSUER, AUDIENCE)
}

fn verifier_with(keys: &[Value], policy: Policy) -> Verifier {
    let mut config = Config::new(policy, Keys::Json(jwks(keys)));
    config.clock = Clock::manual(NOW);
    Verifier::new(config).unwrap()
}

/// A verifier for the RSA key `rsa-a` (no `alg` on the JWK) allowing every algorithm.
fn all_algs() -> Verifier {
    verifier_with(
        &[
            Signer::rs256().jwk(false),
            Signer::es256().jwk(false),
            Signer::es384().jwk(false),
            Signer::eddsa().jwk(false),
        ],
        policy().with_algorithms(&Algorithm::ALL),
    )
}

fn rs256_only() -> Verifier {
    verifier_with(&[Signer::rs256().jwk(true)], policy())
}

fn status(v: &Verifier, token: &str) -> Status {
    match v.verify(token) {
        Ok(_) => Status::Ok,
        Err(e) => e.status(),
    }
}

fn header(alg: &str, kid: &str) -> String {
    json!({"alg": alg, "kid": kid}).to_string()
}

#[test]
fn every_supported_algorithm_verifies() {
    let v = all_algs();
    for (signer, alg) in [
        (Signer::rs256(), JwtAlg::RS256),
        (Signer::rs256(), JwtAlg::RS384),
        (Signer::rs256(), JwtAlg::RS512),
        (Signer::rs256(), JwtAlg::PS256),
        (Signer::rs256(), JwtAlg::PS384),
        (Signer::rs256(), JwtAlg::PS512),
        (Signer::es256(), JwtAlg::ES256),
        (Signer::es384(), JwtAlg::ES384),
        (Signer::eddsa(), JwtAlg::EdDSA),
    ] {
        let signer = Signer { alg, ..signer };
        let claims = v.verify(&signer.token(&good_claims())).unwrap();
        assert_eq!(claims.get_str("sub").unwrap(), "client-1@clients");
        assert!(claims.has_scope("read:messages"));
    }
}

#[test]
fn claims_json_is_the_payload_as_signed() {
    let payload = r#"{"iss":"https://tenant.example/","aud":"https://api.example","exp":1800003600, "n":1.50}"#;
    let token = Signer::rs256().sign_raw(&header("RS256", "rsa-a"), payload);
    let claims = rs256_only().verify(&token).unwrap();
    assert_eq!(claims.json(), payload);
    assert_eq!(claims.get_f64("n").unwrap(), 1.5);
}

#[test]
fn case01_alg_none_is_refused() {
    let v = rs256_only();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = b64_encode(json!({"alg": alg, "kid": "rsa-a"}).to_string().as_bytes());
        let p = b64_encode(good_claims().to_string().as_bytes());
        assert_eq!(status(&v, &format!("{h}.{p}.")), Status::TokenMalformed);
        assert_eq!(
            status(&v, &format!("{h}.{p}.AAAA")),
            Status::AlgorithmNotAllowed
        );
    }
}

#[test]
fn case02_empty_signature_is_refused() {
    let token = Signer::rs256().token(&good_claims());
    let without = &token[..token.rfind('.').unwrap() + 1];
    assert_eq!(status(&rs256_only(), without), Status::TokenMalformed);
}

#[test]
fn case03_hmac_with_the_public_key_as_secret_is_refused() {
    let v = verifier_with(
        &[Signer::rs256().jwk(false)],
        policy().with_algorithms(&Algorithm::ALL),
    );
    let pem = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(fixture("rsa2048-a.pem"))
        .output()
        .unwrap()
        .stdout;
    let jwk_bytes = Signer::rs256().jwk(false).to_string().into_bytes();
    for secret in [pem, jwk_bytes] {
        let hs = Signer {
            alg: JwtAlg::HS256,
            key: EncodingKey::from_secret(&secret),
            kid: "rsa-a".into(),
        };
        assert_eq!(
            status(&v, &hs.token(&good_claims())),
            Status::AlgorithmNotAllowed
        );
    }
}

#[test]
fn case04_alg_must_fit_the_key() {
    // PS256 on a key whose JWK says RS256.
    let v = verifier_with(
        &[Signer::rs256().jwk(true), Signer::es384().jwk(false)],
        policy().with_algorithms(&Algorithm::ALL),
    );
    assert_eq!(
        status(&v, &Signer::ps256().token(&good_claims())),
        Status::KeyAlgorithmMismatch
    );
    // ES256 naming the P-384 key.
    let es256_on_p384 = Signer {
        kid: "ec-384".into(),
        ..Signer::es256()
    };
    assert_eq!(
        status(&v, &es256_on_p384.token(&good_claims())),
        Status::KeyAlgorithmMismatch
    );
    // An RSA algorithm naming an EC key.
    let rs_on_ec = Signer {
        kid: "ec-384".into(),
        ..Signer::rs256()
    };
    assert_eq!(
        status(&v, &rs_on_ec.token(&good_claims())),
        Status::KeyAlgorithmMismatch
    );
}

#[test]
fn case05_alg_missing_wrong_type_unknown_or_not_allowed() {
    let v = rs256_only();
    let s = Signer::rs256();
    let payload = good_claims().to_string();
    for h in [
        json!({"kid": "rsa-a"}),
        json!({"alg": 256, "kid": "rsa-a"}),
        json!({"alg": null, "kid": "rsa-a"}),
        json!({"alg": ["RS256"], "kid": "rsa-a"}),
        json!({"alg": "RS999", "kid": "rsa-a"}),
        json!({"alg": "rs256", "kid": "rsa-a"}),
        json!({"alg": "PS256", "kid": "rsa-a"}),
    ] {
        assert_eq!(
            status(&v, &s.sign_raw(&h.to_string(), &payload)),
            Status::AlgorithmNotAllowed,
            "{h}"
        );
    }
}

#[test]
fn case06_embedded_jwk_is_ignored() {
    let attacker = Signer::rs256_b();
    let v = rs256_only();
    for kid in [Some("rsa-a"), None] {
        let mut h = json!({"alg": "RS256", "jwk": attacker.jwk(true)});
        if let Some(kid) = kid {
            h["kid"] = json!(kid);
        }
        let token = attacker.sign_raw(&h.to_string(), &good_claims().to_string());
        assert_eq!(status(&v, &token), Status::SignatureInvalid);
    }
}

#[test]
fn case07_jku_and_x5u_are_never_fetched() {
    let attacker = Signer {
        kid: "attacker".into(),
        ..Signer::rs256_b()
    };
    let server = JwksServer::start(Reply::json(&jwks(&[attacker.jwk(true)])));
    let v = rs256_only();
    for member in ["jku", "x5u"] {
        let h = json!({"alg": "RS256", "kid": "attacker", member: server.url});
        let token = attacker.sign_raw(&h.to_string(), &good_claims().to_string());
        assert_eq!(status(&v, &token), Status::KeyNotFound);
    }
    assert_eq!(server.count(), 0);
}

#[test]
fn case08_hostile_kids_are_opaque() {
    let v = rs256_only();
    let s = Signer::rs256();
    let payload = good_claims().to_string();
    let long = "k".repeat(10 * 1024);
    for kid in [
        "../../dev/null",
        "' OR '1'='1",
        "rsa-a\u{0}",
        "RSA-A",
        "",
        long.as_str(),
    ] {
        let token = s.sign_raw(&header("RS256", kid), &payload);
        assert_eq!(status(&v, &token), Status::KeyNotFound, "{:.20}", kid);
    }
    for kid in [json!(7), json!(null), json!(["rsa-a"]), json!({"k": 1})] {
        let token = s.sign_raw(&json!({"alg": "RS256", "kid": kid}).to_string(), &payload);
        assert_eq!(status(&v, &token), Status::HeaderInvalid, "{kid}");
    }
}

#[test]
fn case09_crit_is_refused_in_any_form() {
    let v = rs256_only();
    let s = Signer::rs256();
    for crit in [
        json!(["exp"]),
        json!([]),
        json!("b64"),
        json!([1]),
        json!(null),
    ] {
        let h = json!({"alg": "RS256", "kid": "rsa-a", "crit": crit, "exp": 1});
        let token = s.sign_raw(&h.to_string(), &good_claims().to_string());
        assert_eq!(
            status(&v, &token),
            Status::CriticalHeaderUnsupported,
            "{crit}"
        );
    }
}

#[test]
fn case10_typ_rules_and_strict_mode() {
    let s = Signer::rs256();
    let payload = good_claims().to_string();
    let with_typ = |typ: Option<&str>| {
        let mut h = json!({"alg": "RS256", "kid": "rsa-a"});
        if let Some(t) = typ {
            h["typ"] = json!(t);
        }
        s.sign_raw(&h.to_string(), &payload)
    };
    let lax = rs256_only();
    let strict = verifier_with(&[s.jwk(true)], policy().with_strict(true));
    for typ in [
        Some("JWT"),
        None,
        Some("at+jwt"),
        Some("application/at+jwt"),
        Some("at+JWT"),
    ] {
        assert_eq!(status(&lax, &with_typ(typ)), Status::Ok, "{typ:?}");
    }
    for typ in ["id_token+jwt", "JOSE+JSON", "JOSE", ""] {
        assert_eq!(
            status(&lax, &with_typ(Some(typ))),
            Status::TypeNotAllowed,
            "{typ}"
        );
        assert_eq!(
            status(&strict, &with_typ(Some(typ))),
            Status::TypeNotAllowed,
            "{typ}"
        );
    }
    for typ in [Some("JWT"), None] {
        assert_eq!(
            status(&strict, &with_typ(typ)),
            Status::TypeNotAllowed,
            "{typ:?}"
        );
    }
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT"] {
        assert_eq!(status(&strict, &with_typ(Some(typ))), Status::Ok, "{typ}");
    }
}

#[test]
fn case11_segment_counts_and_serialisations() {
    let v = rs256_only();
    let token = Signer::rs256().token(&good_claims());
    let parts: Vec<&str> = token.split('.').collect();
    let json_serialisation =
        json!({"protected": parts[0], "payload": parts[1], "signature": parts[2]}).to_string();
    for bad in [
        String::new(),
        parts[0].to_string(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        format!("{token}.a.b"),
        format!(".{}.{}", parts[1], parts[2]),
        json_serialisation,
    ] {
        let s = status(&v, &bad);
        assert!(matches!(s, Status::TokenMalformed), "{bad:.40}: {s:?}");
    }
    // An empty payload with a valid signature is still not a JWT.
    let empty = Signer::rs256().sign_segments(parts[0], "");
    assert_eq!(status(&v, &empty), Status::PayloadInvalid);
}

#[test]
fn case12_non_canonical_base64_is_refused() {
    let v = rs256_only();
    let token = Signer::rs256().token(&good_claims());
    assert_eq!(status(&v, &token), Status::Ok);
    let (rest, sig) = token.rsplit_once('.').unwrap();
    // The last character of a 256-byte signature carries 4 unused bits: set one.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = sig.as_bytes()[sig.len() - 1];
    let index = alphabet.iter().position(|c| *c == last).unwrap();
    let sloppy = format!(
        "{rest}.{}{}",
        &sig[..sig.len() - 1],
        alphabet[index | 1] as char
    );
    assert_eq!(b64_decode(sig).unwrap().len(), 256);
    for bad in [
        format!("{token}="),
        format!("{token}=="),
        token.replacen('-', "+", 1),
        token.replacen('_', "/", 1),
        format!("{} {}", &token[..20], &token[20..]),
        format!("{token}\n"),
        format!(" {token}"),
        sloppy,
    ] {
        if bad == token {
            continue;
        }
        assert_eq!(status(&v, &bad), Status::TokenMalformed, "{bad:.30}");
    }
}

#[test]
fn case13_header_and_payload_must_be_utf8_json_objects() {
    let v = rs256_only();
    let s = Signer::rs256();
    let good_h = b64_encode(header("RS256", "rsa-a").as_bytes());
    let good_p = b64_encode(good_claims().to_string().as_bytes());
    for body in [
        &b"[1]"[..],
        b"\"x\"",
        b"12",
        b"null",
        b"\xff\xfe{}",
        b"{\"alg\":\"RS256\"\x00}",
        b"{",
    ] {
        let token = s.sign_segments(&b64_encode(body), &good_p);
        assert_eq!(status(&v, &token), Status::HeaderInvalid, "{body:?}");
        let token = s.sign_segments(&good_h, &b64_encode(body));
        assert_eq!(status(&v, &token), Status::PayloadInvalid, "{body:?}");
    }
}

#[test]
fn case14_duplicate_members_are_refused() {
    let v = rs256_only();
    let s = Signer::rs256();
    let token = s.sign_raw(
        r#"{"alg":"RS256","kid":"rsa-a","alg":"none"}"#,
        &good_claims().to_string(),
    );
    assert_eq!(status(&v, &token), Status::HeaderInvalid);
    let body = good_claims().to_string();
    for dup in [
        r#""exp":1,"#,
        r#""aud":"other","#,
        r#""scope":"admin","#,
        r#""iss":"x","#,
    ] {
        let payload = format!("{{{dup}{}", &body[1..]);
        let token = s.sign_raw(&header("RS256", "rsa-a"), &payload);
        assert_eq!(status(&v, &token), Status::PayloadInvalid, "{dup}");
    }
}

#[test]
fn case15_size_cap_comes_before_decoding() {
    let v = rs256_only();
    let big = Signer::rs256().token(&claims_with(json!({"pad": "x".repeat(20_000)})));
    assert_eq!(status(&v, &big), Status::TokenTooLarge);
    assert_eq!(status(&v, &".".repeat(1 << 20)), Status::TokenTooLarge);
    let small = verifier_with(
        &[Signer::rs256().jwk(true)],
        policy().with_max_token_bytes(100),
    );
    assert_eq!(
        status(&small, &Signer::rs256().token(&good_claims())),
        Status::TokenTooLarge
    );
}

const P256_N: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// a - b for big-endian numbers of equal length (a >= b).
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = if d < 0 { 1 } else { 0 };
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

fn es256_verifier() -> Verifier {
    verifier_with(
        &[Signer::es256().jwk(true)],
        policy().with_algorithms(&[Algorithm::ES256]),
    )
}

fn with_signature(token: &str, sig: &[u8]) -> String {
    let (rest, _) = token.rsplit_once('.').unwrap();
    format!("{rest}.{}", b64_encode(sig))
}

#[test]
fn case16_ecdsa_zero_and_order_signatures_are_refused() {
    let v = es256_verifier();
    let token = Signer::es256().token(&good_claims());
    let n = hex(P256_N);
    let zero = vec![0u8; 64];
    let nn = [n.clone(), n.clone()].concat();
    assert_eq!(
        status(&v, &with_signature(&token, &zero)),
        Status::SignatureInvalid
    );
    assert_eq!(
        status(&v, &with_signature(&token, &nn)),
        Status::SignatureInvalid
    );
}

#[test]
fn case17_ecdsa_der_long_and_padded_signatures_are_refused() {
    let v = es256_verifier();
    let token = Signer::es256().token(&good_claims());
    let sig = b64_decode(token.rsplit_once('.').unwrap().1).unwrap();
    let (r, s) = sig.split_at(32);
    let der_int = |x: &[u8]| {
        let mut v = x.to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        [vec![0x02, v.len() as u8], v].concat()
    };
    let body = [der_int(r), der_int(s)].concat();
    let der = [vec![0x30, body.len() as u8], body].concat();
    for bad in [
        der,
        [sig.clone(), vec![0]].concat(),
        [sig.clone(), vec![0, 0]].concat(),
        sig[..63].to_vec(),
    ] {
        assert_eq!(
            status(&v, &with_signature(&token, &bad)),
            Status::SignatureInvalid
        );
    }
    assert_eq!(status(&v, &token), Status::Ok);
}

#[test]
fn case18_high_s_ecdsa_is_valid() {
    let v = es256_verifier();
    let token = Signer::es256().token(&good_claims());
    let sig = b64_decode(token.rsplit_once('.').unwrap().1).unwrap();
    let flipped = [sig[..32].to_vec(), sub_be(&hex(P256_N), &sig[32..])].concat();
    assert_ne!(flipped, sig);
    assert_eq!(status(&v, &with_signature(&token, &flipped)), Status::Ok);
}

#[test]
fn case19_ed25519_length_and_s_range() {
    let v = verifier_with(
        &[Signer::eddsa().jwk(true)],
        policy().with_algorithms(&[Algorithm::EdDSA]),
    );
    let token = Signer::eddsa().token(&good_claims());
    assert_eq!(status(&v, &token), Status::Ok);
    let sig = b64_decode(token.rsplit_once('.').unwrap().1).unwrap();
    // S + L (little-endian), the same value modulo L but not canonical.
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut s_plus_l = sig.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let t = sig[32 + i] as u16 + l[i] as u16 + carry;
        s_plus_l[32 + i] = t as u8;
        carry = t >> 8;
    }
    for bad in [
        sig[..63].to_vec(),
        [sig.clone(), vec![0]].concat(),
        s_plus_l,
    ] {
        assert_eq!(
            status(&v, &with_signature(&token, &bad)),
            Status::SignatureInvalid
        );
    }
}

#[test]
fn case20_rsa_tampering_is_refused() {
    // Malformed PKCS#1 padding and ASN.1 are the Wycheproof rs256 group (tests/wycheproof.rs);
    // here: a flipped bit anywhere and a signature of the wrong length.
    let v = rs256_only();
    let token = Signer::rs256().token(&good_claims());
    let sig = b64_decode(token.rsplit_once('.').unwrap().1).unwrap();
    for i in [0, 100, 255] {
        let mut bad = sig.clone();
        bad[i] ^= 1;
        assert_eq!(
            status(&v, &with_signature(&token, &bad)),
            Status::SignatureInvalid
        );
    }
    assert_eq!(
        status(&v, &with_signature(&token, &sig[1..])),
        Status::SignatureInvalid
    );
    let tampered_payload = token.replacen(
        token.split('.').nth(1).unwrap(),
        &b64_encode(
            claims_with(json!({"scope": "admin"}))
                .to_string()
                .as_bytes(),
        ),
        1,
    );
    assert_eq!(status(&v, &tampered_payload), Status::SignatureInvalid);
}

fn claim_status(changes: Value) -> Status {
    status(&rs256_only(), &Signer::rs256().token(&claims_with(changes)))
}

#[test]
fn case21_exp_boundary_with_leeway() {
    assert_eq!(claim_status(json!({"exp": NOW - 60})), Status::Ok);
    assert_eq!(claim_status(json!({"exp": NOW - 61})), Status::TokenExpired);
    assert_eq!(
        claim_status(json!({"exp": NOW as f64 - 60.5})),
        Status::TokenExpired
    );
    let no_leeway = verifier_with(&[Signer::rs256().jwk(true)], policy().with_leeway(0));
    assert_eq!(
        status(
            &no_leeway,
            &Signer::rs256().token(&claims_with(json!({"exp": NOW})))
        ),
        Status::Ok
    );
    assert_eq!(
        status(
            &no_leeway,
            &Signer::rs256().token(&claims_with(json!({"exp": NOW - 1})))
        ),
        Status::TokenExpired
    );
}

#[test]
fn case22_exp_is_required() {
    assert_eq!(claim_status(json!({"exp": null})), Status::TimeClaimInvalid);
}

#[test]
fn case23_time_claims_must_be_numeric_dates() {
    for claim in ["exp", "nbf", "iat"] {
        for bad in [
            json!("1800000000"),
            json!(true),
            json!(-1),
            json!(2e206),
            json!("NaN"),
            json!([1]),
            json!({}),
        ] {
            assert_eq!(
                claim_status(json!({claim: bad})),
                Status::TimeClaimInvalid,
                "{claim}={bad}"
            );
        }
    }
    // NaN is not JSON at all.
    let token = Signer::rs256().sign_raw(&header("RS256", "rsa-a"), r#"{"exp":NaN}"#);
    assert_eq!(status(&rs256_only(), &token), Status::PayloadInvalid);
}

#[test]
fn case24_nbf_in_the_future() {
    assert_eq!(claim_status(json!({"nbf": NOW + 60})), Status::Ok);
    assert_eq!(
        claim_status(json!({"nbf": NOW + 61})),
        Status::TokenNotYetValid
    );
}

#[test]
fn case25_iat() {
    assert_eq!(
        claim_status(json!({"iat": "yesterday"})),
        Status::TimeClaimInvalid
    );
    assert_eq!(
        claim_status(json!({"iat": NOW + 3600})),
        Status::TokenIssuedInFuture
    );
    assert_eq!(claim_status(json!({"iat": NOW + 60})), Status::Ok);
    assert_eq!(claim_status(json!({"iat": null})), Status::Ok);
}

#[test]
fn case26_issuer_exact_match() {
    for bad in [
        json!("https://evil.example/"),
        json!("https://tenant.example"),
        json!("https://tenant.example/x"),
        json!("https://tenant.example/ "),
        json!([ISSUER, "evil"]),
        json!([ISSUER]),
        json!(1),
        json!(null),
    ] {
        assert_eq!(
            claim_status(json!({"iss": bad})),
            Status::IssuerInvalid,
            "{bad}"
        );
    }
}

#[test]
fn case27_audience_string_or_array() {
    assert_eq!(
        claim_status(json!({"aud": [AUDIENCE, "other"]})),
        Status::Ok
    );
    assert_eq!(
        claim_status(json!({"aud": ["other", AUDIENCE]})),
        Status::Ok
    );
    for bad in [
        json!(["other"]),
        json!([]),
        json!(123),
        json!([1]),
        json!([AUDIENCE, 1]),
        json!(null),
        json!("https://api.example/"),
    ] {
        assert_eq!(
            claim_status(json!({"aud": bad})),
            Status::AudienceInvalid,
            "{bad}"
        );
    }
    let two = verifier_with(
        &[Signer::rs256().jwk(true)],
        policy().with_audience("second"),
    );
    assert_eq!(
        status(
            &two,
            &Signer::rs256().token(&claims_with(json!({"aud": "second"})))
        ),
        Status::Ok
    );
}

#[test]
fn case28_required_claims() {
    let s = Signer::rs256();
    let v = verifier_with(
        &[s.jwk(true)],
        policy()
            .with_required_claim("sub")
            .with_required_claim("client_id"),
    );
    assert_eq!(status(&v, &s.token(&good_claims())), Status::Ok);
    for bad in [
        json!({"sub": null}),
        json!({"sub": 5}),
        json!({"sub": ""}),
        json!({"client_id": ["c"]}),
    ] {
        assert_eq!(
            status(&v, &s.token(&claims_with(bad.clone()))),
            Status::RequiredClaimMissing,
            "{bad}"
        );
    }
    let strict = verifier_with(&[s.jwk(true)], policy().with_strict(true));
    assert_eq!(status(&strict, &s.token(&good_claims())), Status::Ok);
    for missing in ["jti", "client_id", "sub", "iat"] {
        assert_eq!(
            status(&strict, &s.token(&claims_with(json!({missing: null})))),
            Status::RequiredClaimMissing,
            "{missing}"
        );
    }
}

#[test]
fn case29_scope_through_verified_claims() {
    let v = rs256_only();
    let s = Signer::rs256();
    for (changes, want) in [
        (json!({"scope": "openid read:messages"}), true),
        (json!({"scope": null, "scp": "read:messages"}), true),
        (json!({"scope": null, "scp": ["read:messages"]}), true),
        (
            json!({"scope": null, "permissions": ["read:messages"]}),
            true,
        ),
        (json!({"scope": "read:messages2"}), false),
        (json!({"scope": "xread:messages"}), false),
        (json!({"scope": "read:message"}), false),
        (json!({"scope": "Read:Messages"}), false),
        (json!({"scope": ""}), false),
        (json!({"scope": 42}), false),
    ] {
        let claims = v.verify(&s.token(&claims_with(changes.clone()))).unwrap();
        assert_eq!(claims.has_scope("read:messages"), want, "{changes}");
    }
}

#[test]
fn case30_http_mapping_of_authorization_headers() {
    let v = rs256_only();
    let token = Signer::rs256().token(&good_claims());
    let err = |h: Option<&str>| v.verify_authorization(h).unwrap_err().status();
    assert!(
        v.verify_authorization(Some(&format!("Bearer {token}")))
            .is_ok()
    );
    assert!(
        v.verify_authorization(Some(&format!("bearer {token}")))
            .is_ok()
    );
    let missing = err(None);
    assert_eq!((missing.http_status(), missing.rfc6750_error()), (401, ""));
    assert_eq!(missing.code(), "authorization_header_missing");
    let bad = err(Some("Bearer not.a.token"));
    assert_eq!(
        (bad.http_status(), bad.rfc6750_error()),
        (401, "invalid_token")
    );
    // Another scheme: 401 with the seed's invalid_header and a challenge without an error
    // (RFC 6750 section 3.1).
    for other in [
        format!("Basic {token}"),
        format!("Token {token}"),
        "Digest a=b".into(),
    ] {
        let s = err(Some(&other));
        assert_eq!(s, Status::AuthorizationSchemeUnsupported);
        assert_eq!(
            (s.http_status(), s.code(), s.rfc6750_error()),
            (401, "invalid_header", "")
        );
    }
    for malformed in [format!("Bearer {token} {token}"), "Bearer".to_string()] {
        let s = err(Some(&malformed));
        assert_eq!(s, Status::AuthorizationHeaderMalformed);
        assert_eq!((s.http_status(), s.code()), (400, "invalid_header"));
    }
    let scope = Status::InsufficientScope;
    assert_eq!(
        (scope.http_status(), scope.rfc6750_error()),
        (403, "insufficient_scope")
    );
}

#[test]
fn case32_token_without_kid_needs_exactly_one_eligible_key() {
    let s = Signer::rs256();
    let payload = good_claims().to_string();
    let no_kid = s.sign_raw(r#"{"alg":"RS256"}"#, &payload);
    // One RSA key (and an EC key that cannot verify RS256): accepted.
    let one = verifier_with(&[s.jwk(true), Signer::es256().jwk(true)], policy());
    assert_eq!(status(&one, &no_kid), Status::Ok);
    // Two RSA keys: ambiguous.
    let two = verifier_with(&[s.jwk(true), Signer::rs256_b().jwk(true)], policy());
    assert_eq!(status(&two, &no_kid), Status::KeyAmbiguous);
    // No eligible key.
    let none = verifier_with(&[Signer::es256().jwk(true)], policy());
    assert_eq!(status(&none, &no_kid), Status::KeyNotFound);
}

#[test]
fn case36_unsupported_key_types_beside_a_good_key() {
    let s = Signer::rs256();
    let v = verifier_with(
        &[
            json!({"kty": "AKP", "alg": "ML-DSA-44", "pub": "AAAA", "kid": "pq"}),
            json!({"kty": "OKP", "crv": "X25519", "x": b64_encode(&[9; 32]), "kid": "x"}),
            json!({"kty": "EC", "crv": "secp256k1", "x": b64_encode(&[1; 32]), "y": b64_encode(&[2; 32]), "kid": "k1"}),
            json!({"kty": "EC", "crv": "P-521", "x": b64_encode(&[1; 66]), "y": b64_encode(&[2; 66]), "kid": "p521"}),
            s.jwk(true),
        ],
        policy(),
    );
    assert_eq!(status(&v, &s.token(&good_claims())), Status::Ok);
}

#[test]
fn case37_keys_not_for_signature_are_not_used() {
    let s = Signer::rs256();
    for change in [
        json!({"use": "enc"}),
        json!({"key_ops": ["encrypt"]}),
        json!({"key_ops": []}),
        json!({"use": "x"}),
    ] {
        let mut jwk = s.jwk(true);
        for (k, val) in change.as_object().unwrap() {
            jwk[k] = val.clone();
        }
        let v = verifier_with(&[jwk, Signer::es256().jwk(true)], policy());
        assert_eq!(
            status(&v, &s.token(&good_claims())),
            Status::KeyNotFound,
            "{change}"
        );
    }
    let mut verify_ok = s.jwk(true);
    verify_ok["key_ops"] = json!(["verify"]);
    assert_eq!(
        status(
            &verifier_with(&[verify_ok], policy()),
            &s.token(&good_claims())
        ),
        Status::Ok
    );
}

#[test]
fn case38_symmetric_keys_are_skipped() {
    let oct = json!({"kty": "oct", "k": b64_encode(b"secret"), "kid": "rsa-a", "alg": "HS256"});
    let s = Signer::rs256();
    let v = verifier_with(&[oct.clone(), Signer::es256().jwk(true)], policy());
    assert_eq!(status(&v, &s.token(&good_claims())), Status::KeyNotFound);
    let keys = jwtguard::KeySet::from_json(jwks(&[oct]).as_bytes()).unwrap();
    assert!(keys.is_empty());
    assert!(
        keys.skipped()[0].reason.contains("symmetric"),
        "{:?}",
        keys.skipped()
    );
}

#[test]
fn case39_duplicate_kid_with_different_keys_is_ambiguous() {
    let a = Signer::rs256();
    let b = Signer {
        kid: "rsa-a".into(),
        ..Signer::rs256_b()
    };
    let v = verifier_with(&[a.jwk(true), b.jwk(true)], policy());
    assert_eq!(status(&v, &a.token(&good_claims())), Status::KeyAmbiguous);
    assert_eq!(status(&v, &b.token(&good_claims())), Status::KeyAmbiguous);
    // The same key listed twice is not ambiguous.
    let twice = verifier_with(&[a.jwk(true), a.jwk(true)], policy());
    assert_eq!(status(&twice, &a.token(&good_claims())), Status::Ok);
}

#[test]
fn case40_bad_key_material_is_skipped() {
    let s = Signer::rs256();
    let good_ec = Signer::es256().jwk(true);
    let mut off_curve = good_ec.clone();
    off_curve["kid"] = json!("off");
    off_curve["y"] = json!(b64_encode(&[7; 32]));
    let mut bad_b64 = s.jwk(true);
    bad_b64["kid"] = json!("b64");
    bad_b64["n"] = json!("!!!not base64!!!");
    let mut e_one = s.jwk(true);
    e_one["kid"] = json!("e1");
    e_one["e"] = json!("AQ");
    let modulus = std::process::Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(fixture("rsa1024.pem"))
        .output()
        .unwrap()
        .stdout;
    let modulus = String::from_utf8(modulus).unwrap();
    let n = hex(modulus.trim().trim_start_matches("Modulus="));
    let small = json!({"kty": "RSA", "n": b64_encode(&n), "e": "AQAB", "kid": "small"});
    let short_okp =
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64_encode(&[1; 31]), "kid": "short"});
    let bad = [off_curve, bad_b64, e_one, small, short_okp];
    let mut all = bad.to_vec();
    all.push(s.jwk(true));
    let keys = jwtguard::KeySet::from_json(jwks(&all).as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.skipped().len(), bad.len());
    let v = verifier_with(&all, policy().with_algorithms(&Algorithm::ALL));
    assert_eq!(status(&v, &s.token(&good_claims())), Status::Ok);
    for kid in ["off", "b64", "e1", "small", "short"] {
        let t = Signer {
            kid: kid.into(),
            ..s.clone()
        }
        .token(&good_claims());
        assert_eq!(status(&v, &t), Status::KeyNotFound, "{kid}");
    }
}

#[test]
fn a_jwks_with_no_usable_key_is_a_configuration_error() {
    let config = Config::new(
        policy(),
        Keys::Json(jwks(&[json!({"kty": "oct", "k": "AA"})])),
    );
    assert_eq!(
        Verifier::new(config).err().unwrap().status(),
        Status::JwksInvalid
    );
    let config = Config::new(
        Policy::empty(),
        Keys::Json(jwks(&[Signer::rs256().jwk(true)])),
    );
    assert_eq!(
        Verifier::new(config).err().unwrap().status(),
        Status::ConfigInvalid
    );
}
