//! DPoP (RFC 9449) in the core: every proof check of section 4.3 with its own status, the
//! policy (off, allowed, required), the replay cache, and the challenges. Proofs are minted
//! here with jsonwebtoken's signer and key thumbprint (not jwtguard's), with a manual clock.

mod common;

use common::*;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jwtguard::answer::challenge_for;
use jwtguard::dpop::{DpopMode, DpopPolicy, token_hash};
use jwtguard::token::b64_encode;
use jwtguard::verify::Scheme;
use jwtguard::{Algorithm, Clock, Config, Keys, Policy, Request, Status, Verifier};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const METHOD: &str = "GET";
const URL: &str = "https://api.example/api/private";

fn verifier_with(dpop: DpopPolicy) -> (Verifier, Clock) {
    let clock = Clock::manual(NOW);
    let mut config = Config::new(
        Policy::new(ISSUER, AUDIENCE),
        Keys::Json(jwks(&[Signer::rs256().jwk(true)])),
    );
    config.clock = clock.clone();
    config.dpop = dpop;
    (Verifier::new(config).unwrap(), clock)
}

fn verifier() -> Verifier {
    verifier_with(DpopPolicy::default()).0
}

fn mode(mode: DpopMode) -> Verifier {
    verifier_with(DpopPolicy {
        mode,
        ..DpopPolicy::default()
    })
    .0
}

/// The client's public JWK as a proof carries it: no `kid`, `use` or `alg`.
fn public_jwk(client: &Signer) -> Value {
    let mut jwk = client.jwk(false);
    let o = jwk.as_object_mut().unwrap();
    o.remove("kid");
    o.remove("use");
    jwk
}

/// jsonwebtoken's RFC 7638 thumbprint of the client's key.
fn jkt(client: &Signer) -> String {
    let jwk: Jwk = serde_json::from_value(public_jwk(client)).unwrap();
    jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
}

/// An access token bound to `client`'s key.
fn bound_token(client: &Signer) -> String {
    Signer::rs256().token(&claims_with(json!({"cnf": {"jkt": jkt(client)}})))
}

fn plain_token() -> String {
    Signer::rs256().token(&good_claims())
}

static JTI: AtomicUsize = AtomicUsize::new(0);

fn proof_header(client: &Signer) -> Value {
    json!({"typ": "dpop+jwt", "alg": client.alg_name(), "jwk": public_jwk(client)})
}

fn proof_claims(token: &str) -> Value {
    json!({
        "jti": format!("proof-{}", JTI.fetch_add(1, Ordering::Relaxed)),
        "htm": METHOD,
        "htu": URL,
        "iat": NOW,
        "ath": token_hash_by_hand(token),
    })
}

