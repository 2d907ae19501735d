//! DPoP proofs (RFC 9449) and the URLs they name. Input: the request URL, a newline, the
//! proof. Never a panic; the same proof gets the same answer; an accepted proof names a key
//! and a bounded `jti`; a URL's normal form is its own normal form (so `htu` and the request
//! URL compare the same whichever side was normalised first).
#![no_main]

use jwtguard::dpop::{DpopPolicy, ProofRequest, check_proof, normalize_url};
use libfuzzer_sys::fuzz_target;

const NOW: f64 = 1_800_000_000.0;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (url, proof) = text.split_once('\n').unwrap_or((text, ""));
    if let Some(normal) = normalize_url(url) {
        assert_eq!(
            normalize_url(&normal).as_deref(),
            Some(normal.as_str()),
            "{url:?}"
        );
    }
    let policy = DpopPolicy::default();
    let request = ProofRequest {
        method: "GET",
        url,
        access_token: Some("token"),
    };
    let first = check_proof(proof, &policy, &request, NOW, 60);
    let second = check_proof(proof, &policy, &request, NOW, 60);
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!((&a.thumbprint, &a.jti), (&b.thumbprint, &b.jti));
            assert!(!a.thumbprint.is_empty() && !a.jti.is_empty() && a.jti.len() <= 512);
        }
        (Err(a), Err(b)) => assert_eq!(a.status(), b.status()),
        _ => panic!("two answers for one proof: {first:?} / {second:?}"),
    }
});
