//! Wycheproof JWS and JWK vectors driven through the JWS-level entry point (no claim checks:
//! their payloads are not claim sets). Every valid vector of a supported algorithm must verify;
//! every invalid vector must be refused. Algorithms outside jwtguard's list are counted as
//! unsupported, and only those named in `UNSUPPORTED` may be.

use jwtguard::policy::{Algorithm, DEFAULT_MAX_TOKEN_BYTES};
use jwtguard::token::{b64_decode, parse_object};
use jwtguard::{KeySet, verify_jws};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Algorithms jwtguard does not implement on purpose: symmetric MACs never fit a verifier of
/// access tokens from a JWKS, and ES512 is rare among issuers.
const UNSUPPORTED: [&str; 4] = ["HS256", "HS384", "HS512", "ES512"];

/// Valid vectors jwtguard refuses on purpose, with the reason. RFC 7520's figures 20 sign with
/// PS384 under a key whose JWK declares `"alg": "PS256"`; jwtguard uses a key only for the
/// algorithm its JWK names (RFC 7517 section 4.4; SECURITY-CASES 4: an `alg` that does not
/// match the JWK's `alg` is refused), so these two are refused with `key_algorithm_mismatch`.
const REFUSED_BY_POLICY: [(&str, u64, &str); 2] = [
    (
        "json_web_signature_test.json",
        346,
        "key_algorithm_mismatch",
    ),
    (
        "json_web_signature_test.json",
        350,
        "key_algorithm_mismatch",
    ),
];

fn vectors_dir() -> PathBuf {
    std::env::var_os("JWTGUARD_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/wycheproof")
        })
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The `alg` a vector's token names, when its header decodes at all.
fn token_alg(jws: &str) -> Option<String> {
    let header = b64_decode(jws.split('.').next()?).ok()?;
    parse_object(&header)
        .ok()?
        .get("alg")?
        .as_str()
        .map(str::to_owned)
}

/// The JWKS a group verifies with: its public key(s), else its private key(s) (whose public
/// members are all jwtguard reads).
fn group_jwks(group: &Value) -> Option<String> {
    let key = group.get("public").or_else(|| group.get("private"))?;
    Some(if key.get("keys").is_some() {
        key.to_string()
    } else {
        serde_json::json!({ "keys": [key] }).to_string()
    })
}

#[derive(Default, Debug)]
struct Tally {
    accepted: usize,
    rejected: usize,
    unsupported: usize,
}

fn run(file: &str) -> Vec<String> {
    let doc = load(file);
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut seen = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        let name = group["comment"].as_str().unwrap_or("?").to_string();
        let keys = group_jwks(group)
            .map(|j| KeySet::from_json(j.as_bytes()).expect("vector keysets are JSON objects"))
            .unwrap_or_default();
        for test in group["tests"].as_array().unwrap() {
            seen += 1;
            let id = test["tcId"].as_u64().unwrap();
            let jws = test["jws"].as_str().unwrap_or("");
            let valid = test["result"] == "valid";
            let entry = tally.entry(name.clone()).or_default();
            let outcome = verify_jws(jws, &keys, &Algorithm::ALL, DEFAULT_MAX_TOKEN_BYTES);
            let key_alg = group
                .get("public")
                .or_else(|| group.get("private"))
                .and_then(|k| k.get("alg"))
                .and_then(Value::as_str);
            let alg = token_alg(jws);
            if [alg.as_deref(), key_alg]
                .iter()
                .any(|a| a.is_some_and(|a| UNSUPPORTED.contains(&a)))
            {
                entry.unsupported += 1;
                if outcome.is_ok() {
                    failures.push(format!(
                        "{file} #{id} ({name}): unsupported alg was accepted"
                    ));
                }
                continue;
            }
            match (valid, outcome) {
                (true, Ok(_)) => entry.accepted += 1,
                (false, Err(_)) => entry.rejected += 1,
                (true, Err(e))
                    if REFUSED_BY_POLICY.iter().any(|(f, i, why)| {
                        *f == file && *i == id && e.status().reason() == *why
                    }) =>
                {
                    entry.rejected += 1;
                    println!("  #{id} ({name}): valid vector refused by policy: {e}");
                }
                (true, Err(e)) => {
                    entry.rejected += 1;
                    failures.push(format!("{file} #{id} ({name}) valid vector rejected: {e}"));
                }
                (false, Ok(_)) => {
                    entry.accepted += 1;
                    failures.push(format!(
                        "{file} #{id} ({name}) invalid vector accepted: {}",
                        test["comment"]
                    ));
                }
            }
        }
    }
    assert_eq!(seen as u64, doc["numberOfTests"].as_u64().unwrap());
    println!("{file}: group accepted/rejected/unsupported");
    for (group, t) in &tally {
        println!(
            "  {group:<24} {:>4} {:>4} {:>4}",
            t.accepted, t.rejected, t.unsupported
        );
    }
    let total = tally.values().fold(Tally::default(), |a, t| Tally {
        accepted: a.accepted + t.accepted,
        rejected: a.rejected + t.rejected,
        unsupported: a.unsupported + t.unsupported,
    });
    println!(
        "  {:<24} {:>4} {:>4} {:>4}",
        "TOTAL", total.accepted, total.rejected, total.unsupported
    );
    failures
}

#[test]
fn wycheproof_json_web_signature() {
    let failures = run("json_web_signature_test.json");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn wycheproof_json_web_key() {
    let failures = run("json_web_key_test.json");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The JWK vectors' bad keys are refused for the right reason, not by accident.
#[test]
fn wycheproof_bad_keys_are_skipped_for_their_reason() {
    let doc = load("json_web_key_test.json");
    let expect = [
        ("jws_rsa_roca_key", "ROCA"),
        ("keysize_too_small", "1024 bits"),
        ("exponentOne", "exponent 1"),
        ("invalid_point", "key rejected"),
        ("invalid_use", "not sig"),
    ];
    for (group_name, reason) in expect {
        let group = doc["testGroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["comment"] == group_name)
            .unwrap();
        let keys = KeySet::from_json(group_jwks(group).unwrap().as_bytes()).unwrap();
        assert!(
            keys.skipped().iter().any(|s| s.reason.contains(reason)),
            "{group_name}: {:?}",
            keys.skipped()
        );
    }
}