/// `ath` computed with aws-lc's SHA-256 directly (not through jwtguard's helper).
fn token_hash_by_hand(token: &str) -> String {
    b64_encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

/// Merge `changes` into `base` (`null` removes a member).
fn merged(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

fn proof_by(signer: &Signer, header: &Value, claims: &Value) -> String {
    signer.sign_raw(&header.to_string(), &claims.to_string())
}

/// A valid proof by `client` for `token`, with header and claim changes.
fn proof_with(client: &Signer, token: &str, header: Value, claims: Value) -> String {
    proof_by(
        client,
        &merged(proof_header(client), header),
        &merged(proof_claims(token), claims),
    )
}

fn proof(client: &Signer, token: &str) -> String {
    proof_with(client, token, json!({}), json!({}))
}

fn call(v: &Verifier, authorization: &str, dpop: Option<&str>, method: &str, url: &str) -> Status {
    let request = Request {
        authorization: Some(authorization),
        dpop,
        method: Some(method),
        url: Some(url),
    };
    match v.verify_request(&request) {
        Ok(_) => Status::Ok,
        Err(e) => e.status(),
    }
}

/// `Authorization: DPoP <token>` with this proof, on the usual request.
fn dpop_call(v: &Verifier, token: &str, proof: &str) -> Status {
    call(v, &format!("DPoP {token}"), Some(proof), METHOD, URL)
}

#[test]
fn a_valid_call_passes_with_every_kind_of_client_key() {
    let v = verifier();
    for client in [
        Signer::es256(),
        Signer::es384(),
        Signer::eddsa(),
        Signer::ps256(),
    ] {
        let token = bound_token(&client);
        assert_eq!(
            dpop_call(&v, &token, &proof(&client, &token)),
            Status::Ok,
            "{}",
            client.alg_name()
        );
    }
    // The claims come back, cnf included; the scheme is case-insensitive.
    let client = Signer::es256();
    let token = bound_token(&client);
    let claims = v
        .verify_request(&Request {
            authorization: Some(&format!("dpop  {token}")),
            dpop: Some(&proof(&client, &token)),
            method: Some(METHOD),
            url: Some(URL),
        })
        .unwrap();
    assert_eq!(claims.get("cnf").unwrap()["jkt"], json!(jkt(&client)));
    assert_eq!(v.count(Status::Ok), 5);
}

#[test]
fn jwtguard_computes_the_same_thumbprint_and_hash() {
    for client in [
        Signer::es256(),
        Signer::es384(),
        Signer::eddsa(),
        Signer::rs256_b(),
    ] {
        let jwk = public_jwk(&client);
        assert_eq!(
            jwtguard::dpop::thumbprint(jwk.as_object().unwrap()).unwrap(),
            jkt(&client)
        );
    }
    assert_eq!(token_hash("abc.def.ghi"), token_hash_by_hand("abc.def.ghi"));
}

#[test]
fn a_bound_token_used_as_a_bearer_token_is_refused_in_every_mode() {
    let client = Signer::es256();
    let token = bound_token(&client);
    for m in [DpopMode::Off, DpopMode::Allowed] {
        let v = mode(m);
        assert_eq!(
            call(&v, &format!("Bearer {token}"), None, METHOD, URL),
            Status::DpopBoundTokenAsBearer,
            "{m}"
        );
        // With a valid proof beside it too: the scheme says bearer.
        assert_eq!(
            call(
                &v,
                &format!("Bearer {token}"),
                Some(&proof(&client, &token)),
                METHOD,
                URL
            ),
            Status::DpopBoundTokenAsBearer
        );
        assert_eq!(
            v.verify(&token).unwrap_err().status(),
            Status::DpopBoundTokenAsBearer
        );
        assert_eq!(
            v.verify_authorization(Some(&format!("Bearer {token}")))
                .unwrap_err()
                .status(),
            Status::DpopBoundTokenAsBearer
        );
    }
    assert_eq!(
        mode(DpopMode::Required)
            .verify(&token)
            .unwrap_err()
            .status(),
        Status::DpopRequired
    );
    // Any cnf binds: one without jkt (a certificate binding) is not a bearer token either,
    // and is not a DPoP binding.
    let v = verifier();
    let cert_bound = Signer::rs256().token(&claims_with(json!({"cnf": {"x5t#S256": "abc"}})));
    assert_eq!(
        v.verify(&cert_bound).unwrap_err().status(),
        Status::DpopBoundTokenAsBearer
    );
    assert_eq!(
        dpop_call(&v, &cert_bound, &proof(&client, &cert_bound)),
        Status::DpopTokenNotBound
    );
}

#[test]
fn unbound_tokens_work_as_before_unless_dpop_is_required() {
    let token = plain_token();
    for m in [DpopMode::Off, DpopMode::Allowed] {
        let v = mode(m);
        assert_eq!(
            call(&v, &format!("Bearer {token}"), None, METHOD, URL),
            Status::Ok
        );
        assert!(v.verify(&token).is_ok());
    }
    let v = mode(DpopMode::Required);
    assert_eq!(
        call(&v, &format!("Bearer {token}"), None, METHOD, URL),
        Status::DpopRequired
    );
    // An unbound token with the DPoP scheme and a good proof is still not bound.
    let client = Signer::es256();
    assert_eq!(
        dpop_call(&v, &token, &proof(&client, &token)),
        Status::DpopTokenNotBound
    );
    assert_eq!(
        dpop_call(&verifier(), &token, &proof(&client, &token)),
        Status::DpopTokenNotBound
    );
    // Required: the bound token with its proof passes.
    let bound = bound_token(&client);
    assert_eq!(dpop_call(&v, &bound, &proof(&client, &bound)), Status::Ok);
}

#[test]
fn off_refuses_the_dpop_scheme() {
    let client = Signer::es256();
    let token = bound_token(&client);
    assert_eq!(
        dpop_call(&mode(DpopMode::Off), &token, &proof(&client, &token)),
        Status::DpopSchemeDisabled
    );
}

#[test]
fn a_replayed_proof_is_refused() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    let p = proof(&client, &token);
    assert_eq!(dpop_call(&v, &token, &p), Status::Ok);
    assert_eq!(dpop_call(&v, &token, &p), Status::DpopProofReplayed);
    // A new proof with the same jti too; another jti passes.
    let same_jti = proof_with(&client, &token, json!({}), json!({"jti": "fixed"}));
    assert_eq!(dpop_call(&v, &token, &same_jti), Status::Ok);
    let again = proof_with(
        &client,
        &token,
        json!({}),
        json!({"jti": "fixed", "iat": NOW - 1}),
    );
    assert_eq!(dpop_call(&v, &token, &again), Status::DpopProofReplayed);
    assert_eq!(dpop_call(&v, &token, &proof(&client, &token)), Status::Ok);
}

#[test]
fn answering_again_neither_reads_nor_records_the_jti() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    let again = |proof: &str, url: &str| {
        v.verify_request_again(&Request {
            authorization: Some(&format!("DPoP {token}")),
            dpop: Some(proof),
            method: Some(METHOD),
            url: Some(url),
        })
        .map(|_| ())
        .map_err(|e| e.status())
    };
    // A proof used once still passes the second look (a refusal page describing a refusal
    // for another reason must not call it a replay) ...
    let used = proof(&client, &token);
    assert_eq!(dpop_call(&v, &token, &used), Status::Ok);
    assert_eq!(again(&used, URL), Ok(()));
    // ... every other check still applies ...
    assert_eq!(
        again(&used, "https://other.example/api/private"),
        Err(Status::DpopProofUrlMismatch)
    );
    // ... and a proof only looked at again is still unused.
    let fresh = proof(&client, &token);
    assert_eq!(again(&fresh, URL), Ok(()));
    assert_eq!(dpop_call(&v, &token, &fresh), Status::Ok);
    assert_eq!(dpop_call(&v, &token, &fresh), Status::DpopProofReplayed);
    // Looks again are not counted.
    assert_eq!(v.count(Status::Ok), 2);
}

