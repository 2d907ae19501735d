//! Keys from a JWKS URL served by a real loopback listener: caching, TTL and `max-age`,
//! unknown-`kid` refetch with cooldown, failures with and without last good keys (cases 31-35,
//! 41, 42 in their first form; the full policy is the keys issue's).

mod common;

use common::*;
use jwtguard::{CacheOptions, Clock, Config, Keys, Policy, Status, Verifier};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn verifier(url: &str, clock: &Clock, tune: impl FnOnce(&mut CacheOptions)) -> Verifier {
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(url.to_string()));
    config.clock = clock.clone();
    tune(&mut config.cache);
    Verifier::new(config).unwrap()
}

/// Wait for background refreshes of the verifier's JWKS to finish.
fn settle(v: &Verifier) {
    assert!(v.jwks_source().unwrap().wait_idle(Duration::from_secs(10)));
}

fn status(v: &Verifier, token: &str) -> Status {
    v.verify(token).map_or_else(|e| e.status(), |_| Status::Ok)
}

#[test]
fn keys_are_fetched_once_and_cached() {
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let clock = Clock::manual(NOW);
    let v = verifier(&server.url, &clock, |_| {});
    assert_eq!(server.count(), 0, "building a verifier does not fetch");
    let token = a.token(&good_claims());
    for _ in 0..100 {
        assert_eq!(status(&v, &token), Status::Ok);
    }
    assert_eq!(server.count(), 1);
    // A second verifier on the same URL shares the process-global cache.
    let other = verifier(&server.url, &clock, |_| {});
    assert_eq!(status(&other, &token), Status::Ok);
    assert_eq!(server.count(), 1);
    // Default TTL 600 s without Cache-Control; a background refresh starts 60 s before expiry
    // and the verification that triggers it does not wait for it.
    clock.advance(539.0);
    assert_eq!(status(&v, &token), Status::Ok);
    settle(&v);
    assert_eq!(server.count(), 1);
    clock.advance(2.0);
    assert_eq!(status(&v, &token), Status::Ok);
    settle(&v);
    assert_eq!(server.count(), 2);
    let stats = v.jwks_source().unwrap().stats();
    assert_eq!((stats.fetches_ok, stats.fetches_failed), (2, 0));
}

#[test]
fn case41_max_age_is_honoured_within_bounds() {
    let a = Signer::rs256();
    let token = a.token(&claims_with(json!({"exp": NOW + 200_000})));
    for (cache_control, fresh_for) in [
        ("max-age=120", 120.0),
        ("max-age=5", 60.0),
        ("public, max-age=999999", 86400.0),
    ] {
        let mut reply = Reply::json(&jwks(&[a.jwk(true)]));
        reply
            .headers
            .push(("Cache-Control".into(), cache_control.into()));
        let server = JwksServer::start(reply);
        let clock = Clock::manual(NOW);
        let v = verifier(&server.url, &clock, |c| c.refresh_ahead = Duration::ZERO);
        assert_eq!(status(&v, &token), Status::Ok);
        clock.advance(fresh_for - 1.0);
        assert_eq!(status(&v, &token), Status::Ok);
        settle(&v);
        assert_eq!(server.count(), 1, "{cache_control}");
        clock.advance(2.0);
        assert_eq!(status(&v, &token), Status::Ok);
        settle(&v);
        assert_eq!(server.count(), 2, "{cache_control}");
    }
}

#[test]
fn case31_unknown_kids_refetch_at_most_once_per_cooldown() {
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let clock = Clock::manual(NOW);
    let v = Arc::new(verifier(&server.url, &clock, |_| {}));
    assert_eq!(status(&v, &a.token(&good_claims())), Status::Ok);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let v = v.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let forged = Signer {
                        kid: format!("random-{t}-{i}"),
                        ..Signer::rs256()
                    };
                    assert_eq!(
                        status(&v, &forged.token(&good_claims())),
                        Status::KeyNotFound
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        server.count(),
        3,
        "one initial fetch, one refetch, and one a new kid just after it waits for (once per \
         cooldown)"
    );
    assert_eq!(status(&v, &a.token(&good_claims())), Status::Ok);
    clock.advance(31.0);
    let forged = Signer {
        kid: "later".into(),
        ..Signer::rs256()
    };
    assert_eq!(
        status(&v, &forged.token(&good_claims())),
        Status::KeyNotFound
    );
    assert_eq!(server.count(), 4);
    let stats = v.jwks_source().unwrap().stats();
    assert_eq!(stats.unknown_kid_refetches, 3);
}

