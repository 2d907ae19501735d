//! Regression tests for the third outside review (issue 23) that live in the core: each test
//! names the item it covers. Real loopback servers, no mocks.

mod common;

use common::*;
use jwtguard::{Algorithm, Clock, Config, Keys, Policy, Status, Verifier};
use serde_json::{Value, json};
use std::time::Duration;

fn status(v: &Verifier, token: &str) -> Status {
    v.verify(token).map_or_else(|e| e.status(), |_| Status::Ok)
}

/// Item 1: one issuer owning several `iss` names with keys by discovery once fetched only the
/// first name's discovery document, and that issuer's keys then verified tokens claiming any
/// of the names (tenant A acting as tenant B). Each name now discovers its own keys.
#[test]
fn item1_several_names_by_discovery_each_trust_only_their_own_keys() {
    let (a, b) = (Signer::rs256(), Signer::rs256_b());
    let keys_a = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let keys_b = JwksServer::start(Reply::json(&jwks(&[b.jwk(true)])));
    let tenant_a = DiscoveryServer::start(&keys_a.url, Duration::ZERO);
    let tenant_b = DiscoveryServer::start(&keys_b.url, Duration::ZERO);
    let v = Verifier::new(Config::new(
        Policy::new(&tenant_a.issuer, AUDIENCE).with_issuer(&tenant_b.issuer),
        Keys::Discover,
    ))
    .unwrap();
    let (issuer_a, issuer_b) = (&tenant_a.issuer, &tenant_b.issuer);
    for _ in 0..2 {
        assert_eq!(status(&v, &a.token(&live_claims(issuer_a))), Status::Ok);
        assert_eq!(status(&v, &b.token(&live_claims(issuer_b))), Status::Ok);
        // A's key on a token claiming B (and the other way round) under its own kid.
        assert_eq!(
            status(&v, &a.token(&live_claims(issuer_b))),
            Status::KeyNotFound
        );
        assert_eq!(
            status(&v, &b.token(&live_claims(issuer_a))),
            Status::KeyNotFound
        );
        // Under the other issuer's kid: the signature does not verify.
        let forged = with_kid(&a.token(&live_claims(issuer_b)), &b.kid);
        assert_eq!(status(&v, &forged), Status::SignatureInvalid);
    }
    assert_eq!(v.policies().count(), 2, "one issuer per name");
    // Three names: each its own issuer too.
    let c = Signer::es256();
    let keys_c = JwksServer::start(Reply::json(&jwks(&[c.jwk(true)])));
    let tenant_c = DiscoveryServer::start(&keys_c.url, Duration::ZERO);
    let three = Verifier::new(Config::new(
        Policy::new(issuer_a, AUDIENCE)
            .with_issuer(issuer_b)
            .with_issuer(&tenant_c.issuer)
            .with_algorithms(&[Algorithm::RS256, Algorithm::ES256]),
        Keys::Discover,
    ))
    .unwrap();
    assert_eq!(three.policies().count(), 3);
    assert_eq!(
        status(&three, &c.token(&live_claims(&tenant_c.issuer))),
        Status::Ok
    );
    assert_eq!(
        status(&three, &a.token(&live_claims(&tenant_c.issuer))),
        Status::KeyNotFound
    );
    // Each name's keys from its own discovery; a kid the other issuer uses costs at most the
    // one refetch the cooldown allows.
    for keys in [&keys_a, &keys_b] {
        assert!((1..=2).contains(&keys.count()), "{}", keys.count());
    }
}

/// Item 1: two names of one issuer (a canonical and a custom domain) whose discovery documents
/// both publish one key set keep working, with one fetch of that key set; so do names sharing
/// keys through an explicit `jwks_uri`.
#[test]
fn item1_two_names_of_one_issuer_share_their_key_set() {
    let a = Signer::rs256();
    let keys = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let canonical = DiscoveryServer::start(&keys.url, Duration::ZERO);
    let custom = DiscoveryServer::start(&keys.url, Duration::ZERO);
    let v = Verifier::new(Config::new(
        Policy::new(&canonical.issuer, AUDIENCE).with_issuer(&custom.issuer),
        Keys::Discover,
    ))
    .unwrap();
    assert_eq!(
        status(&v, &a.token(&live_claims(&canonical.issuer))),
        Status::Ok
    );
    assert_eq!(
        status(&v, &a.token(&live_claims(&custom.issuer))),
        Status::Ok
    );
    assert_eq!(keys.count(), 1, "one key set, fetched once");
    assert_eq!(v.jwks_stats().fetches_ok, 1);

    let explicit = Verifier::new(Config::new(
        Policy::new("https://one.example/", AUDIENCE).with_issuer("https://two.example/"),
        Keys::Url(keys.url.clone()),
    ))
    .unwrap();
    assert_eq!(explicit.policies().count(), 1);
    for iss in ["https://one.example/", "https://two.example/"] {
        assert_eq!(status(&explicit, &a.token(&live_claims(iss))), Status::Ok);
    }
}

