//! Status codes and the library version, as C sees them.

use super::ffi_panic_boundary;
use crate::error::Status;
use std::ffi::CStr;
use std::os::raw::c_char;

/// One of a status's static texts (see `Status::c_texts`), `unknown` for a number that is
/// not a status.
fn text(status: u32, which: usize, unknown: &'static CStr) -> *const c_char {
    Status::from_u32(status)
        .map_or(unknown, |s| s.c_texts()[which])
        .as_ptr()
}

/// The stable snake_case name of a status (e.g. `"token_expired"`), the same in every binding.
/// Static, NUL-terminated; `"unknown"` for a number that is not a status.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_status_reason(status: u32) -> *const c_char {
    ffi_panic_boundary! { text(status, 0, c"unknown") }
}

/// The RFC 6750 `error` attribute for `WWW-Authenticate` (`"invalid_token"`,
/// `"insufficient_scope"`, `"invalid_request"`), or `""` when none applies (no token was sent,
/// success, API misuse). Static, NUL-terminated.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_status_rfc6750_error(status: u32) -> *const c_char {
    ffi_panic_boundary! { text(status, 1, c"") }
}

/// The JSON `code` of the Auth0 quickstart (`"authorization_header_missing"`,
/// `"invalid_header"`, `"token_expired"`, `"invalid_claims"`, `"invalid_token"`,
/// `"Unauthorized"`, ...). Static, NUL-terminated.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_status_code(status: u32) -> *const c_char {
    ffi_panic_boundary! { text(status, 2, c"internal_error") }
}

/// A human description of a status. Static, NUL-terminated.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_status_description(status: u32) -> *const c_char {
    ffi_panic_boundary! { text(status, 3, c"Unknown status") }
}

/// The HTTP status a server should answer with (200, 400, 401, 403, 503, or 500 for API
/// misuse and unknown numbers).
#[unsafe(no_mangle)]
pub extern "C" fn jwt_status_http_status(status: u32) -> u16 {
    ffi_panic_boundary! { Status::from_u32(status).map_or(500, Status::http_status) }
}

/// The library version, e.g. `"0.1.0"` (equal to `JWTGUARD_VERSION`). Static, NUL-terminated.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_version() -> *const c_char {
    ffi_panic_boundary! { concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast() }
}
