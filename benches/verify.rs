//! Verification throughput with warm keys: RS256, PS256, ES256 and EdDSA through the Rust API
//! and through the C ABI with the token cache off (every call verifies in full), next to the
//! raw signature check of the same RS256 token (the physical limit), and a token-cache hit
//! through the C ABI. Run with `make bench`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use jwtguard::ffi::claims::jwt_claims_free;
use jwtguard::ffi::config::{
    jwt_config_add_algorithm, jwt_config_add_audience, jwt_config_add_issuer, jwt_config_free,
    jwt_config_new, jwt_config_set_jwks_json, jwt_config_set_token_cache,
};
use jwtguard::ffi::verifier::{jwt_verifier_free, jwt_verifier_new, jwt_verify};
use jwtguard::token::b64_decode;
use jwtguard::{Algorithm, Config, Keys, Policy, Status, Verifier};
use serde_json::json;
use std::hint::black_box;

fn far_future_claims() -> serde_json::Value {
    claims_with(json!({"iat": 1_700_000_000, "exp": 4_000_000_000i64}))
}

fn bench(c: &mut Criterion) {
    let signers = [
        ("RS256", Signer::rs256()),
        ("PS256", Signer::ps256()),
        ("ES256", Signer::es256()),
        ("EdDSA", Signer::eddsa()),
    ];
    let keys = jwks(&[
        Signer::rs256().jwk(false),
        Signer::es256().jwk(true),
        Signer::eddsa().jwk(true),
    ]);
    let policy = Policy::new(ISSUER, AUDIENCE).with_algorithms(&Algorithm::ALL);
    let mut uncached = Config::new(policy, Keys::Json(keys.clone()));
    uncached.token_cache = 0;
    let verifier = Verifier::new(uncached).unwrap();

    let config = jwt_config_new();
    assert_eq!(
        jwt_config_add_issuer(config, ISSUER.as_ptr().cast(), ISSUER.len()),
        Status::Ok
    );
    assert_eq!(
        jwt_config_add_audience(config, AUDIENCE.as_ptr().cast(), AUDIENCE.len()),
        Status::Ok
    );
    for alg in Algorithm::ALL {
        let name = alg.name();
        assert_eq!(
            jwt_config_add_algorithm(config, name.as_ptr().cast(), name.len()),
            Status::Ok
        );
    }
    assert_eq!(
        jwt_config_set_jwks_json(config, keys.as_ptr().cast(), keys.len()),
        Status::Ok
    );
    let mut c_cached = std::ptr::null_mut();
    assert_eq!(jwt_verifier_new(config, &mut c_cached), Status::Ok);
    assert_eq!(jwt_config_set_token_cache(config, 0), Status::Ok);
    let mut c_verifier = std::ptr::null_mut();
    assert_eq!(jwt_verifier_new(config, &mut c_verifier), Status::Ok);
    jwt_config_free(config);

    let mut group = c.benchmark_group("verify");
    for (name, signer) in &signers {
        let token = signer.token(&far_future_claims());
        assert!(verifier.verify(&token).is_ok());
        group.bench_function(format!("{name}/rust"), |b| {
            b.iter(|| verifier.verify(black_box(&token)).unwrap())
        });
        group.bench_function(format!("{name}/c_abi"), |b| {
            b.iter(|| {
                let mut claims = std::ptr::null_mut();
                let status =
                    jwt_verify(c_verifier, token.as_ptr().cast(), token.len(), &mut claims);
                assert_eq!(status, Status::Ok);
                jwt_claims_free(claims);
            })
        });
    }

    // A token seen before: answered by the token cache (C ABI, claims handle included).
    let token = Signer::rs256().token(&far_future_claims());
    group.bench_function("RS256/token_cache_hit/c_abi", |b| {
        b.iter(|| {
            let mut claims = std::ptr::null_mut();
            let status = jwt_verify(c_cached, token.as_ptr().cast(), token.len(), &mut claims);
            assert_eq!(status, Status::Ok);
            jwt_claims_free(claims);
        })
    });

    // The floor: the RSA-2048 signature check alone, key parsed once.
    let token = Signer::rs256().token(&far_future_claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = b64_decode(sig).unwrap();
    let set = jwtguard::KeySet::from_json(jwks(&[Signer::rs256().jwk(false)]).as_bytes()).unwrap();
    let key = set.keys().next().unwrap();
    group.bench_function("RS256/signature_only", |b| {
        b.iter(|| {
            key.verify(
                jwtguard::Algorithm::RS256,
                black_box(input.as_bytes()),
                &sig,
            )
            .unwrap()
        })
    });

    // Non-blocking mode with a stalled issuer (accepts connections, never answers): the time a
    // verification takes while the background fetch hangs.
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", stalled.local_addr().unwrap());
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(url));
    config.cache.non_blocking = true;
    let cold = Verifier::new(config).unwrap();
    assert_eq!(
        cold.verify(&token).unwrap_err().status(),
        Status::KeysUnavailable
    );
    group.bench_function("RS256/non_blocking_cold_stalled_issuer", |b| {
        b.iter(|| cold.verify(black_box(&token)).unwrap_err())
    });
    group.finish();
    drop(stalled);
    jwt_verifier_free(c_verifier);
    jwt_verifier_free(c_cached);
}

criterion_group!(benches, bench);
criterion_main!(benches);
