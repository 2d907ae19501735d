//! `jwt_claims`: what a verified token says, and `jwt_has_scope`.

use super::{ffi_panic_boundary, free_handle, ref_arg, str_arg, to_status, write_out};
use crate::claims::Claims;
use crate::error::Status;
use std::os::raw::c_char;

/// The claims of a verified token. Made by `jwt_verify`, released by `jwt_claims_free`.
/// Read-only: may be read from several threads at once.
pub struct jwt_claims {
    _private: [u8; 0],
}

fn claims<'a>(ptr: *const jwt_claims) -> Result<&'a Claims, Status> {
    ref_arg(ptr.cast::<Claims>())
}

fn write_str(s: &str, out: *mut *const c_char, out_len: *mut usize) -> Result<(), Status> {
    if out.is_null() || out_len.is_null() {
        return Err(Status::NullArgument);
    }
    write_out(out, s.as_ptr().cast())?;
    write_out(out_len, s.len())
}

/// Release a claims handle. NULL is fine. Must not be called twice.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_claims_free(claims: *mut jwt_claims) {
    ffi_panic_boundary! { free_handle::<Claims, _>(claims) }
}

/// Whether the token grants `scope`: an exact, case-sensitive match of one space-separated
/// entry of `scope`, of `scp` (string or array) or of one entry of `permissions` (array).
/// False for NULL arguments, an empty or invalid scope, or claims of the wrong type.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_has_scope(
    claims_handle: *const jwt_claims,
    scope: *const c_char,
    scope_len: usize,
) -> bool {
    ffi_panic_boundary! {
        match (claims(claims_handle), str_arg(scope, scope_len)) {
            (Ok(c), Ok(s)) => c.has_scope(s),
            _ => false,
        }
    }
}

/// Borrow a string claim. On success `*value_out` points to `*value_len_out` bytes of UTF-8
/// (not NUL-terminated) valid until the claims handle is freed. Errors:
/// `JWT_STATUS_CLAIM_NOT_FOUND`, `JWT_STATUS_CLAIM_WRONG_TYPE`, `JWT_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_claims_get_string(
    claims_handle: *const jwt_claims,
    name: *const c_char,
    name_len: usize,
    value_out: *mut *const c_char,
    value_len_out: *mut usize,
) -> Status {
    ffi_panic_boundary! {
        to_status((|| {
            let c = claims(claims_handle)?;
            let value = c.get_str(str_arg(name, name_len)?).map_err(|e| e.status())?;
            write_str(value, value_out, value_len_out)
        })())
    }
}

/// Read a numeric claim (e.g. `exp`) as a double. Errors as for `jwt_claims_get_string`.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_claims_get_number(
    claims_handle: *const jwt_claims,
    name: *const c_char,
    name_len: usize,
    value_out: *mut f64,
) -> Status {
    ffi_panic_boundary! {
        to_status((|| {
            let c = claims(claims_handle)?;
            let value = c.get_f64(str_arg(name, name_len)?).map_err(|e| e.status())?;
            write_out(value_out, value)
        })())
    }
}

/// Borrow the whole payload as JSON text, exactly as the issuer signed it (not
/// NUL-terminated), valid until the claims handle is freed.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_claims_json(
    claims_handle: *const jwt_claims,
    json_out: *mut *const c_char,
    json_len_out: *mut usize,
) -> Status {
    ffi_panic_boundary! {
        to_status(claims(claims_handle).and_then(|c| write_str(c.json(), json_out, json_len_out)))
    }
}

/// `jwt_has_scope` for claims held as JSON text (a JSON object), for bindings that keep claims
/// in their own data structures. False for NULL, invalid JSON, or a non-object.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_has_scope_json(
    claims_json: *const c_char,
    claims_json_len: usize,
    scope: *const c_char,
    scope_len: usize,
) -> bool {
    ffi_panic_boundary! {
        match (str_arg(claims_json, claims_json_len), str_arg(scope, scope_len)) {
            (Ok(json), Ok(scope)) => match serde_json::from_str::<serde_json::Value>(json) {
                Ok(serde_json::Value::Object(map)) => crate::claims::has_scope(&map, scope),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Copy `text` and a NUL into `buffer`, after writing its length to `*needed_out` (0 first,
/// so that every error leaves it written).
fn text_out(
    text: impl FnOnce() -> Result<String, Status>,
    buffer: *mut c_char,
    buffer_len: usize,
    needed_out: *mut usize,
) -> Status {
    to_status((|| {
        write_out(needed_out, 0)?;
        let text = text()?;
        write_out(needed_out, text.len())?;
        if buffer.is_null() || buffer_len <= text.len() {
            return Err(Status::InvalidArgument);
        }
        super::copy_out(text.as_bytes(), buffer, buffer_len)
    })())
}

/// Copy one claim as text into `buffer` (NUL-terminated): a string as is, a number or boolean
/// as JSON, an array as its elements joined by single spaces, an object as JSON. `*needed_out`
/// is always written: the text's length without the NUL, or 0 when the call fails for another
/// reason than the buffer's size. With a `buffer_len` too small (or `buffer` NULL and
/// `buffer_len` 0) nothing is copied and `JWT_STATUS_INVALID_ARGUMENT` is returned: call again
/// with `*needed_out + 1` bytes. Errors: `JWT_STATUS_CLAIM_NOT_FOUND`,
/// `JWT_STATUS_NULL_ARGUMENT`, `JWT_STATUS_INVALID_ARGUMENT` (name not UTF-8). The text is
/// the claim's own and may hold any character, control characters included: use
/// `jwt_claims_get_header_text` for text bound for an HTTP header.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_claims_get_text(
    claims_handle: *const jwt_claims,
    name: *const c_char,
    name_len: usize,
    buffer: *mut c_char,
    buffer_len: usize,
    needed_out: *mut usize,
) -> Status {
    ffi_panic_boundary! {
        text_out(
            || claims(claims_handle)?.get_text(str_arg(name, name_len)?).map_err(|e| e.status()),
            buffer,
            buffer_len,
            needed_out,
        )
    }
}

/// As `jwt_claims_get_text`, but safe to put in an HTTP header value: control characters
/// (U+0000 to U+001F and U+007F: CR, LF, NUL, TAB, ...) and the backslash are written as
/// JSON string escapes (`\r`, `\n`, `\t`, `\u0000`, `\\`), so a claim can never end a
/// header or start another, and two different claims never give the same text. Hosts that
/// forward claims into headers (the nginx `$jwt_claim_*` variables) use this.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_claims_get_header_text(
    claims_handle: *const jwt_claims,
    name: *const c_char,
    name_len: usize,
    buffer: *mut c_char,
    buffer_len: usize,
    needed_out: *mut usize,
) -> Status {
    ffi_panic_boundary! {
        text_out(
            || {
                claims(claims_handle)?
                    .get_header_text(str_arg(name, name_len)?)
                    .map_err(|e| e.status())
            },
            buffer,
            buffer_len,
            needed_out,
        )
    }
}
