//! The cache policy against a real `jwtguard dev-issuer` over loopback, with a movable clock
//! where hours pass (SECURITY-CASES 31-35, 41-43): unknown-kid floods, rotation, every fault
//! mode for hours, the stale limit, recovery, discovery, snapshots, non-blocking mode.

mod common;

use common::*;
use jwtguard::{CacheOptions, Clock, Config, Keys, Policy, Status, Verifier};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOUR: f64 = 3600.0;

fn verifier_for(
    issuer: &DevIssuer,
    keys: Keys,
    clock: &Clock,
    tune: impl FnOnce(&mut CacheOptions),
) -> Verifier {
    let mut config = Config::new(Policy::new(issuer.url.clone(), AUDIENCE), keys);
    config.clock = clock.clone();
    tune(&mut config.cache);
    Verifier::new(config).unwrap()
}

fn status(v: &Verifier, token: &str) -> Status {
    v.verify(token).map_or_else(|e| e.status(), |_| Status::Ok)
}

fn settle(v: &Verifier) {
    if let Some(source) = v.jwks_source() {
        assert!(source.wait_idle(Duration::from_secs(15)));
    }
}

/// The `kid` of a token's header.
fn kid_of(token: &str) -> String {
    let header = jwtguard::token::b64_decode(token.split('.').next().unwrap()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

#[test]
fn flood_of_unknown_kids_fetches_at_most_once_per_cooldown() {
    let issuer = DevIssuer::start(&[]);
    let clock = Clock::manual(now());
    let v = Arc::new(verifier_for(
        &issuer,
        Keys::Url(issuer.jwks_uri()),
        &clock,
        |_| {},
    ));
    let valid = issuer.token("read:messages", 3600);
    assert_eq!(status(&v, &valid), Status::Ok);
    assert_eq!(issuer.jwks_requests(), 1);

    // 10,000 tokens with random unknown kids from 8 threads, valid tokens verifying meanwhile.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (v, valid) = (v.clone(), valid.clone());
            std::thread::spawn(move || {
                for i in 0..1250 {
                    let forged = with_kid(&valid, &format!("forged-{t}-{i}"));
                    assert_eq!(status(&v, &forged), Status::KeyNotFound);
                    if i % 25 == 0 {
                        assert_eq!(status(&v, &valid), Status::Ok);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        issuer.jwks_requests(),
        3,
        "the initial fetch, one refetch, and the one a new kid just after it may wait for \
         (once per cooldown); the rest of the flood answered at once"
    );
    assert_eq!(v.count(Status::KeyNotFound), 10_000);
    // The next cooldown allows exactly as many more.
    clock.advance(31.0);
    for i in 0..100 {
        let forged = with_kid(&valid, &format!("later-{i}"));
        assert_eq!(status(&v, &forged), Status::KeyNotFound);
    }
    assert_eq!(issuer.jwks_requests(), 5);
}

#[test]
fn rotation_new_key_at_once_retired_key_after_refresh() {
    let issuer = DevIssuer::start(&[]);
    let clock = Clock::manual(now());
    let v = verifier_for(&issuer, Keys::Url(issuer.jwks_uri()), &clock, |_| {});
    let old = issuer.token("read:messages", 10 * 3600);
    assert_eq!(status(&v, &old), Status::Ok);

    issuer.rotate(false);
    let new = issuer.token("read:messages", 10 * 3600);
    assert_eq!(
        status(&v, &new),
        Status::Ok,
        "the new key verifies on its first try"
    );
    assert_eq!(
        status(&v, &old),
        Status::Ok,
        "the old key is still published"
    );

    // A second new kid within a second of that refetch waits for the next permitted one
    // (review 3, item 8: it was refused); a third so soon, within the cooldown, is a flood,
    // refused at once; after the cooldown it verifies.
    issuer.rotate(false);
    let newer = issuer.token("read:messages", 10 * 3600);
    assert_eq!(status(&v, &newer), Status::Ok, "a second rotation at once");
    issuer.rotate(true);
    let newest = issuer.token("read:messages", 10 * 3600);
    assert_eq!(status(&v, &newest), Status::KeyNotFound);
    clock.advance(31.0);
    assert_eq!(status(&v, &newest), Status::Ok);
    // The retired keys disappear at the next refresh (the dev issuer says max-age=300).
    clock.advance(271.0);
    assert_eq!(status(&v, &newest), Status::Ok);
    settle(&v);
    assert_eq!(status(&v, &old), Status::KeyNotFound);
    assert_eq!(status(&v, &new), Status::KeyNotFound);
}

#[test]
fn keys_published_ahead_are_known_before_they_sign() {
    // The dev issuer's `ahead` rotation: the new key is only published; the key published by
    // the rotation before signs (`keep: 1` retires the one that signed until then). A verifier refreshing on
    // its TTL knows every signer before its first token: no token is refused and no refetch
    // for an unknown kid is needed, however often the issuer rotates.
    let issuer = DevIssuer::start(&[]);
    let clock = Clock::manual(now());
    let v = verifier_for(&issuer, Keys::Url(issuer.jwks_uri()), &clock, |_| {});
    let first = issuer.token("read:messages", 10 * 3600);
    assert_eq!(status(&v, &first), Status::Ok);
    let one = issuer.rotate_with(json!({"ahead": true, "keep": 1}));
    assert_eq!(one["published"].as_array().unwrap().len(), 2);
    assert_ne!(
        one["signing"], one["kid"],
        "published ahead, not signing yet"
    );
    assert_eq!(kid_of(&issuer.token("read:messages", 3600)), kid_of(&first));
    let requests = issuer.jwks_requests();
    let mut current = first;
    for _ in 0..3 {
        clock.advance(301.0); // the dev issuer's max-age: the next lookup refreshes
        assert_eq!(status(&v, &current), Status::Ok);
        settle(&v);
        let previous = issuer.rotate_with(json!({"ahead": true, "keep": 1}));
        let signer = previous["signing"].as_str().unwrap().to_string();
        let published: Vec<&str> = previous["published"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(published.len(), 2, "keep 1: the old signer is retired");
        assert_eq!(published[0], signer);
        let token = issuer.token("read:messages", 3600);
        assert_eq!(kid_of(&token), signer);
        assert_eq!(
            status(&v, &token),
            Status::Ok,
            "the signer was fetched before it signed"
        );
        current = token;
    }
    assert_eq!(
        issuer.jwks_requests(),
        requests + 3,
        "one refresh per TTL, no refetch for a kid"
    );
    // A plain rotation still signs with the new key at once; `keep` must be a count.
    let plain = issuer.rotate_with(json!({}));
    assert_eq!(plain["signing"], plain["kid"]);
    for bad in [json!(-1), json!("1"), json!(1.5)] {
        assert_eq!(issuer.rotate_status(json!({"keep": bad})), 400, "{bad}");
    }
}

#[test]
fn every_fault_for_six_hours_then_the_stale_limit_then_recovery() {
    let modes = [
        json!({"mode": "status", "status": 500}),
        json!({"mode": "status", "status": 404}),
        json!({"mode": "garbage"}),
        json!({"mode": "oversize"}),
        json!({"mode": "drop"}),
        json!({"mode": "delay", "ms": 3000}),
    ];
    let runs: Vec<_> = modes
        .into_iter()
        .map(|mode| {
            std::thread::spawn(move || {
                let issuer = DevIssuer::start(&[]);
                let clock = Clock::manual(now());
                let v = verifier_for(&issuer, Keys::Url(issuer.jwks_uri()), &clock, |c| {
                    c.fetch.total_timeout = Duration::from_millis(400);
                });
                let token = issuer.token("read:messages", 40 * 3600);
                assert_eq!(status(&v, &token), Status::Ok);
                issuer.fault(mode.clone());
                let before = issuer.jwks_requests();
                for _ in 0..12 {
                    clock.advance(HOUR / 2.0);
                    assert_eq!(status(&v, &token), Status::Ok, "{mode} on stale keys");
                    settle(&v);
                }
                let stats = v.jwks_source().unwrap().stats();
                assert!(stats.fetches_failed >= 6, "{mode}: {stats:?}");
                assert!(stats.stale_hits >= 6, "{mode}: {stats:?}");
                assert!(
                    issuer.jwks_requests() > before,
                    "{mode}: refreshes were attempted"
                );
                // Past 24 h since the last good fetch: keys unavailable (503).
                clock.advance(18.5 * HOUR);
                let s = status(&v, &token);
                assert_eq!(s, Status::KeysUnavailable, "{mode}");
                assert_eq!(s.http_status(), 503);
                // The fault clears; the next attempt after the backoff (at most 300 s + 20%
                // jitter) recovers.
                issuer.fault(json!({"mode": "off"}));
                clock.advance(361.0);
                assert_eq!(status(&v, &token), Status::Ok, "{mode} recovers");
            })
        })
        .collect();
    for run in runs {
        run.join().unwrap();
    }
}

#[test]
fn etag_revalidation_counts_not_modified() {
    let issuer = DevIssuer::start(&["--jwks-max-age", "60"]);
    let clock = Clock::manual(now());
    let v = verifier_for(&issuer, Keys::Url(issuer.jwks_uri()), &clock, |_| {});
    let token = issuer.token("read:messages", 3600);
    assert_eq!(status(&v, &token), Status::Ok);
    clock.advance(61.0);
    assert_eq!(status(&v, &token), Status::Ok);
    settle(&v);
    let stats = v.jwks_source().unwrap().stats();
    assert_eq!((stats.fetches_ok, stats.fetches_not_modified), (1, 1));
    assert_eq!(issuer.jwks_requests(), 2);
    // Fresh again for another max-age.
    clock.advance(20.0);
    assert_eq!(status(&v, &token), Status::Ok);
    settle(&v);
    assert_eq!(issuer.jwks_requests(), 2);
}

#[test]
fn discovery_from_the_issuer_alone() {
    let issuer = DevIssuer::start(&[]);
    let v = verifier_for(&issuer, Keys::Discover, &Clock::System, |_| {});
    assert!(
        v.jwks_source().is_none(),
        "building does not touch the network"
    );
    let token = issuer.token("read:messages", 600);
    let claims = v.verify(&token).unwrap();
    assert!(claims.has_scope("read:messages"));
    assert_eq!(v.jwks_source().unwrap().url(), issuer.jwks_uri());
    // A discovery document naming another issuer is refused.
    let mut config = Config::new(
        Policy::new(issuer.url.trim_end_matches('/'), AUDIENCE),
        Keys::Discover,
    );
    config.cache.backoff_initial = Duration::from_millis(1);
    let wrong = Verifier::new(config).unwrap();
    assert_eq!(status(&wrong, &token), Status::KeysUnavailable);
}

#[test]
fn non_blocking_mode_never_waits_on_the_network() {
    let issuer = DevIssuer::start(&[]);
    let token = issuer.token("read:messages", 3600);
    issuer.fault(json!({"mode": "delay", "ms": 2000}));
    let v = verifier_for(&issuer, Keys::Url(issuer.jwks_uri()), &Clock::System, |c| {
        c.non_blocking = true;
    });
    // Cold cache: answered at once while the fetch runs in the background.
    let started = Instant::now();
    assert_eq!(status(&v, &token), Status::KeysUnavailable);
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    settle(&v);
    assert_eq!(status(&v, &token), Status::Ok);
    // An unknown kid during a slow issuer: answered at once too.
    issuer.rotate(false);
    let rotated = issuer.token("read:messages", 3600);
    let started = Instant::now();
    assert_eq!(status(&v, &rotated), Status::KeyNotFound);
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    settle(&v);
    assert_eq!(
        status(&v, &rotated),
        Status::Ok,
        "the background refetch brought the new key"
    );
}

#[test]
fn cold_start_without_snapshot_is_unavailable_quickly() {
    let mut issuer = DevIssuer::start(&[]);
    let token = issuer.token("read:messages", 3600);
    issuer.stop();
    let v = verifier_for(
        &issuer,
        Keys::Url(issuer.jwks_uri()),
        &Clock::System,
        |_| {},
    );
    let started = Instant::now();
    assert_eq!(status(&v, &token), Status::KeysUnavailable);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Inside the backoff the answer comes without another attempt.
    assert_eq!(status(&v, &token), Status::KeysUnavailable);
    assert_eq!(v.jwks_source().unwrap().stats().fetches_failed, 1);
}

#[test]
fn many_threads_verify_through_refreshes_and_rotations() {
    let issuer = DevIssuer::start(&["--jwks-max-age", "60"]);
    let clock = Clock::manual(now());
    let v = Arc::new(verifier_for(
        &issuer,
        Keys::Url(issuer.jwks_uri()),
        &clock,
        |_| {},
    ));
    let token = issuer.token("read:messages", 10 * 3600);
    assert_eq!(status(&v, &token), Status::Ok);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (v, token, stop) = (v.clone(), token.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut done = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(status(&v, &token), Status::Ok);
                    done += 1;
                }
                done
            })
        })
        .collect();
    for _ in 0..10 {
        issuer.rotate(false);
        clock.advance(61.0);
        std::thread::sleep(Duration::from_millis(30));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    settle(&v);
    assert!(total > 100, "{total} verifications");
    let stats = v.jwks_source().unwrap().stats();
    assert!(stats.fetches_ok >= 5, "{stats:?}");
    assert_eq!(stats.fetches_failed, 0);
    assert_eq!(v.count(Status::Ok), total + 1);
}

/// A token of a key published a moment ago, verified while a fetch that began before the key
/// was published is still on its way: that fetch's answer lacks the key, so the key is fetched
/// once more instead of refused (the soak's rare 401s at a rotation under load).
#[test]
fn a_new_kid_found_missing_by_a_fetch_begun_before_it_is_fetched_again() {
    let (a, b) = (Signer::rs256(), Signer::rs256_b());
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let v = Arc::new(
        Verifier::new(Config::new(
            Policy::new(ISSUER, AUDIENCE),
            Keys::Url(server.url.clone()),
        ))
        .unwrap(),
    );
    v.refresh_keys().unwrap();
    // A slow refresh begins: it will answer the JWKS as it is now, without b.
    server.set(Reply {
        delay: Duration::from_millis(800),
        ..Reply::json(&jwks(&[a.jwk(true)]))
    });
    let slow = {
        let v = v.clone();
        std::thread::spawn(move || v.refresh_keys())
    };
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(server.count(), 2, "the slow fetch is on its way");
    assert!(v.jwks_source().unwrap().is_fetching());
    // b is published (answered at once from now on) and signs tokens, which 8 clients send
    // while the slow fetch is still on its way.
    server.set(Reply::json(&jwks(&[a.jwk(true), b.jwk(true)])));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (v, b) = (v.clone(), b.clone());
            std::thread::spawn(move || {
                let token = b.token(&claims_with(
                    json!({"iat": now() - 5, "exp": now() + 600, "jti": format!("j-{i}")}),
                ));
                status(&v, &token)
            })
        })
        .collect();
    let statuses: Vec<Status> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(statuses, vec![Status::Ok; 8]);
    slow.join().unwrap().unwrap();
    assert_eq!(
        server.count(),
        3,
        "the first fetch, the slow one, one for b (not one per client)"
    );
}

/// An event-loop host judges a refusal for want of keys as "wait and retry" when a fetch ended
/// while the verification ran, not only while one runs: the verification looked at the keys
/// before the fetch installed the new ones, and by the time the host asks, nothing is running
/// any more (the soak's single 401s right after a rotation, in Envoy).
#[test]
fn a_fetch_that_ends_during_a_verification_makes_its_refusal_wait() {
    use jwtguard::answer::{Judgement, judge};
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let v = Verifier::new(Config::new(
        Policy::new(ISSUER, AUDIENCE),
        Keys::Url(server.url.clone()),
    ))
    .unwrap();
    v.refresh_keys().unwrap();
    let missing = || Err(Status::KeyNotFound.into());
    // No fetch ran or ended: refused.
    assert!(matches!(
        judge(&v, missing, &[], true),
        Judgement::Refuse(Status::KeyNotFound)
    ));
    // A fetch ended between the look at the keys and the judgement: wait.
    let during = || {
        v.refresh_keys().unwrap();
        Err(Status::KeyNotFound.into())
    };
    assert!(!v.fetch_in_progress());
    assert!(matches!(judge(&v, during, &[], true), Judgement::Wait));
    // Unless the host may not wait any longer.
    let during = || {
        v.refresh_keys().unwrap();
        Err(Status::KeyNotFound.into())
    };
    assert!(matches!(
        judge(&v, during, &[], false),
        Judgement::Refuse(Status::KeyNotFound)
    ));
    assert_eq!(v.fetch_epoch(), 3, "three fetches ended");
}

/// Rotations under concurrent load, in both modes: at each one, 8 threads send a token of the
/// key just published at the same instant (one of them fetches, the others must wait for that
/// fetch, never give up because another thread decided to fetch a moment before it started).
/// Non-blocking threads retry as event-loop hosts do (`judge`). Every token is accepted.
#[test]
fn rotations_under_concurrent_load_refuse_no_valid_token() {
    use jwtguard::answer::{Judgement, judge};
    let (a, b) = (Signer::rs256(), Signer::rs256_b());
    for non_blocking in [false, true] {
        let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
        let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(server.url.clone()));
        config.cache.non_blocking = non_blocking;
        // The same two kids alternate: a kid may be refetched again after the cooldown.
        config.cache.refetch_cooldown = Duration::from_millis(300);
        config.token_cache = 0;
        let v = Arc::new(Verifier::new(config).unwrap());
        v.refresh_keys().unwrap();
        for round in 0..8 {
            let signer = if round % 2 == 0 { b.clone() } else { a.clone() };
            std::thread::sleep(Duration::from_millis(1100));
            server.set(Reply::json(&jwks(&[signer.jwk(true)])));
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let clients: Vec<_> = (0..8)
                .map(|i| {
                    let (v, signer, barrier) = (v.clone(), signer.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let token = signer.token(&claims_with(json!({
                            "iat": now() - 5, "exp": now() + 600, "jti": format!("r{round}-{i}")
                        })));
                        barrier.wait();
                        let deadline = Instant::now() + Duration::from_secs(5);
                        loop {
                            let may_wait = Instant::now() < deadline;
                            match judge(&v, || v.verify(&token), &[], may_wait) {
                                Judgement::Allow(_) => return Status::Ok,
                                Judgement::Refuse(status) => return status,
                                Judgement::Wait => std::thread::sleep(Duration::from_millis(2)),
                            }
                        }
                    })
                })
                .collect();
            let statuses: Vec<Status> = clients.into_iter().map(|c| c.join().unwrap()).collect();
            assert_eq!(
                statuses,
                vec![Status::Ok; 8],
                "round {round}, non-blocking {non_blocking}"
            );
        }
    }
}