#[test]
fn a_proof_is_accepted_once_among_many_threads() {
    let v = Arc::new(verifier());
    let client = Signer::es256();
    let token = bound_token(&client);
    let p = proof(&client, &token);
    let passed = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (v, token, p, passed) = (v.clone(), token.clone(), p.clone(), passed.clone());
            std::thread::spawn(move || {
                for _ in 0..20 {
                    match dpop_call(&v, &token, &p) {
                        Status::Ok => {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                        s => assert_eq!(s, Status::DpopProofReplayed),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(passed.load(Ordering::Relaxed), 1);
}

#[test]
fn htm_must_be_the_request_method() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    let p = proof(&client, &token);
    assert_eq!(
        call(&v, &format!("DPoP {token}"), Some(&p), "POST", URL),
        Status::DpopProofMethodMismatch
    );
    assert_eq!(
        call(&v, &format!("DPoP {token}"), Some(&p), "get", URL),
        Status::DpopProofMethodMismatch
    );
    let post = proof_with(&client, &token, json!({}), json!({"htm": "POST"}));
    assert_eq!(
        dpop_call(&v, &token, &post),
        Status::DpopProofMethodMismatch
    );
    assert_eq!(
        call(&v, &format!("DPoP {token}"), Some(&post), "POST", URL),
        Status::Ok
    );
}

#[test]
fn htu_must_be_the_request_url_without_query_and_fragment() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    let with_htu = |htu: &str| proof_with(&client, &token, json!({}), json!({"htu": htu}));
    let at = |url: &str, htu: &str| {
        call(
            &v,
            &format!("DPoP {token}"),
            Some(&with_htu(htu)),
            METHOD,
            url,
        )
    };
    assert_eq!(
        at(URL, "https://api.example/api/public"),
        Status::DpopProofUrlMismatch
    );
    assert_eq!(
        at(URL, "https://evil.example/api/private"),
        Status::DpopProofUrlMismatch
    );
    assert_eq!(
        at(URL, "http://api.example/api/private"),
        Status::DpopProofUrlMismatch
    );
    assert_eq!(
        at(URL, "https://api.example:8443/api/private"),
        Status::DpopProofUrlMismatch
    );
    assert_eq!(at(URL, "/api/private"), Status::DpopProofUrlMismatch);
    // The query and fragment are ignored, on either side; normalisation applies.
    assert_eq!(at(&format!("{URL}?page=2"), URL), Status::Ok);
    assert_eq!(at(URL, &format!("{URL}?x=1#frag")), Status::Ok);
    assert_eq!(at(URL, "HTTPS://API.EXAMPLE:443/api/./private"), Status::Ok);
    assert_eq!(at("https://api.example/api/%70rivate", URL), Status::Ok);
    // A request URL that is not one is a mismatch, not a pass.
    assert_eq!(at("not a url", URL), Status::DpopProofUrlMismatch);
}

#[test]
fn iat_must_be_inside_the_window_and_leeway() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    let at = |iat: i64| {
        dpop_call(
            &v,
            &token,
            &proof_with(&client, &token, json!({}), json!({"iat": iat})),
        )
    };
    // Window 60 s plus leeway 60 s behind, leeway 60 s ahead.
    assert_eq!(at(NOW - 120), Status::Ok);
    assert_eq!(at(NOW - 121), Status::DpopProofExpired);
    assert_eq!(at(NOW - 3600), Status::DpopProofExpired);
    assert_eq!(at(NOW + 60), Status::Ok);
    assert_eq!(at(NOW + 61), Status::DpopProofIssuedInFuture);
    let (v, _) = verifier_with(DpopPolicy {
        window_secs: 5,
        ..DpopPolicy::default()
    });
    let at = |iat: i64| {
        dpop_call(
            &v,
            &token,
            &proof_with(&client, &token, json!({}), json!({"iat": iat})),
        )
    };
    assert_eq!(at(NOW - 65), Status::Ok);
    assert_eq!(at(NOW - 66), Status::DpopProofExpired);
}

#[test]
fn ath_must_hash_the_token_presented() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    let wrong = proof_with(
        &client,
        &token,
        json!({}),
        json!({"ath": token_hash_by_hand("other")}),
    );
    assert_eq!(
        dpop_call(&v, &token, &wrong),
        Status::DpopProofTokenHashMismatch
    );
    let missing = proof_with(&client, &token, json!({}), json!({"ath": null}));
    assert_eq!(
        dpop_call(&v, &token, &missing),
        Status::DpopProofTokenHashMismatch
    );
    // A proof made for another token of the same client.
    let other = Signer::rs256().token(&claims_with(
        json!({"cnf": {"jkt": jkt(&client)}, "jti": "other"}),
    ));
    assert_eq!(
        dpop_call(&v, &token, &proof(&client, &other)),
        Status::DpopProofTokenHashMismatch
    );
}

#[test]
fn the_proof_key_must_sign_and_be_the_bound_key() {
    let v = verifier();
    let client = Signer::es256();
    let same_key = Signer::new("ec-p256.pem", jsonwebtoken::Algorithm::ES256, "x");
    let token = bound_token(&client);
    // The client's jwk in the header, signed by another key.
    let other = Signer::eddsa();
    let forged = proof_by(
        &Signer::new("ec-p384.pem", jsonwebtoken::Algorithm::ES384, "x"),
        &merged(proof_header(&client), json!({"alg": "ES384"})),
        &proof_claims(&token),
    );
    assert_eq!(dpop_call(&v, &token, &forged), Status::DpopProofKeyInvalid);
    let swapped = proof_by(
        &other,
        &merged(
            proof_header(&other),
            json!({"jwk": public_jwk(&client), "alg": "ES256"}),
        ),
        &proof_claims(&token),
    );
    assert_eq!(
        dpop_call(&v, &token, &swapped),
        Status::DpopProofSignatureInvalid
    );
    // A good proof by another key than the bound one.
    assert_eq!(
        dpop_call(&v, &token, &proof(&other, &token)),
        Status::DpopProofKeyMismatch
    );
    // Same key material: the binding holds.
    assert_eq!(dpop_call(&v, &token, &proof(&same_key, &token)), Status::Ok);
}

#[test]
fn a_jwk_with_a_private_part_is_refused() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    for member in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        let mut jwk = public_jwk(&client);
        jwk[member] = json!("AQAB");
        let p = proof_with(&client, &token, json!({"jwk": jwk}), json!({}));
        assert_eq!(
            dpop_call(&v, &token, &p),
            Status::DpopProofKeyPrivate,
            "{member}"
        );
    }
    for jwk in [
        json!("key"),
        json!({"kty": "oct", "x": "AA"}),
        json!({"kty": "EC", "crv": "P-256"}),
    ] {
        let p = proof_with(&client, &token, json!({"jwk": jwk}), json!({}));
        assert_eq!(
            dpop_call(&v, &token, &p),
            Status::DpopProofKeyInvalid,
            "{jwk}"
        );
    }
    let p = proof_with(&client, &token, json!({"jwk": null}), json!({}));
    assert_eq!(dpop_call(&v, &token, &p), Status::DpopProofKeyInvalid);
}

