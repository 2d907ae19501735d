//! The `jwtguard` command starts and names its subcommands. (Having a test here also makes
//! `cargo test` build the binary, which the core's tests run as their dev issuer.)

use std::process::Command;

#[test]
fn the_command_lists_its_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_jwtguard"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("verify") && text.contains("dev-issuer"),
        "{text}"
    );
}
