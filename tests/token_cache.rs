//! The verified-token cache (issue 10): hits, time checked again on each hit, entries dying
//! with their keys, bit flips verified in full, the bound, and many threads.

mod common;

use common::*;
use jwtguard::{Algorithm, Clock, Config, Keys, Policy, Status, Verifier};
use serde_json::json;
use std::sync::Arc;

fn status(v: &Verifier, token: &str) -> Status {
    v.verify(token).map_or_else(|e| e.status(), |_| Status::Ok)
}

fn fixed(token_cache: usize, clock: &Clock) -> Verifier {
    let mut config = Config::new(
        Policy::new(ISSUER, AUDIENCE)
            .with_leeway(0)
            .with_algorithms(&[Algorithm::RS256, Algorithm::ES256]),
        Keys::Json(jwks(&[
            Signer::rs256().jwk(true),
            Signer::es256().jwk(true),
        ])),
    );
    config.clock = clock.clone();
    config.token_cache = token_cache;
    Verifier::new(config).unwrap()
}

/// A verifier (default token cache) on a manual clock, its keys `a` and `b` served over loopback.
fn served(a: &Signer, b: &Signer) -> (JwksServer, Clock, Verifier) {
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true), b.jwk(true)])));
    let clock = Clock::manual(NOW);
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(server.url.clone()));
    config.clock = clock.clone();
    (server, clock, Verifier::new(config).unwrap())
}

#[test]
fn a_hit_returns_the_same_claims_and_counts() {
    let v = fixed(100, &Clock::manual(NOW));
    let token = Signer::rs256().token(&good_claims());
    let first = v.verify(&token).unwrap();
    let second = v.verify(&token).unwrap();
    assert_eq!(first, second);
    assert_eq!(second.get_str("sub").unwrap(), "client-1@clients");
    let stats = v.token_cache_stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    // Off: nothing cached.
    let off = fixed(0, &Clock::manual(NOW));
    off.verify(&token).unwrap();
    off.verify(&token).unwrap();
    assert_eq!(off.token_cache_stats().hits, 0);
}

#[test]
fn a_cached_token_expires_on_time() {
    let clock = Clock::manual(NOW);
    let v = fixed(100, &clock);
    let token = Signer::rs256().token(&claims_with(json!({"exp": NOW + 2})));
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(v.token_cache_stats().hits, 1);
    clock.advance(3.0);
    assert_eq!(status(&v, &token), Status::TokenExpired);
    // not yet valid (nbf) is checked on hits too
    let later = Signer::rs256().token(&claims_with(json!({"nbf": NOW + 3 + 10})));
    assert_eq!(status(&v, &later), Status::TokenNotYetValid);
}

#[test]
fn a_cached_token_dies_with_its_key() {
    let (a, b) = (Signer::rs256(), Signer::rs256_b());
    let (server, _clock, v) = served(&a, &b);
    let token = a.token(&good_claims());
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(v.token_cache_stats().hits, 1);
    // The same document fetched again keeps the cached token valid.
    v.refresh_keys().unwrap();
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(v.token_cache_stats().hits, 2);
    // Key a retired at the issuer, keys refreshed: the cached token is not served.
    server.set(Reply::json(&jwks(&[b.jwk(true)])));
    v.refresh_keys().unwrap();
    assert_eq!(status(&v, &token), Status::KeyNotFound);
    assert_eq!(v.token_cache_stats().hits, 2);
    assert_eq!(status(&v, &b.token(&good_claims())), Status::Ok);
}

#[test]
fn a_hit_while_a_refresh_is_due_starts_it_and_sees_what_it_brings() {
    // A hit learns the current keys without a lock while they are fresh; once a refresh is
    // due it goes the whole way, so the refresh starts and a retired key ends the entry.
    let (a, b) = (Signer::rs256(), Signer::rs256_b());
    let (server, clock, v) = served(&a, &b);
    let token = a.token(&claims_with(json!({"exp": NOW + 3600})));
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(status(&v, &token), Status::Ok);
    let source = v.jwks_source().unwrap().clone();
    assert_eq!(source.stats().fetches_ok, 1);
    server.set(Reply::json(&jwks(&[b.jwk(true)])));
    // Not yet due (TTL 600 s, refresh 60 s ahead): hits, no fetch, and the keys are not
    // looked up in full (the lock-free path).
    clock.advance(500.0);
    let lookups = source.stats().cache_hits;
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(source.stats().cache_hits, lookups);
    assert!(source.wait_idle(std::time::Duration::from_secs(10)));
    assert_eq!(source.stats().fetches_ok, 1);
    // Due: this hit is still served from the keys in hand, looks them up in full and
    // starts the refresh.
    clock.advance(45.0);
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(source.stats().cache_hits, lookups + 1);
    assert!(source.wait_idle(std::time::Duration::from_secs(10)));
    assert_eq!(source.stats().fetches_ok, 2);
    assert_eq!(status(&v, &token), Status::KeyNotFound);
    assert_eq!(v.token_cache_stats().hits, 3);
}