#[test]
fn none_and_symmetric_algorithms_are_refused() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    let header = merged(proof_header(&client), json!({"alg": "none"}));
    let none = format!(
        "{}.{}.",
        b64_encode(header.to_string().as_bytes()),
        b64_encode(proof_claims(&token).to_string().as_bytes())
    );
    assert_eq!(dpop_call(&v, &token, &none), Status::DpopProofMalformed);
    let none_sig = format!("{none}AAAA");
    assert_eq!(
        dpop_call(&v, &token, &none_sig),
        Status::DpopProofAlgorithmNotAllowed
    );
    // HS256 over the proof with the public key's bytes as the secret.
    let header = merged(proof_header(&client), json!({"alg": "HS256"}));
    let input = format!(
        "{}.{}",
        b64_encode(header.to_string().as_bytes()),
        b64_encode(proof_claims(&token).to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        public_jwk(&client)["x"].as_str().unwrap().as_bytes(),
    );
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let hs256 = format!("{input}.{}", b64_encode(tag.as_ref()));
    assert_eq!(
        dpop_call(&v, &token, &hs256),
        Status::DpopProofAlgorithmNotAllowed
    );
    // An allow-list without EdDSA refuses an EdDSA proof.
    let (v, _) = verifier_with(DpopPolicy {
        algorithms: vec![Algorithm::ES256],
        ..DpopPolicy::default()
    });
    let ed = Signer::eddsa();
    let token = bound_token(&ed);
    assert_eq!(
        dpop_call(&v, &token, &proof(&ed, &token)),
        Status::DpopProofAlgorithmNotAllowed
    );
}

