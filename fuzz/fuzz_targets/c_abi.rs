//! The C ABI's exported functions fed arbitrary bytes and lengths (never past the bytes
//! given): never a panic across the ABI, statuses always known ones, claims handles freed.
#![no_main]

use jwtguard::ffi::claims::*;
use jwtguard::ffi::config::*;
use jwtguard::ffi::status::*;
use jwtguard::ffi::verifier::*;
use libfuzzer_sys::fuzz_target;
use std::os::raw::c_char;
use std::ptr;
use std::sync::LazyLock;

const JWKS: &str = include_str!("../jwks.json");

/// The verifier's address (a raw pointer is not `Sync`; the verifier itself is thread-safe).
static VERIFIER: LazyLock<usize> = LazyLock::new(|| {
    let config = jwt_config_new();
    let text = |s: &str| (s.as_ptr().cast::<c_char>(), s.len());
    let (p, n) = text("https://issuer.example/");
    assert_eq!(jwt_config_add_issuer(config, p, n) as u32, 0);
    let (p, n) = text("https://api.example");
    assert_eq!(jwt_config_add_audience(config, p, n) as u32, 0);
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        let (p, n) = text(alg);
        assert_eq!(jwt_config_add_algorithm(config, p, n) as u32, 0);
    }
    let (p, n) = text(JWKS);
    assert_eq!(jwt_config_set_jwks_json(config, p, n) as u32, 0);
    let mut verifier = ptr::null_mut();
    assert_eq!(jwt_verifier_new(config, &mut verifier) as u32, 0);
    jwt_config_free(config);
    verifier as usize
});

fn known(status: u32) {
    assert!(!jwt_status_reason(status).is_null());
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let v = *VERIFIER as *const jwt_verifier;
    let p = input.as_ptr().cast::<c_char>();
    // a length up to the bytes given, chosen by the input itself
    let len = if selector & 0x80 != 0 { input.len() / 2 } else { input.len() };
    let mut claims = ptr::null_mut();
    match selector % 8 {
        0 | 1 => {
            let s = jwt_verify(v, p, len, &mut claims) as u32;
            known(s);
            assert_eq!(s == 0, !claims.is_null());
            if !claims.is_null() {
                let mut text = ptr::null();
                let mut text_len = 0;
                assert_eq!(jwt_claims_json(claims, &mut text, &mut text_len) as u32, 0);
                let name = b"sub";
                let mut out = ptr::null();
                let mut out_len = 0;
                known(jwt_claims_get_string(claims, name.as_ptr().cast(), 3, &mut out, &mut out_len) as u32);
                let mut number = 0.0;
                known(jwt_claims_get_number(claims, b"exp".as_ptr().cast(), 3, &mut number) as u32);
                let _ = jwt_has_scope(claims, p, len.min(32));
                jwt_claims_free(claims);
            }
        }
        2 | 3 => {
            let s = jwt_verify_authorization(v, p, len, &mut claims) as u32;
            known(s);
            jwt_claims_free(claims);
        }
        4 => known(jwt_verify_status(v, p, len) as u32),
        5 => known(jwt_verify_authorization_status(v, p, len) as u32),
        6 => {
            let _ = jwt_has_scope_json(p, len, p, len / 3);
            // A request: Authorization, DPoP, method and URL, one per line.
            let mut parts = input[..len].splitn(4, |&b| b == b'\n');
            let mut next = || {
                parts
                    .next()
                    .map_or((ptr::null(), 0), |s| (s.as_ptr().cast::<c_char>(), s.len()))
            };
            let (auth, dpop, method, url) = (next(), next(), next(), next());
            for again in [false, true] {
                let call = if again { jwt_verify_request_again } else { jwt_verify_request };
                let s = call(v, auth.0, auth.1, dpop.0, dpop.1, method.0, method.1, url.0, url.1, &mut claims)
                    as u32;
                known(s);
                assert_eq!(s == 0, !claims.is_null());
                jwt_claims_free(claims);
                claims = ptr::null_mut();
            }
            known(jwt_verify_request_status(v, auth.0, auth.1, dpop.0, dpop.1, method.0, method.1, url.0, url.1)
                as u32);
            let mut buffer = [0 as c_char; 512];
            let mut needed = 0;
            known(jwt_verifier_challenge(
                v,
                u32::from(input.first().copied().unwrap_or(0)) + 600,
                auth.0,
                auth.1,
                url.0,
                url.1,
                method.0,
                method.1,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut needed,
            ) as u32);
        }
        _ => {
            // Configuration setters with arbitrary text, then a verifier from it.
            let config = jwt_config_new();
            known(jwt_config_add_issuer(config, p, len) as u32);
            known(jwt_config_add_audience(config, p, len) as u32);
            known(jwt_config_add_algorithm(config, p, len) as u32);
            known(jwt_config_set_jwks_json(config, p, len) as u32);
            let mut verifier = ptr::null_mut();
            let s = jwt_verifier_new(config, &mut verifier) as u32;
            known(s);
            jwt_verifier_free(verifier);
            jwt_config_free(config);
        }
    }
});