/// Item 1: a name whose discovery document names another issuer is not that issuer.
#[test]
fn item1_a_names_discovery_must_name_it() {
    let a = Signer::rs256();
    let keys = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let genuine = DiscoveryServer::start(&keys.url, Duration::ZERO);
    let liar = JwksServer::start(Reply::json("{}"));
    let liar_issuer = liar.url.replace(".well-known/jwks.json", "");
    liar.set(Reply::json(
        &json!({"issuer": genuine.issuer, "jwks_uri": keys.url}).to_string(),
    ));
    let mut config = Config::new(
        Policy::new(&genuine.issuer, AUDIENCE).with_issuer(&liar_issuer),
        Keys::Discover,
    );
    config.cache.non_blocking = false;
    let v = Verifier::new(config).unwrap();
    assert_eq!(
        status(&v, &a.token(&live_claims(&genuine.issuer))),
        Status::Ok
    );
    assert_ne!(status(&v, &a.token(&live_claims(&liar_issuer))), Status::Ok);
}

/// A token signed by the Ed25519 fixture key under the header `alg` given.
fn ed_token(alg: &str, claims: &Value) -> String {
    let header = json!({"alg": alg, "kid": "ed", "typ": "at+jwt"});
    Signer::eddsa().sign_raw(&header.to_string(), &claims.to_string())
}

fn ed_verifier(key_alg: Option<&str>, allowed: &[Algorithm]) -> Verifier {
    let mut jwk = Signer::eddsa().jwk(false);
    if let Some(alg) = key_alg {
        jwk["alg"] = json!(alg);
    }
    let mut config = Config::new(
        Policy::new(ISSUER, AUDIENCE).with_algorithms(allowed),
        Keys::Json(jwks(&[jwk])),
    );
    config.clock = Clock::manual(NOW);
    Verifier::new(config).unwrap()
}

/// Item 7: RFC 9864's fully specified `Ed25519` is accepted wherever `EdDSA` on an Ed25519 key
/// is, and may be configured by itself.
#[test]
fn item7_ed25519_is_accepted_wherever_eddsa_is() {
    let claims = good_claims();
    let (ed25519, eddsa) = (ed_token("Ed25519", &claims), ed_token("EdDSA", &claims));
    assert_eq!("Ed25519".parse::<Algorithm>().unwrap(), Algorithm::Ed25519);
    for key_alg in [None, Some("EdDSA"), Some("Ed25519")] {
        let v = ed_verifier(key_alg, &[Algorithm::EdDSA]);
        assert_eq!(status(&v, &ed25519), Status::Ok, "key alg {key_alg:?}");
        assert_eq!(status(&v, &eddsa), Status::Ok, "key alg {key_alg:?}");
        // Configured by itself: the polymorphic name is not implied.
        let only = ed_verifier(key_alg, &[Algorithm::Ed25519]);
        assert_eq!(status(&only, &ed25519), Status::Ok, "key alg {key_alg:?}");
        assert_eq!(status(&only, &eddsa), Status::AlgorithmNotAllowed);
        let rsa_only = ed_verifier(key_alg, &[Algorithm::RS256]);
        assert_eq!(status(&rsa_only, &ed25519), Status::AlgorithmNotAllowed);
    }
    // A key published for another algorithm is not an Ed25519 key.
    let mut wrong = Signer::rs256().jwk(false);
    wrong["alg"] = json!("Ed25519");
    let keys =
        jwtguard::KeySet::from_json(jwks(&[wrong, Signer::eddsa().jwk(false)]).as_bytes()).unwrap();
    assert_eq!(keys.len(), 1);
    // A forged signature under the new name is still refused.
    let mut forged = ed25519.clone();
    forged.pop();
    forged.push(if ed25519.ends_with('A') { 'B' } else { 'A' });
    assert_ne!(
        status(&ed_verifier(None, &[Algorithm::EdDSA]), &forged),
        Status::Ok
    );
    assert_eq!(
        jwtguard::policy::permitted_names(&[Algorithm::RS256, Algorithm::EdDSA]),
        "RS256 EdDSA Ed25519"
    );
    assert_eq!(
        jwtguard::policy::permitted_names(&[Algorithm::Ed25519]),
        "Ed25519"
    );
}