#[test]
fn typ_must_be_dpop_jwt() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    for typ in [json!("JWT"), json!("at+jwt"), json!(null), json!(7)] {
        let p = proof_with(&client, &token, json!({"typ": typ}), json!({}));
        assert_eq!(
            dpop_call(&v, &token, &p),
            Status::DpopProofTypeInvalid,
            "{typ}"
        );
    }
    for typ in ["DPoP+JWT", "application/dpop+jwt"] {
        let p = proof_with(&client, &token, json!({"typ": typ}), json!({}));
        assert_eq!(dpop_call(&v, &token, &p), Status::Ok, "{typ}");
    }
}

#[test]
fn one_proof_header_well_formed_with_its_claims() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    let (a, b) = (proof(&client, &token), proof(&client, &token));
    assert_eq!(
        dpop_call(&v, &token, &format!("{a}, {b}")),
        Status::DpopProofMultiple
    );
    assert_eq!(
        dpop_call(&v, &token, &format!("{a},{a}")),
        Status::DpopProofMultiple
    );
    assert_eq!(
        dpop_call(&v, &token, &format!("{a}, ")),
        Status::DpopProofMultiple
    );
    for bad in [
        "x",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        &format!("{a}x="),
        &"A".repeat(9000),
    ] {
        assert_eq!(
            dpop_call(&v, &token, bad),
            Status::DpopProofMalformed,
            "{bad:.20}"
        );
    }
    let dup = client.sign_raw(
        &proof_header(&client).to_string(),
        r#"{"jti":"a","jti":"b","htm":"GET","htu":"https://api.example/api/private","iat":1800000000}"#,
    );
    assert_eq!(dpop_call(&v, &token, &dup), Status::DpopProofMalformed);
    for (name, value) in [
        ("jti", json!(null)),
        ("jti", json!(1)),
        ("jti", json!("")),
        ("htm", json!(null)),
        ("htu", json!(null)),
        ("htu", json!(["u"])),
        ("iat", json!(null)),
        ("iat", json!("1800000000")),
    ] {
        let p = proof_with(&client, &token, json!({}), json!({ name: value }));
        assert_eq!(
            dpop_call(&v, &token, &p),
            Status::DpopProofClaimsInvalid,
            "{name} {value}"
        );
    }
    let p = proof_with(&client, &token, json!({"crit": ["x"]}), json!({}));
    assert_eq!(dpop_call(&v, &token, &p), Status::DpopProofMalformed);
    for absent in [None, Some(""), Some("  ")] {
        assert_eq!(
            call(&v, &format!("DPoP {token}"), absent, METHOD, URL),
            Status::DpopProofMissing
        );
    }
    assert_eq!(
        v.verify_authorization(Some(&format!("DPoP {token}")))
            .unwrap_err()
            .status(),
        Status::DpopProofMissing
    );
}