#[test]
fn a_token_one_bit_away_is_verified_not_served() {
    let v = fixed(100, &Clock::manual(NOW));
    let token = Signer::rs256().token(&good_claims());
    assert_eq!(status(&v, &token), Status::Ok);
    let (body, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = jwtguard::token::b64_decode(sig).unwrap();
    bytes[0] ^= 1;
    let flipped = format!("{body}.{}", jwtguard::token::b64_encode(&bytes));
    assert_eq!(status(&v, &flipped), Status::SignatureInvalid);
    // And the payload changed under the same signature.
    let (_, rest) = token.split_once('.').unwrap();
    let forged = format!(
        "{}.{}",
        token.split('.').next().unwrap(),
        rest.replacen('e', "f", 1)
    );
    assert_ne!(status(&v, &forged), Status::Ok);
    assert_eq!(v.token_cache_stats().hits, 0);
}

#[test]
fn the_cache_is_bounded() {
    let v = fixed(32, &Clock::manual(NOW));
    let signer = Signer::es256();
    for i in 0..300 {
        let token = signer.token(&claims_with(json!({"jti": format!("j-{i}")})));
        assert_eq!(status(&v, &token), Status::Ok);
    }
    let stats = v.token_cache_stats();
    assert!(stats.evictions >= 300 - 32, "{stats:?}");
}

#[test]
fn eight_threads_with_hot_new_and_bad_tokens_get_no_wrong_answer() {
    let v = Arc::new(fixed(64, &Clock::manual(NOW)));
    let signer = Signer::es256();
    let hot: Vec<String> = (0..4)
        .map(|i| signer.token(&claims_with(json!({"jti": format!("hot-{i}")}))))
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (v, hot, signer) = (v.clone(), hot.clone(), signer.clone());
            std::thread::spawn(move || {
                for i in 0..400 {
                    let token = &hot[i % hot.len()];
                    assert_eq!(status(&v, token), Status::Ok);
                    if i % 5 == 0 {
                        let new = signer.token(&claims_with(json!({"jti": format!("t{t}-{i}")})));
                        assert_eq!(status(&v, &new), Status::Ok);
                        let bad = format!("{}A", &new[..new.len() - 1]);
                        if bad != new {
                            assert_ne!(status(&v, &bad), Status::Ok, "{bad}");
                        }
                        let expired = signer.token(&claims_with(
                            json!({"exp": NOW - 1, "jti": format!("x{t}-{i}")}),
                        ));
                        assert_eq!(status(&v, &expired), Status::TokenExpired);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Hot tokens were answered from the cache most of the time (new ones evict some).
    assert!(
        v.token_cache_stats().hits > 500,
        "{:?}",
        v.token_cache_stats()
    );
}

#[test]
fn the_oldest_entry_goes_first_and_a_small_bound_is_exact() {
    let signer = Signer::es256();
    let tokens: Vec<String> = (0..10)
        .map(|i| signer.token(&claims_with(json!({"jti": format!("o-{i}")}))))
        .collect();
    // One entry (one shard): each new token evicts the one before.
    let one = fixed(1, &Clock::manual(NOW));
    for t in &tokens {
        assert_eq!(status(&one, t), Status::Ok);
    }
    assert_eq!(one.token_cache_stats().evictions, 9);
    assert_eq!(status(&one, &tokens[9]), Status::Ok);
    assert_eq!(one.token_cache_stats().hits, 1);
    assert_eq!(status(&one, &tokens[8]), Status::Ok);
    assert_eq!(one.token_cache_stats().hits, 1);
    // Three entries: never more than three held, whatever the shards.
    let three = fixed(3, &Clock::manual(NOW));
    for t in &tokens {
        assert_eq!(status(&three, t), Status::Ok);
    }
    let held = tokens
        .iter()
        .filter(|t| {
            let before = three.token_cache_stats().hits;
            // a miss re-inserts (and evicts): look each up on a fresh copy of the state
            assert_eq!(status(&three, t), Status::Ok);
            three.token_cache_stats().hits > before
        })
        .count();
    assert!(held <= 3, "{held} held");
}

#[test]
fn a_token_whose_claims_outweigh_the_byte_bound_is_not_kept() {
    // 16 entries: a share of 64 KiB. 1,300 one-element arrays are 5 KiB of JSON (the token
    // stays under the 8 KiB cap) and about 90 KiB parsed.
    let v = fixed(16, &Clock::manual(NOW));
    let tags: Vec<serde_json::Value> = (0..1300).map(|_| json!([0])).collect();
    let token = Signer::es256().token(&claims_with(json!({"tags": tags})));
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(status(&v, &token), Status::Ok);
    assert_eq!(v.token_cache_stats().hits, 0);
}

#[test]
fn as_many_clients_as_the_bound_all_stay_cached() {
    // Shards are filled by the luck of the hash; the bound is the whole cache's, so a bound
    // of 1,000 keeps 1,000 clients' tokens, and a client coming back is a hit, whatever the
    // order they come in.
    let v = fixed(1000, &Clock::manual(NOW));
    let signer = Signer::es256();
    let tokens: Vec<String> = (0..1000)
        .map(|i| signer.token(&claims_with(json!({"jti": format!("c-{i}")}))))
        .collect();
    for t in &tokens {
        assert_eq!(status(&v, t), Status::Ok);
    }
    assert_eq!(v.token_cache_stats().evictions, 0);
    for t in tokens.iter().rev() {
        assert_eq!(status(&v, t), Status::Ok);
    }
    assert_eq!(v.token_cache_stats().hits, 1000);
    // One more client: one eviction, and the bound holds.
    let extra = signer.token(&claims_with(json!({"jti": "c-extra"})));
    assert_eq!(status(&v, &extra), Status::Ok);
    assert_eq!(v.token_cache_stats().evictions, 1);
}
