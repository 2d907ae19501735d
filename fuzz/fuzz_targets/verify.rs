//! The whole verification of arbitrary bytes as a token, against fixed keys (RSA, P-256,
//! Ed25519; every algorithm allowed), with the token cache on: never a panic, and an accepted
//! token is one the keys signed (its claims pass the policy).
#![no_main]

use jwtguard::{Algorithm, Clock, Config, Keys, Policy, Verifier};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let policy = Policy::new("https://issuer.example/", "https://api.example").with_algorithms(&[
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ]);
    let mut config = Config::new(policy, Keys::Json(include_str!("../jwks.json").into()));
    config.clock = Clock::manual(1_800_000_000);
    config.token_cache = 64;
    Verifier::new(config).expect("the fuzz JWKS loads")
});

fuzz_target!(|data: &[u8]| {
    let first = VERIFIER.verify_bytes(data);
    // The same bytes again (a token-cache hit when accepted) get the same answer.
    let second = VERIFIER.verify_bytes(data);
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.json(), b.json());
            assert_eq!(a.get_str("iss").ok(), Some("https://issuer.example/"));
        }
        (Err(a), Err(b)) => assert_eq!(a.status(), b.status()),
        _ => panic!("two answers for one token: {first:?} / {second:?}"),
    }
});