#[test]
fn token_checks_still_apply_under_the_dpop_scheme() {
    let v = verifier();
    let client = Signer::es256();
    let expired = Signer::rs256().token(&claims_with(
        json!({"cnf": {"jkt": jkt(&client)}, "exp": NOW - 3600}),
    ));
    assert_eq!(
        dpop_call(&v, &expired, &proof(&client, &expired)),
        Status::TokenExpired
    );
    let audience = Signer::rs256().token(&claims_with(
        json!({"cnf": {"jkt": jkt(&client)}, "aud": "other"}),
    ));
    assert_eq!(
        dpop_call(&v, &audience, &proof(&client, &audience)),
        Status::AudienceInvalid
    );
    // The method and URL are needed for a proof (a host's mistake, not the client's).
    let token = bound_token(&client);
    let request = Request {
        authorization: Some(&format!("DPoP {token}")),
        dpop: Some(&proof(&client, &token)),
        ..Request::default()
    };
    assert_eq!(
        v.verify_request(&request).unwrap_err().status(),
        Status::InvalidArgument
    );
}

#[test]
fn the_token_cache_serves_bound_tokens_and_every_proof_is_still_checked() {
    let v = verifier();
    let client = Signer::es256();
    let token = bound_token(&client);
    for _ in 0..3 {
        assert_eq!(dpop_call(&v, &token, &proof(&client, &token)), Status::Ok);
    }
    assert_eq!(v.token_cache_stats().hits, 2);
    let p = proof(&client, &token);
    assert_eq!(dpop_call(&v, &token, &p), Status::Ok);
    assert_eq!(dpop_call(&v, &token, &p), Status::DpopProofReplayed);
    assert_eq!(
        v.verify(&token).unwrap_err().status(),
        Status::DpopBoundTokenAsBearer
    );
}

#[test]
fn a_full_replay_cache_refuses_until_proofs_end() {
    let (v, clock) = verifier_with(DpopPolicy {
        replay_cache: 1,
        ..DpopPolicy::default()
    });
    let client = Signer::es256();
    let token = bound_token(&client);
    assert_eq!(dpop_call(&v, &token, &proof(&client, &token)), Status::Ok);
    let next = proof(&client, &token);
    assert_eq!(dpop_call(&v, &token, &next), Status::DpopReplayCacheFull);
    assert_eq!(Status::DpopReplayCacheFull.http_status(), 503);
    // Once the first proof's window (60 s + 60 s leeway) is over, there is room again.
    clock.advance(121.0);
    let late = proof_with(&client, &token, json!({}), json!({"iat": NOW + 121}));
    assert_eq!(dpop_call(&v, &token, &late), Status::Ok);
}

#[test]
fn the_policy_is_checked_when_the_verifier_is_built() {
    for bad in [
        DpopPolicy {
            algorithms: vec![],
            ..DpopPolicy::default()
        },
        DpopPolicy {
            window_secs: 0,
            ..DpopPolicy::default()
        },
        DpopPolicy {
            window_secs: 3601,
            ..DpopPolicy::default()
        },
        DpopPolicy {
            replay_cache: 0,
            ..DpopPolicy::default()
        },
    ] {
        let mut config = Config::new(
            Policy::new(ISSUER, AUDIENCE),
            Keys::Json(jwks(&[Signer::rs256().jwk(true)])),
        );
        config.dpop = bad;
        assert_eq!(
            Verifier::new(config).err().unwrap().status(),
            Status::ConfigInvalid
        );
    }
    assert_eq!("required".parse::<DpopMode>().unwrap(), DpopMode::Required);
    assert!("on".parse::<DpopMode>().is_err());
}

