//! The Authorization header parser: never a panic; a token it returns is one run of visible
//! ASCII without blanks, found in the header after the scheme.
#![no_main]

use jwtguard::bearer_token;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = bearer_token(Some(header)) {
        assert!(!token.is_empty());
        assert!(token.bytes().all(|b| b.is_ascii_graphic()), "{token:?}");
        assert!(header.contains(token));
        let scheme = header.trim_start_matches([' ', '\t']);
        assert!(scheme[..6].eq_ignore_ascii_case("bearer"), "{header:?}");
    }
});