/// Item 8: a key set that rotates twice within a second: the second new key's first token
/// waits for the next permitted refetch (it was refused, and accepted a second later), in a
/// blocking host and in an event-loop host (which is told to wait, then allowed).
#[test]
fn item8_a_second_new_kid_within_a_second_of_a_refetch_is_accepted() {
    use jwtguard::answer::{Judgement, judge};
    let (a, b, c) = (Signer::rs256(), Signer::rs256_b(), Signer::es256());
    for non_blocking in [false, true] {
        let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
        let mut config = Config::new(
            Policy::new(ISSUER, AUDIENCE).with_algorithms(&[Algorithm::RS256, Algorithm::ES256]),
            Keys::Url(server.url.clone()),
        );
        config.cache.non_blocking = non_blocking;
        let v = Verifier::new(config).unwrap();
        v.refresh_keys().unwrap();
        let claims = live_claims(ISSUER);
        // An event-loop host verifies, and retries on a timer while told to wait.
        let host = |token: &str| {
            for _ in 0..200 {
                match judge(&v, || v.verify(token), &[], non_blocking) {
                    Judgement::Allow(_) => return Status::Ok,
                    Judgement::Refuse(status) => return status,
                    Judgement::Wait => std::thread::sleep(Duration::from_millis(25)),
                }
            }
            panic!("still waiting after 5 s");
        };
        assert_eq!(host(&a.token(&claims)), Status::Ok);
        server.set(Reply::json(&jwks(&[a.jwk(true), b.jwk(true)])));
        assert_eq!(host(&b.token(&claims)), Status::Ok, "first rotation");
        server.set(Reply::json(&jwks(&[a.jwk(true), b.jwk(true), c.jwk(true)])));
        assert_eq!(
            host(&c.token(&claims)),
            Status::Ok,
            "second rotation within a second (non_blocking {non_blocking})"
        );
        // A kid no key set has, so soon after: a flood's, refused without another wait.
        assert_eq!(
            host(&with_kid(&a.token(&claims), "never-published")),
            Status::KeyNotFound
        );
        assert!(server.count() <= 4, "{}", server.count());
    }
}

/// Item 12: one-line changes no test noticed (a mutation sample), each now stated.
#[test]
fn item12_a_fetch_that_ended_meanwhile_makes_an_event_loop_host_wait() {
    use jwtguard::answer::{Judgement, judge};
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(server.url.clone()));
    config.cache.non_blocking = true;
    let v = Verifier::new(config).unwrap();
    // The verification ran while a fetch ended: nothing is in flight now, but the keys may
    // have changed since it looked, so it is worth one more try.
    let judged = judge(
        &v,
        || {
            v.refresh_keys().unwrap();
            Err(Status::KeyNotFound.into())
        },
        &[],
        true,
    );
    assert!(!v.fetch_in_progress());
    assert!(matches!(judged, Judgement::Wait), "{judged:?}");
    // Nothing moved and nothing runs: refused at once.
    let judged = judge(&v, || Err(Status::KeyNotFound.into()), &[], true);
    assert!(matches!(judged, Judgement::Refuse(Status::KeyNotFound)));
    // A host that may not wait is answered at once either way.
    let judged = judge(
        &v,
        || {
            v.refresh_keys().unwrap();
            Err(Status::KeyNotFound.into())
        },
        &[],
        false,
    );
    assert!(matches!(judged, Judgement::Refuse(Status::KeyNotFound)));
}

#[test]
fn item12_settings_read_back_as_written() {
    use jwtguard::DpopMode;
    for (text, mode) in [
        ("off", DpopMode::Off),
        ("allowed", DpopMode::Allowed),
        ("required", DpopMode::Required),
    ] {
        assert_eq!(text.parse::<DpopMode>().unwrap(), mode);
        assert_eq!(mode.name(), text);
    }
    for bad in ["", "Allowed", "on", "allow"] {
        assert_eq!(
            bad.parse::<DpopMode>().unwrap_err().status(),
            Status::ConfigInvalid
        );
    }
    let policy = Policy::new("https://a.example/", "api").with_issuer("https://b.example/");
    assert_eq!(
        policy.issuers(),
        ["https://a.example/", "https://b.example/"]
    );
    assert_eq!(policy.audiences(), ["api"]);
}