#[test]
fn challenges_name_dpop_beside_bearer() {
    let algs = DpopPolicy::default().algs();
    assert_eq!(
        algs,
        "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519"
    );
    let allowed = DpopPolicy::default();
    let c = |status, policy: &DpopPolicy, scheme| {
        challenge_for("api", &["read:messages".into()], status, policy, scheme).unwrap()
    };
    assert_eq!(
        c(Status::TokenMissing, &allowed, None),
        format!("Bearer realm=\"api\", DPoP realm=\"api\", algs=\"{algs}\"")
    );
    assert_eq!(
        c(Status::TokenExpired, &allowed, Some(Scheme::Bearer)),
        format!(
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"Token is expired\", DPoP realm=\"api\", algs=\"{algs}\""
        )
    );
    assert_eq!(
        c(Status::TokenExpired, &allowed, Some(Scheme::Dpop)),
        format!(
            "Bearer realm=\"api\", DPoP realm=\"api\", algs=\"{algs}\", error=\"invalid_token\", error_description=\"Token is expired\""
        )
    );
    assert_eq!(
        c(Status::DpopProofReplayed, &allowed, Some(Scheme::Dpop)),
        format!(
            "Bearer realm=\"api\", DPoP realm=\"api\", algs=\"{algs}\", error=\"invalid_dpop_proof\", error_description=\"DPoP proof was already used (jti)\""
        )
    );
    assert_eq!(
        c(
            Status::DpopBoundTokenAsBearer,
            &allowed,
            Some(Scheme::Bearer)
        ),
        format!(
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"Token is bound to a key and needs a DPoP proof\", DPoP realm=\"api\", algs=\"{algs}\""
        )
    );
    assert_eq!(
        c(Status::InsufficientScope, &allowed, Some(Scheme::Dpop)),
        format!(
            "Bearer realm=\"api\", DPoP realm=\"api\", algs=\"{algs}\", error=\"insufficient_scope\", error_description=\"You don't have access to this resource\", scope=\"read:messages\""
        )
    );
    let required = DpopPolicy {
        mode: DpopMode::Required,
        algorithms: vec![Algorithm::ES256],
        ..DpopPolicy::default()
    };
    assert_eq!(
        c(Status::DpopRequired, &required, Some(Scheme::Bearer)),
        "DPoP realm=\"api\", algs=\"ES256\", error=\"invalid_token\", error_description=\"A DPoP-bound token is required\""
    );
    let off = DpopPolicy {
        mode: DpopMode::Off,
        ..DpopPolicy::default()
    };
    assert_eq!(
        c(Status::DpopSchemeDisabled, &off, Some(Scheme::Dpop)),
        "Bearer realm=\"api\""
    );
    assert_eq!(
        challenge_for(
            "api",
            &[],
            Status::DpopReplayCacheFull,
            &allowed,
            Some(Scheme::Dpop)
        ),
        None
    );
}

/// A client key made for the test (Ed25519), for tests that need more keys than the fixtures.
struct MadeClient {
    pair: aws_lc_rs::signature::Ed25519KeyPair,
    jwk: Value,
}

impl MadeClient {
    fn new() -> MadeClient {
        use aws_lc_rs::signature::KeyPair;
        let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
        let x = b64_encode(pair.public_key().as_ref());
        MadeClient {
            pair,
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
        }
    }

    fn jkt(&self) -> String {
        let jwk: Jwk = serde_json::from_value(self.jwk.clone()).unwrap();
        jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
    }

    /// An access token of `sub` bound to this key.
    fn token(&self, sub: &str) -> String {
        Signer::rs256().token(&claims_with(
            json!({"sub": sub, "cnf": {"jkt": self.jkt()}}),
        ))
    }

    fn proof(&self, token: &str) -> String {
        self.proof_named("EdDSA", token)
    }

    /// A proof whose header names `alg` (`EdDSA` or RFC 9864's `Ed25519`).
    fn proof_named(&self, alg: &str, token: &str) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": self.jwk});
        let input = format!(
            "{}.{}",
            b64_encode(header.to_string().as_bytes()),
            b64_encode(proof_claims(token).to_string().as_bytes())
        );
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", b64_encode(signature.as_ref()))
    }
}

/// Review 3, item 6: a client binds a token to any key it brings, so the replay cache's share
/// is per client (the token's `iss` and `sub`), not per key: eight keys of one client once
/// filled an 800-proof cache and every other client's first proof was refused (503).
#[test]
fn one_client_with_many_keys_cannot_deny_another_clients_first_proof() {
    let (v, _) = verifier_with(DpopPolicy {
        replay_cache: 800,
        ..DpopPolicy::default()
    });
    let mut accepted = 0;
    for _ in 0..8 {
        let key = MadeClient::new();
        let token = key.token("abuser");
        for _ in 0..100 {
            match dpop_call(&v, &token, &key.proof(&token)) {
                Status::Ok => accepted += 1,
                other => assert_eq!(other, Status::DpopReplayCacheFull),
            }
        }
    }
    assert_eq!(accepted, 100, "an eighth of the cache for one client");
    for i in 0..7 {
        let key = MadeClient::new();
        let token = key.token(&format!("innocent {i}"));
        assert_eq!(dpop_call(&v, &token, &key.proof(&token)), Status::Ok);
    }
    // The client is the token's sub under its issuer, not a claim the proof chooses: a
    // client-credentials token without sub counts by client_id.
    let key = MadeClient::new();
    let token = Signer::rs256().token(&claims_with(
        json!({"sub": null, "client_id": "abuser", "cnf": {"jkt": key.jkt()}}),
    ));
    assert_eq!(dpop_call(&v, &token, &key.proof(&token)), Status::Ok);
}

