//! The shared library's ELF identity: SONAME `libjwtguard.so.<major>`, so programs linked
//! against it ask for the ABI they were built for (`make install` ships
//! `libjwtguard.so.<major>.<minor>.<patch>` with the `.so.<major>` and `.so` links). A link
//! `libjwtguard.so.<major>` -> `libjwtguard.so` is left beside the built library, so a program
//! linked against the build tree (`-L target/release -Wl,-rpath,...`) runs from it as well.
//!
//! Exported symbols need no version script of ours: rustc already exports exactly the
//! `#[no_mangle] extern "C"` functions of a cdylib (the `jwt_*` API) and hides the rest,
//! Rust's std included; tests check that with `nm -D`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        return;
    }
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    let soname = format!("libjwtguard.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");

    // OUT_DIR is <target>/<profile>/build/jwtguard-<hash>/out: the library lands in <profile>.
    let Some(out_dir) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    #[cfg(unix)]
    if let Some(profile_dir) = out_dir.ancestors().nth(3) {
        let link = profile_dir.join(&soname);
        if std::fs::read_link(&link).is_err() {
            let _ = std::fs::remove_file(&link);
            // Best effort: a read-only or odd target directory only loses the convenience.
            let _ = std::os::unix::fs::symlink("libjwtguard.so", &link);
        }
    }
}
