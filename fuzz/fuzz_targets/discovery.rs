//! The discovery document: never a panic; a `jwks_uri` is returned only for the exact issuer
//! and only as an https URL (plain http not allowed here; a scheme is case-insensitive, RFC
//! 3986 section 3.1, so `HTTPS://` is https).
#![no_main]

use jwtguard::jwks::discovery::jwks_uri_of;
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://issuer.example/";

fuzz_target!(|data: &[u8]| {
    if let Ok(uri) = jwks_uri_of(data, ISSUER, false) {
        assert!(uri.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")), "{uri}");
        let doc: serde_json::Value = serde_json::from_slice(data).expect("accepted, so JSON");
        assert_eq!(doc["issuer"], ISSUER);
    }
});