/// Review 3, item 7: a proof signed as RFC 9864's `Ed25519` (how current JOSE libraries sign
/// with an Ed25519 key) is accepted wherever `EdDSA` is, and the challenge names both.
#[test]
fn a_proof_named_ed25519_is_accepted_wherever_eddsa_is() {
    let key = MadeClient::new();
    let token = key.token("client");
    assert_eq!(
        dpop_call(&verifier(), &token, &key.proof_named("Ed25519", &token)),
        Status::Ok
    );
    let only_eddsa = verifier_with(DpopPolicy {
        algorithms: vec![Algorithm::EdDSA],
        ..DpopPolicy::default()
    })
    .0;
    assert_eq!(
        dpop_call(&only_eddsa, &token, &key.proof_named("Ed25519", &token)),
        Status::Ok
    );
    assert_eq!(only_eddsa.dpop().algs(), "EdDSA Ed25519");
    let only_es = verifier_with(DpopPolicy {
        algorithms: vec![Algorithm::ES256],
        ..DpopPolicy::default()
    })
    .0;
    assert_eq!(
        dpop_call(&only_es, &token, &key.proof_named("Ed25519", &token)),
        Status::DpopProofAlgorithmNotAllowed
    );
    // The proof's key must fit the name: an Ed25519 name on an EC key is refused.
    let ec = Signer::es256();
    let ec_token = bound_token(&ec);
    assert_eq!(
        dpop_call(
            &verifier(),
            &ec_token,
            &proof_with(&ec, &ec_token, json!({"alg": "Ed25519"}), json!({}))
        ),
        Status::DpopProofKeyInvalid
    );
}

/// Review 3, item 17: with the public origins pinned, a proof is good only on them, whatever
/// host the request URL names (a spoofed `Host` or forwarded host, another scheme or port).
#[test]
fn pinned_origins_refuse_a_proof_for_any_other_origin() {
    let (v, _) = verifier_with(DpopPolicy {
        origins: vec![
            "HTTPS://API.example:443/".into(),
            "http://127.0.0.1:8080".into(),
        ],
        ..DpopPolicy::default()
    });
    let client = Signer::es256();
    let token = bound_token(&client);
    let at = |url: &str| {
        let p = proof_with(&client, &token, json!({}), json!({"htu": url}));
        call(&v, &format!("DPoP {token}"), Some(&p), METHOD, url)
    };
    assert_eq!(at(URL), Status::Ok);
    assert_eq!(at("http://127.0.0.1:8080/api/x?q=1"), Status::Ok);
    for other in [
        "https://evil.example/api/private",
        "http://api.example/api/private",
        "https://api.example:8443/api/private",
        "http://127.0.0.1:8081/api/x",
        "https://api.example.evil/api/private",
        "https://api.exampl/api/private",
    ] {
        assert_eq!(at(other), Status::DpopProofUrlMismatch, "{other}");
    }
    for bad in [
        "api.example",
        "https://api.example/path",
        "ftp://a",
        "https://",
        "https://a?b",
    ] {
        let policy = DpopPolicy {
            origins: vec![bad.into()],
            ..DpopPolicy::default()
        };
        assert_eq!(
            policy.validate().unwrap_err().status(),
            Status::ConfigInvalid,
            "{bad}"
        );
    }
}

/// Review 3 (outside look): tokens naming neither `sub` nor `client_id` share one share per
/// issuer, never one per proof key (keys are the client's to choose).
#[test]
fn tokens_without_sub_or_client_id_share_one_share_whatever_the_keys() {
    let (v, _) = verifier_with(DpopPolicy {
        replay_cache: 800,
        ..DpopPolicy::default()
    });
    let mut accepted = 0;
    for _ in 0..8 {
        let key = MadeClient::new();
        let token = Signer::rs256().token(&claims_with(
            json!({"sub": null, "client_id": null, "cnf": {"jkt": key.jkt()}}),
        ));
        for _ in 0..101 {
            if dpop_call(&v, &token, &key.proof(&token)) == Status::Ok {
                accepted += 1;
            }
        }
    }
    assert_eq!(accepted, 100);
    let key = MadeClient::new();
    let token = key.token("someone");
    assert_eq!(dpop_call(&v, &token, &key.proof(&token)), Status::Ok);
}
