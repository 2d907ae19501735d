//! The `jwtguard verify` contract: exit 0 and the claims as JSON, exit 1 and an error object,
//! exit 2 for bad usage.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn jwtguard(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(jwtguard_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// `jwtguard verify` with the test issuer, audience and a JWKS file, then `rest`.
fn verify_with_file(path: &str, rest: &[&str], stdin: Option<&str>) -> Output {
    let mut args = vec![
        "verify",
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
        "--jwks-file",
        path,
    ];
    args.extend_from_slice(rest);
    jwtguard(&args, stdin)
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

fn live_claims() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    claims_with(json!({"iat": now - 5, "exp": now + 600}))
}

fn jwks_file() -> tempfile_path::TempPath {
    tempfile_path::write(&jwks(&[Signer::rs256().jwk(true)]))
}

mod tempfile_path {
    use std::path::PathBuf;
    pub struct TempPath(pub PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    pub fn write(text: &str) -> TempPath {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "jwks-{}-{}.json",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, text).unwrap();
        TempPath(path)
    }
}

#[test]
fn a_valid_token_prints_its_claims() {
    let file = jwks_file();
    let token = Signer::rs256().token(&live_claims());
    let path = file.0.to_str().unwrap();
    let out = verify_with_file(path, &["--require-scope", "read:messages", &token], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out)["sub"], "client-1@clients");
    // From standard input.
    let out = verify_with_file(path, &["-"], Some(&format!("{token}\n")));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout_json(&out)["client_id"], "client-1");
}

#[test]
fn a_jwks_uri_on_loopback_works() {
    let server = JwksServer::start(Reply::json(&jwks(&[Signer::rs256().jwk(true)])));
    let token = Signer::rs256().token(&live_claims());
    let out = jwtguard(
        &[
            "verify",
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--jwks-uri",
            &server.url,
            &token,
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.count(), 1);
}

#[test]
fn refusals_print_one_error_object() {
    let file = jwks_file();
    let path = file.0.to_str().unwrap();
    let expired = Signer::rs256().token(&claims_with(json!({"exp": 1_000_000})));
    let out = verify_with_file(path, &[&expired], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stdout_json(&out);
    assert_eq!(
        err,
        json!({"error": "invalid_token", "code": "token_expired", "status": 401, "reason": "token_expired", "description": "Token is expired"})
    );
    let token = Signer::rs256().token(&live_claims());
    let out = verify_with_file(path, &["--require-scope", "write:messages", &token], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stdout_json(&out);
    assert_eq!(
        (err["status"].as_u64(), err["reason"].as_str()),
        (Some(403), Some("insufficient_scope"))
    );
    assert_eq!(err["error"], "insufficient_scope");
    let out = jwtguard(
        &[
            "verify",
            "--issuer",
            "https://other/",
            "--audience",
            AUDIENCE,
            "--jwks-file",
            path,
            &token,
        ],
        None,
    );
    assert_eq!(stdout_json(&out)["reason"], "issuer_invalid");
    let out = verify_with_file(path, &["garbage"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["code"], "invalid_header");
}

#[test]
fn bad_usage_exits_2() {
    let file = jwks_file();
    let path = file.0.to_str().unwrap();
    for args in [
        vec!["verify", "--audience", AUDIENCE, "--jwks-file", path, "t"],
        vec![
            "verify",
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--jwks-file",
            path,
            "--algorithm",
            "HS256",
            "t",
        ],
        vec![
            "verify",
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--jwks-uri",
            "http://tenant.example/jwks",
            "t",
        ],
        vec![
            "verify",
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--jwks-file",
            "/nonexistent/jwks.json",
            "t",
        ],
        vec!["frobnicate"],
    ] {
        let out = jwtguard(&args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn discovery_from_the_issuer_alone() {
    let issuer = DevIssuer::start(&[]);
    let token = issuer.token("read:messages", 600);
    let out = jwtguard(
        &[
            "verify",
            "--issuer",
            &issuer.url,
            "--audience",
            AUDIENCE,
            &token,
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out)["iss"], issuer.url.as_str());
}

#[test]
fn snapshot_carries_a_cold_start_through_an_issuer_outage() {
    let mut issuer = DevIssuer::start(&[]);
    let token = issuer.token("read:messages", 600);
    let snapshot = tempfile_path::TempPath(
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("snapshot-{}.json", std::process::id())),
    );
    let snap = snapshot.0.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["verify", "--issuer", &issuer.url, "--audience", AUDIENCE];
        args.extend_from_slice(extra);
        args.push(&token);
        jwtguard(&args, None)
    };
    let out = run(&["--snapshot", snap]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(snapshot.0.exists(), "the first run wrote the snapshot");
    let url = issuer.url.clone();
    issuer.stop();

    // A new process, the issuer down: the snapshot answers (discovery included).
    let mut args = vec![
        "verify",
        "--issuer",
        &url,
        "--audience",
        AUDIENCE,
        "--snapshot",
        snap,
    ];
    args.push(&token);
    let out = jwtguard(&args, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without the snapshot: keys unavailable, answered well under the fetch timeout.
    let started = std::time::Instant::now();
    let out = jwtguard(
        &["verify", "--issuer", &url, "--audience", AUDIENCE, &token],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stdout_json(&out);
    assert_eq!(
        (err["status"].as_u64(), err["reason"].as_str()),
        (Some(503), Some("keys_unavailable"))
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
