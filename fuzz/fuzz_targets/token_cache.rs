//! The token cache against a model: random inserts, lookups under changing key-set ids,
//! removals. A hit must return exactly the claims inserted for that token under that key set,
//! and the cache never holds more than its bound.
#![no_main]

use jwtguard::claims::Claims;
use jwtguard::token_cache::{Lookup, TokenCache};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let Some((&bound, ops)) = data.split_first() else {
        return;
    };
    let bound = usize::from(bound % 40) + 1;
    let cache = TokenCache::new(bound);
    // token -> (claims json, key set id) as last inserted
    let mut model: HashMap<Vec<u8>, (String, u64)> = HashMap::new();
    let mut current: u64 = 1;
    for op in ops.chunks(3) {
        let [kind, a, b] = match *op {
            [k, a, b] => [k, a, b],
            _ => return,
        };
        // tokens share prefixes and tails, so hashes and buckets collide
        let token: Vec<u8> = format!("tok.{}.{}", a % 16, "x".repeat(usize::from(b % 4))).into_bytes();
        match kind % 4 {
            0 => {
                let json = format!(r#"{{"n":{a},"m":{b},"exp":4102444800}}"#);
                let claims = Claims::from_unverified_json(&json).expect("valid JSON");
                let keys = current.saturating_sub(u64::from(b % 2));
                cache.insert(&token, &claims, 0, keys);
                model.insert(token, (json, keys));
            }
            1 => match cache.lookup(&token, |_| Ok::<u64, ()>(current)) {
                Ok(Lookup::Hit(claims, _, _)) => {
                    let (json, keys) = model.get(&token).expect("a hit for a token never inserted");
                    assert_eq!(claims.json(), json);
                    assert_eq!(*keys, current, "served under other keys");
                }
                Ok(Lookup::Miss) => {}
                Err(()) => unreachable!(),
            },
            2 => {
                cache.remove(&token);
                model.remove(&token);
            }
            _ => current += 1, // a rotation: every entry is from other keys now
        }
        assert!(cache.len() <= bound + 15, "{} entries for a bound of {bound}", cache.len());
    }
});
