//! JWKS documents into keys: never a panic; a set parsed twice has the same keys.
#![no_main]

use jwtguard::KeySet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = KeySet::from_json(data) {
        let again = KeySet::from_json(data).expect("the same bytes parse again");
        assert_eq!(set.len(), again.len());
        assert_eq!(set.skipped().len(), again.skipped().len());
    }
});