#[test]
fn case42_rotation_new_key_verifies_on_first_try() {
    let a = Signer::rs256();
    let b = Signer::rs256_b();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let clock = Clock::manual(NOW);
    let v = verifier(&server.url, &clock, |_| {});
    assert_eq!(status(&v, &a.token(&good_claims())), Status::Ok);
    server.set(Reply::json(&jwks(&[a.jwk(true), b.jwk(true)])));
    assert_eq!(status(&v, &b.token(&good_claims())), Status::Ok);
    assert_eq!(server.count(), 2);
    // The old key is retired; after the next refresh its tokens fail.
    server.set(Reply::json(&jwks(&[b.jwk(true)])));
    clock.advance(601.0);
    let late = |s: &Signer| s.token(&claims_with(json!({"exp": NOW + 7200})));
    assert_eq!(status(&v, &late(&b)), Status::Ok);
    settle(&v);
    assert_eq!(status(&v, &late(&a)), Status::KeyNotFound);
}

#[test]
fn case33_34_35_cold_failures_are_keys_unavailable() {
    let a = Signer::rs256();
    let token = a.token(&good_claims());
    let oversize = format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let mut redirect = Reply::json("");
    redirect.status = 302;
    redirect
        .headers
        .push(("Location".into(), "http://127.0.0.1:9/jwks".into()));
    let mut server_error = Reply::json(&jwks(&[a.jwk(true)]));
    server_error.status = 500;
    let mut not_found = server_error.clone();
    not_found.status = 404;
    let mut slow = Reply::json(&jwks(&[a.jwk(true)]));
    slow.delay = Duration::from_millis(1500);
    for reply in [
        server_error,
        not_found,
        redirect,
        slow,
        Reply::json("not json"),
        Reply::json("[]"),
        Reply::json(r#"{"keys":"x"}"#),
        Reply::json(&oversize),
    ] {
        let server = JwksServer::start(reply.clone());
        let v = verifier(&server.url, &Clock::manual(NOW), |c| {
            c.fetch.total_timeout = Duration::from_millis(500);
        });
        assert_eq!(
            status(&v, &token),
            Status::KeysUnavailable,
            "{:?}",
            reply.status
        );
        assert!(v.jwks_source().unwrap().stats().fetches_failed >= 1);
    }
    // Nothing listening at all.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", dead.local_addr().unwrap());
    drop(dead);
    let v = verifier(&url, &Clock::manual(NOW), |_| {});
    assert_eq!(status(&v, &token), Status::KeysUnavailable);
}

#[test]
fn case33_34_last_good_keys_serve_while_refresh_fails() {
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let clock = Clock::manual(NOW);
    let v = verifier(&server.url, &clock, |_| {});
    let token = a.token(&claims_with(json!({"exp": NOW + 200_000})));
    assert_eq!(status(&v, &token), Status::Ok);
    for bad in ["garbage", "[]", r#"{"keys":"x"}"#] {
        server.set(Reply::json(bad));
        clock.advance(601.0);
        assert_eq!(status(&v, &token), Status::Ok, "{bad}");
        settle(&v);
        assert_eq!(status(&v, &token), Status::Ok, "{bad}");
    }
    assert!(v.jwks_source().unwrap().stats().fetches_failed >= 3);
    // Beyond the stale limit (24 h) the old keys are no longer trusted.
    clock.advance(24.0 * 3600.0);
    assert_eq!(status(&v, &token), Status::KeysUnavailable);
    // Recovery: the next fetch that works brings keys back.
    server.set(Reply::json(&jwks(&[a.jwk(true)])));
    clock.advance(31.0);
    let fresh = a.token(&claims_with(json!({"exp": NOW + 400_000})));
    assert_eq!(status(&v, &fresh), Status::Ok);
}

#[test]
fn plain_http_is_refused_except_to_loopback() {
    let config = Config::new(
        Policy::new(ISSUER, AUDIENCE),
        Keys::Url("http://tenant.example/.well-known/jwks.json".into()),
    );
    assert_eq!(
        Verifier::new(config).err().unwrap().status(),
        Status::ConfigInvalid
    );
}
