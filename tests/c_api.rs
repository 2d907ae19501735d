//! The C test client (tests/c/test_client.c), compiled with -Wall -Wextra -Wpedantic -Werror
//! against the generated header and the real shared library, run under valgrind against a JWKS
//! served over loopback. Any failed check, leak or invalid access fails this test.

mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile>, where this test binary's deps folder sits.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Build the cdylib for the profile this test runs under (`cargo test` builds only the rlib).
fn build_library() -> PathBuf {
    let dir = profile_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--lib", "--quiet"]).current_dir(root());
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "cargo build --lib failed");
    let lib = dir.join("libjwtguard.so");
    assert!(lib.exists(), "{} was not built", lib.display());
    dir
}

fn compile(source: &Path, out: &Path, lib_dir: &Path, std: &str) {
    compile_with(source, out, lib_dir, std, &[]);
}

fn compile_with(source: &Path, out: &Path, lib_dir: &Path, std: &str, flags: &[&str]) {
    let output = Command::new("cc")
        .arg(format!("-std={std}"))
        .args(flags)
        .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-g", "-O1"])
        .arg("-I")
        .arg(root().join("include"))
        .arg(source)
        .arg("-o")
        .arg(out)
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-ljwtguard")
        .output()
        .expect("a C compiler (cc) is required");
    assert!(
        output.status.success(),
        "compiling {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// valgrind as every C test runs under it: any error or leak makes the exit status 99.
fn valgrind() -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--quiet",
        "--error-exitcode=99",
        "--leak-check=full",
        "--num-callers=50",
        "--show-leak-kinds=definite,indirect,possible",
        "--errors-for-leak-kinds=definite,indirect,possible",
    ])
    .arg(format!(
        "--suppressions={}",
        root().join("tests/c/valgrind.supp").display()
    ));
    cmd
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// tests/c/fork_test.c, built as `name` (POSIX fork/waitpid: the C99 of the other client plus
/// the POSIX 2008 interfaces).
fn fork_test_program(name: &str) -> PathBuf {
    let lib_dir = build_library();
    let program = out_dir().join(name);
    compile(
        &root().join("tests/c/fork_test.c"),
        &program,
        &lib_dir,
        "gnu99",
    );
    program
}

/// Run `command` and require the fork test's success line.
fn expect_fork_checks_pass(command: &mut Command) {
    let output = command.output().expect("the fork test must start");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "fork test failed ({}):\n{stderr}",
        output.status
    );
    assert!(stdout.contains("fork checks passed"));
}

#[test]
fn fork_while_discovery_runs_child_discovers_on_its_own() {
    // Review item 8: the child used to inherit "discovery running" with no thread to end it.
    let program = fork_test_program("fork_test_discovery");
    let issuer = DevIssuer::start(&[]);
    let token = issuer.token("read:messages", 600);
    issuer.fault(json!({"mode": "delay", "ms": 1500, "endpoint": "discovery"}));
    // Not under valgrind: the child holds a copy of the parent's discovery thread's memory,
    // which no thread of the child can free (valgrind reports it as lost; the warm-cache fork
    // test below runs under valgrind).
    expect_fork_checks_pass(Command::new(&program).args([
        "--during-discovery",
        issuer.url.as_str(),
        AUDIENCE,
        &token,
    ]));
}

#[test]
fn fork_after_warm_cache_child_refreshes_on_its_own() {
    let program = fork_test_program("fork_test");
    let issuer = DevIssuer::start(&[]);
    let token = issuer.token("read:messages", 600);
    expect_fork_checks_pass(
        valgrind()
            .arg(&program)
            .args([issuer.url.as_str(), AUDIENCE, &token]),
    );
    assert_eq!(
        issuer.jwks_requests(),
        2,
        "the parent's fetch and the child's own"
    );
}

#[test]
fn c_client_passes_under_valgrind() {
    let lib_dir = build_library();
    let out_dir = out_dir();
    let client = out_dir.join("test_client");
    compile(
        &root().join("tests/c/test_client.c"),
        &client,
        &lib_dir,
        "c99",
    );
    run_c_client(valgrind().arg(&client), &out_dir, "valgrind");
}

/// The same client built with AddressSanitizer and UndefinedBehaviorSanitizer (the library's
/// allocations go through ASan's allocator too, so a double free, a use after free or a leak
/// of a handle is reported), every report fatal.
#[test]
fn c_client_passes_under_asan_and_ubsan() {
    let lib_dir = build_library();
    let out_dir = out_dir();
    let client = out_dir.join("test_client_asan");
    compile_with(
        &root().join("tests/c/test_client.c"),
        &client,
        &lib_dir,
        "c99",
        &[
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ],
    );
    let mut cmd = Command::new(&client);
    cmd.env("ASAN_OPTIONS", "detect_leaks=1:exitcode=98")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1");
    run_c_client(&mut cmd, &out_dir, "asan");
}

/// Run the C client (`cmd`: the program, under valgrind or not) against a loopback JWKS.
fn run_c_client(cmd: &mut Command, out_dir: &Path, tag: &str) {
    let signer = Signer::rs256();
    let keys = jwks(&[signer.jwk(true), Signer::es256().jwk(true)]);
    let server = JwksServer::start(Reply::json(&keys));
    let jwks_file = out_dir.join(format!("jwks-{tag}.json"));
    std::fs::write(&jwks_file, &keys).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let valid = signer.token(&claims_with(
        json!({"iat": now - 5, "exp": now + 3600, "roles": ["admin", "ops"],
            "name": "x\r\nSet-Cookie: pwned=1\u{0}\\", "tags": ["a\nb", "c"]}),
    ));
    let expired = signer.token(&claims_with(json!({"iat": now - 7200, "exp": now - 3600})));
    let no_scope = signer.token(&claims_with(
        json!({"iat": now - 5, "exp": now + 3600, "scope": "openid"}),
    ));

    // A second issuer with its own key, for jwt_config_add_issuer_config.
    let issuer_b = "https://second-tenant.example/";
    let signer_b = Signer::rs256_b();
    let jwks_file_b = out_dir.join(format!("jwks-b-{tag}.json"));
    std::fs::write(&jwks_file_b, jwks(&[signer_b.jwk(true)])).unwrap();
    let live = json!({"iat": now - 5, "exp": now + 3600});
    let mut claims_b = claims_with(live.clone());
    claims_b["iss"] = json!(issuer_b);
    let token_b = signer_b.token(&claims_b);
    let forged_for_a = signer_b.token(&claims_with(live.clone()));
    let mut stranger = claims_with(live);
    stranger["iss"] = json!("https://stranger.example/");
    let stranger = signer.token(&stranger);

    let output = cmd
        .args([ISSUER, AUDIENCE, &server.url])
        .arg(&jwks_file)
        .args([&valid, &expired, &no_scope])
        .arg(issuer_b)
        .arg(&jwks_file_b)
        .args([&token_b, &forged_for_a, &stranger])
        .output()
        .expect("the C client runs (valgrind: apt-get install valgrind; .ci/run installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "C client failed ({}):\n{stderr}",
        output.status
    );
    assert!(stdout.contains("C API checks passed"));
    assert_eq!(
        server.count(),
        2,
        "the first fetch and the one jwt_verifier_refresh made"
    );
}
