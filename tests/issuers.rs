//! Several issuers in one verifier (issue 12): a token's unverified `iss` selects the issuer,
//! then only that issuer's keys and policy apply; an unknown `iss` costs no fetch.

mod common;

use common::*;
use jwtguard::verify::IssuerConfig;
use jwtguard::{Algorithm, Clock, Config, Keys, Policy, Status, Verifier};
use serde_json::{Value, json};

const ISSUER_B: &str = "https://other-tenant.example/";
const AUDIENCE_B: &str = "https://api-b.example";

fn status(v: &Verifier, token: &str) -> Status {
    v.verify(token).map_or_else(|e| e.status(), |_| Status::Ok)
}

fn claims_b(changes: Value) -> Value {
    let mut c = claims_with(json!({"iss": ISSUER_B, "aud": AUDIENCE_B}));
    for (k, v) in changes.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Issuer A: RS256 with key `rsa-a`, audience AUDIENCE. Issuer B: ES256 and RS256 with keys
/// `es-p256` and `rsa-b`, audience AUDIENCE_B, leeway 0.
fn two_fixed(token_cache: usize, clock: &Clock) -> Verifier {
    let mut config = Config::new(
        Policy::new(ISSUER, AUDIENCE),
        Keys::Json(jwks(&[Signer::rs256().jwk(true)])),
    )
    .with_issuer(IssuerConfig::new(
        Policy::new(ISSUER_B, AUDIENCE_B)
            .with_algorithms(&[Algorithm::ES256, Algorithm::RS256])
            .with_leeway(0),
        Keys::Json(jwks(&[
            Signer::es256().jwk(true),
            Signer::rs256_b().jwk(true),
        ])),
    ));
    config.clock = clock.clone();
    config.token_cache = token_cache;
    Verifier::new(config).unwrap()
}

#[test]
fn each_issuers_tokens_verify_against_its_own_keys_and_policy() {
    for cache in [0, 100] {
        let v = two_fixed(cache, &Clock::manual(NOW));
        let a = Signer::rs256().token(&good_claims());
        let b = Signer::es256().token(&claims_b(json!({})));
        let b_rsa = Signer::rs256_b().token(&claims_b(json!({})));
        for _ in 0..2 {
            assert_eq!(v.verify(&a).unwrap().get_str("iss").unwrap(), ISSUER);
            assert_eq!(v.verify(&b).unwrap().get_str("iss").unwrap(), ISSUER_B);
            assert_eq!(status(&v, &b_rsa), Status::Ok);
        }

        // B's key signing a token that claims A: A's keys do not know it, under its own kid
        // or under A's kid.
        let forged = Signer::rs256_b().token(&good_claims());
        assert_eq!(status(&v, &forged), Status::KeyNotFound, "cache {cache}");
        assert_eq!(
            status(
                &v,
                &with_kid_signed(&Signer::rs256_b(), "rsa-a", &good_claims())
            ),
            Status::SignatureInvalid
        );
        // A's key signing a token that claims B, with B's kid.
        assert_eq!(
            status(
                &v,
                &with_kid_signed(&Signer::rs256(), "rsa-b", &claims_b(json!({})))
            ),
            Status::SignatureInvalid
        );
        // ES256 is B's algorithm, not A's.
        let es_for_a = Signer::es256().token(&good_claims());
        assert_eq!(status(&v, &es_for_a), Status::AlgorithmNotAllowed);
        // Each issuer's audience: A's audience in a B token, and the reverse.
        let b_with_a_aud = Signer::es256().token(&claims_b(json!({"aud": AUDIENCE})));
        assert_eq!(status(&v, &b_with_a_aud), Status::AudienceInvalid);
        let a_with_b_aud = Signer::rs256().token(&claims_with(json!({"aud": AUDIENCE_B})));
        assert_eq!(status(&v, &a_with_b_aud), Status::AudienceInvalid);
        // Each issuer's leeway: 30 s past exp is within A's 60 s, not within B's 0.
        let late = json!({"exp": NOW - 30, "iat": NOW - 100});
        assert_eq!(
            status(&v, &Signer::rs256().token(&claims_with(late.clone()))),
            Status::Ok
        );
        assert_eq!(
            status(&v, &Signer::es256().token(&claims_b(late))),
            Status::TokenExpired
        );
    }
}

/// A token signed by `signer` whose header names `kid`.
fn with_kid_signed(signer: &Signer, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": signer.alg_name(), "kid": kid, "typ": "at+jwt"});
    signer.sign_raw(&header.to_string(), &claims.to_string())
}

#[test]
fn an_iss_no_issuer_owns_is_refused_before_anything_else() {
    let v = two_fixed(100, &Clock::manual(NOW));
    for claims in [
        claims_with(json!({"iss": "https://evil.example/"})),
        claims_with(json!({"iss": "https://tenant.example"})),
        claims_with(json!({"iss": "HTTPS://TENANT.EXAMPLE/"})),
        claims_with(json!({"iss": null})),
        claims_with(json!({"iss": 7})),
        claims_with(json!({"iss": [ISSUER]})),
        claims_with(json!({"iss": {"iss": ISSUER}})),
    ] {
        let token = Signer::rs256().token(&claims);
        assert_eq!(status(&v, &token), Status::IssuerInvalid, "{claims}");
    }
    // Not a token at all, or a payload that is not an object: the format error, as with one
    // issuer.
    assert_eq!(status(&v, "a.b"), Status::TokenMalformed);
    let array = Signer::rs256().sign_raw(r#"{"alg":"RS256","kid":"rsa-a"}"#, "[1]");
    assert_eq!(status(&v, &array), Status::PayloadInvalid);
    assert_eq!(v.token_cache_stats().hits, 0);
}

#[test]
fn an_iss_may_belong_to_one_issuer_only() {
    let config = Config::new(
        Policy::new(ISSUER, AUDIENCE),
        Keys::Json(jwks(&[Signer::rs256().jwk(true)])),
    )
    .with_issuer(IssuerConfig::new(
        Policy::new(ISSUER_B, AUDIENCE).with_issuer(ISSUER),
        Keys::Json(jwks(&[Signer::rs256_b().jwk(true)])),
    ));
    let err = Verifier::new(config).err().unwrap();
    assert_eq!(err.status(), Status::ConfigInvalid);
    assert!(err.to_string().contains("configured twice"), "{err}");
    // An incomplete added issuer fails the whole verifier.
    let config = Config::new(
        Policy::new(ISSUER, AUDIENCE),
        Keys::Json(jwks(&[Signer::rs256().jwk(true)])),
    )
    .with_issuer(IssuerConfig::new(
        Policy::empty().with_issuer(ISSUER_B),
        Keys::Discover,
    ));
    assert_eq!(
        Verifier::new(config).err().unwrap().status(),
        Status::ConfigInvalid
    );
}

/// Two issuers, each with its JWKS served over loopback.
fn two_served(clock: &Clock) -> (JwksServer, JwksServer, Verifier) {
    let server_a = JwksServer::start(Reply::json(&jwks(&[Signer::rs256().jwk(true)])));
    let server_b = JwksServer::start(Reply::json(&jwks(&[Signer::rs256_b().jwk(true)])));
    let mut config = Config::new(
        Policy::new(ISSUER, AUDIENCE),
        Keys::Url(server_a.url.clone()),
    )
    .with_issuer(IssuerConfig::new(
        Policy::new(ISSUER_B, AUDIENCE_B),
        Keys::Url(server_b.url.clone()),
    ));
    config.clock = clock.clone();
    (server_a, server_b, Verifier::new(config).unwrap())
}

#[test]
fn keys_are_fetched_only_for_the_issuer_a_token_names() {
    let (server_a, server_b, v) = two_served(&Clock::manual(NOW));
    assert!(!v.keys_ready());
    // Unknown iss, and B's key claiming an unknown issuer: no fetch anywhere.
    for _ in 0..5 {
        let stranger = Signer::rs256_b().token(&claims_with(json!({"iss": "https://x/"})));
        assert_eq!(status(&v, &stranger), Status::IssuerInvalid);
    }
    assert_eq!((server_a.count(), server_b.count()), (0, 0));
    // A token of A fetches A's keys only.
    assert_eq!(
        status(&v, &Signer::rs256().token(&good_claims())),
        Status::Ok
    );
    assert_eq!((server_a.count(), server_b.count()), (1, 0));
    assert!(!v.keys_ready(), "B's keys are not loaded yet");
    // B's key claiming A: A's keys do not have it (A may refetch once for the unknown kid,
    // B's server is never asked).
    let forged = Signer::rs256_b().token(&good_claims());
    assert_eq!(status(&v, &forged), Status::KeyNotFound);
    assert_eq!(server_b.count(), 0);
    // B's own token.
    let b = Signer::rs256_b().token(&claims_b(json!({})));
    assert_eq!(status(&v, &b), Status::Ok);
    assert_eq!(server_b.count(), 1);
    assert!(v.keys_ready());
    assert_eq!(v.jwks_sources().count(), 2);
    assert!(v.jwks_stats().fetches_ok >= 2);
}

#[test]
fn refresh_fetches_every_issuer_and_a_rotation_at_one_leaves_the_other_cached() {
    let (server_a, server_b, v) = two_served(&Clock::manual(NOW));
    v.refresh_keys().unwrap();
    assert_eq!((server_a.count(), server_b.count()), (1, 1));
    assert!(v.keys_ready());
    let a = Signer::rs256().token(&good_claims());
    let b = Signer::rs256_b().token(&claims_b(json!({})));
    for _ in 0..3 {
        assert_eq!(status(&v, &a), Status::Ok);
        assert_eq!(status(&v, &b), Status::Ok);
    }
    assert_eq!(v.token_cache_stats().hits, 4);
    // A retires its key: after a refresh A's cached token is refused, B's still a hit.
    server_a.set(Reply::json(&jwks(&[Signer::es256().jwk(true)])));
    v.refresh_keys().unwrap();
    assert_eq!(status(&v, &a), Status::KeyNotFound);
    let hits = v.token_cache_stats().hits;
    assert_eq!(status(&v, &b), Status::Ok);
    assert_eq!(v.token_cache_stats().hits, hits + 1);
}

#[test]
fn one_issuer_keeps_the_single_issuer_rules() {
    // With one issuer nothing is read before the signature: a wrong iss with a good
    // signature is the claim check's issuer_invalid, a bad signature is found first.
    let mut config = Config::new(
        Policy::new(ISSUER, AUDIENCE),
        Keys::Json(jwks(&[Signer::rs256().jwk(true)])),
    );
    config.clock = Clock::manual(NOW);
    let v = Verifier::new(config).unwrap();
    let wrong_iss = Signer::rs256().token(&claims_with(json!({"iss": "https://x/"})));
    assert_eq!(status(&v, &wrong_iss), Status::IssuerInvalid);
    let forged = with_kid_signed(
        &Signer::rs256_b(),
        "rsa-a",
        &claims_with(json!({"iss": "https://x/"})),
    );
    assert_eq!(status(&v, &forged), Status::SignatureInvalid);
    assert_eq!(v.policies().count(), 1);
}
