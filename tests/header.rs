//! `include/jwtguard.h` is generated from the sources by cbindgen and checked in. This test
//! regenerates it and fails on any difference; `JWTGUARD_BLESS=1` (or `make header`) rewrites it.

use std::path::PathBuf;

fn generate() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    config.after_includes = Some(format!(
        "\n#define JWTGUARD_VERSION \"{version}\"\n#define JWTGUARD_VERSION_MAJOR {major}\n\
         #define JWTGUARD_VERSION_MINOR {minor}\n#define JWTGUARD_VERSION_PATCH {patch}\n"
    ));
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn header_matches_the_sources() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/jwtguard.h");
    let fresh = generate();
    if std::env::var_os("JWTGUARD_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "include/jwtguard.h is out of date with the sources: run `make header` and commit it"
    );
    for name in [
        "jwt_verify",
        "jwt_has_scope",
        "jwt_verifier_new",
        "JWT_STATUS_TOKEN_EXPIRED = 300",
    ] {
        assert!(fresh.contains(name), "{name} missing from the header");
    }
}