/// Item 12: a control character is refused as such (400), before the scheme is read.
#[test]
fn item12_a_control_character_is_malformed_whatever_the_scheme() {
    for bad in [
        "Basic a\u{1}b",
        "Token x\r\nX-Admin: 1",
        "Basic\u{7f} x",
        "B\u{0}earer x",
    ] {
        let e = jwtguard::verify::authorization_token(Some(bad)).unwrap_err();
        assert_eq!(e.status(), Status::AuthorizationHeaderMalformed, "{bad:?}");
        assert!(e.to_string().contains("control or non-ASCII"), "{e}");
    }
}

/// Item 13: the dev issuer's admin endpoints refuse what they would not read (a JSON body
/// without its Content-Type was read as a form: `{"retire": true}` dropped, both keys kept).
#[test]
fn item13_the_dev_issuers_admin_refuses_what_it_does_not_read() {
    let issuer = DevIssuer::start(&[]);
    let kids = |i: &DevIssuer| i.stats()["kids"].as_array().unwrap().len();
    for path in ["admin/rotate", "admin/fault"] {
        let (status, answer) = issuer.admin(path, None, r#"{"retire": true}"#);
        assert_eq!(status, 400, "{path}");
        assert!(
            answer["error_description"]
                .as_str()
                .unwrap()
                .contains("Content-Type: application/json"),
            "{answer}"
        );
        let (status, _) = issuer.admin(path, Some("text/plain"), r#"{"mode": "off"}"#);
        assert_eq!(status, 400, "{path}");
        let (status, answer) = issuer.admin(path, Some("application/json"), r#"{"retier": true}"#);
        assert_eq!(status, 400, "{path}");
        let why = answer["error_description"].as_str().unwrap();
        assert!(why.contains("unknown parameter \"retier\""), "{why}");
        let (status, _) = issuer.admin(path, Some("application/json"), "[1]");
        assert_eq!(status, 400, "{path}");
    }
    assert_eq!(kids(&issuer), 1, "nothing rotated");
    // What it reads works: no body (no parameters), and JSON.
    assert_eq!(issuer.admin("admin/rotate", None, "").0, 200);
    assert_eq!(kids(&issuer), 2);
    let (status, _) = issuer.admin(
        "admin/rotate",
        Some("application/json"),
        r#"{"retire": true}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(kids(&issuer), 1);
    let fault = r#"{"mode": "off", "endpoint": "jwks"}"#;
    assert_eq!(
        issuer
            .admin("admin/fault", Some("application/json"), fault)
            .0,
        200
    );
}

/// The refetch cooldown ends exactly when it says: a kid looked for at t may be looked for
/// again at t + cooldown, not before.
#[test]
fn a_kids_cooldown_ends_on_time() {
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let clock = Clock::manual(NOW);
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(server.url.clone()));
    config.clock = clock.clone();
    let v = Verifier::new(config).unwrap();
    let unknown = with_kid(&a.token(&good_claims()), "unknown");
    assert_eq!(status(&v, &unknown), Status::KeyNotFound);
    assert_eq!(server.count(), 2, "the first fetch and one refetch");
    clock.advance(29.999);
    assert_eq!(status(&v, &unknown), Status::KeyNotFound);
    assert_eq!(server.count(), 2, "within the cooldown");
    clock.advance(0.001);
    assert_eq!(status(&v, &unknown), Status::KeyNotFound);
    assert_eq!(server.count(), 3, "the cooldown is over");
}

/// Item 8: the refetch a new kid waits for is made when it is permitted, a second after the
/// one before (the wait is a lower bound a sleep guarantees, not a speed), and that kid's
/// cooldown runs from then.
#[test]
fn item8_the_waited_refetch_is_made_when_permitted_and_counted_from_then() {
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let clock = Clock::manual(NOW);
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(server.url.clone()));
    config.clock = clock.clone();
    let v = Verifier::new(config).unwrap();
    let token = a.token(&good_claims());
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(status(&v, &with_kid(&token, "first")), Status::KeyNotFound);
    assert_eq!(server.count(), 2);
    clock.advance(0.5);
    let started = std::time::Instant::now();
    assert_eq!(status(&v, &with_kid(&token, "second")), Status::KeyNotFound);
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "the second refetch waited for its turn: {:?}",
        started.elapsed()
    );
    assert_eq!(server.count(), 3);
    // "second" was looked for at NOW + 1: its cooldown ends at NOW + 31, not NOW + 30.5.
    clock.advance(30.2);
    assert_eq!(status(&v, &with_kid(&token, "second")), Status::KeyNotFound);
    assert_eq!(server.count(), 3, "still within the cooldown");
    clock.advance(0.3);
    assert_eq!(status(&v, &with_kid(&token, "second")), Status::KeyNotFound);
    assert_eq!(server.count(), 4, "the cooldown is over");
}
