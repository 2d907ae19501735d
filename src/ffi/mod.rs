//! The C ABI. Every `unsafe` block and `extern "C"` function of the crate lives under this
//! module; the rest is safe Rust that the functions here call.
//!
//! Conventions (see also the README's "API conventions"):
//! - Opaque handles are made by `*_new` and released by `*_free`; `*_free` accepts NULL.
//! - Strings in are `(pointer, length)` pairs and never need a NUL terminator; they must be
//!   UTF-8. Strings out are borrowed from a handle (valid until it is freed) or static.
//! - Every function body runs inside [`ffi_panic_boundary!`]: a panic becomes
//!   `JWT_STATUS_INTERNAL` (or NULL / false / 500), never an unwind into C.
//! - NULL where a pointer is required returns `JWT_STATUS_NULL_ARGUMENT`.
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

pub mod claims;
pub mod config;
pub mod log;
pub mod status;
pub mod verifier;

use crate::error::Status;
use std::os::raw::c_char;

/// What an exported function returns when its body panicked.
pub(crate) trait PanicDefault {
    fn on_panic() -> Self;
}

impl PanicDefault for Status {
    fn on_panic() -> Self {
        Status::Internal
    }
}

impl PanicDefault for bool {
    fn on_panic() -> Self {
        false
    }
}

impl PanicDefault for u16 {
    fn on_panic() -> Self {
        500
    }
}

impl PanicDefault for u64 {
    fn on_panic() -> Self {
        0
    }
}

impl PanicDefault for () {
    fn on_panic() -> Self {}
}

impl<T> PanicDefault for *mut T {
    fn on_panic() -> Self {
        std::ptr::null_mut()
    }
}

impl<T> PanicDefault for *const T {
    fn on_panic() -> Self {
        std::ptr::null()
    }
}

/// Run an exported function's body, turning a panic into the return type's panic value.
macro_rules! ffi_panic_boundary {
    ($($body:tt)*) => {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(_) => <_ as $crate::ffi::PanicDefault>::on_panic(),
        }
    };
}
pub(crate) use ffi_panic_boundary;

/// Turn a `Result` whose error is a status into the status to return.
pub(crate) fn to_status(result: Result<(), Status>) -> Status {
    match result {
        Ok(()) => Status::Ok,
        Err(s) => s,
    }
}

/// Largest length accepted for any input string, far beyond any real token or JWKS.
const MAX_INPUT_LEN: usize = 64 * 1024 * 1024;

/// Borrow `(ptr, len)` as bytes. NULL is an error even with `len == 0`.
pub(crate) fn bytes_arg<'a>(ptr: *const c_char, len: usize) -> Result<&'a [u8], Status> {
    if ptr.is_null() {
        return Err(Status::NullArgument);
    }
    if len > MAX_INPUT_LEN {
        return Err(Status::InvalidArgument);
    }
    // SAFETY: the caller promises `ptr` points to `len` readable bytes that outlive the call;
    // `ptr` is non-null and `len` is bounded far below `isize::MAX`.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// Borrow `(ptr, len)` as UTF-8 text.
pub(crate) fn str_arg<'a>(ptr: *const c_char, len: usize) -> Result<&'a str, Status> {
    std::str::from_utf8(bytes_arg(ptr, len)?).map_err(|_| Status::InvalidArgument)
}

/// Borrow a handle made by this library.
pub(crate) fn ref_arg<'a, T>(ptr: *const T) -> Result<&'a T, Status> {
    // SAFETY: non-null handles passed in were made by this library's `*_new` functions and
    // have not been freed (the documented contract).
    unsafe { ptr.as_ref() }.ok_or(Status::NullArgument)
}

/// Borrow a handle made by this library, mutably.
pub(crate) fn mut_arg<'a, T>(ptr: *mut T) -> Result<&'a mut T, Status> {
    // SAFETY: as for `ref_arg`; the caller does not use the handle from another thread
    // during configuration calls (documented).
    unsafe { ptr.as_mut() }.ok_or(Status::NullArgument)
}

/// Write `value` through an out-pointer.
pub(crate) fn write_out<T>(out: *mut T, value: T) -> Result<(), Status> {
    if out.is_null() {
        return Err(Status::NullArgument);
    }
    // SAFETY: non-null out-pointers point to writable storage for a `T` (documented).
    unsafe { out.write(value) };
    Ok(())
}

/// Copy `bytes` and a terminating NUL into a caller's buffer of `capacity` bytes (which must
/// be larger than `bytes`).
pub(crate) fn copy_out(bytes: &[u8], buffer: *mut c_char, capacity: usize) -> Result<(), Status> {
    if buffer.is_null() || capacity <= bytes.len() {
        return Err(Status::InvalidArgument);
    }
    // SAFETY: the caller promises `buffer` points to `capacity` writable bytes; we write
    // `bytes.len() + 1 <= capacity` of them.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer.cast::<u8>(), bytes.len());
        buffer.add(bytes.len()).write(0);
    }
    Ok(())
}

/// Move a value to the heap and hand it to C as an opaque pointer.
pub(crate) fn into_handle<T, H: Handle>(value: T) -> *mut H {
    LIVE[H::KIND].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Box::into_raw(Box::new(value)).cast::<H>()
}

/// Take back and drop a handle made by [`into_handle`] with the same `T`. NULL is fine.
pub(crate) fn free_handle<T, H: Handle>(ptr: *mut H) {
    if !ptr.is_null() {
        LIVE[H::KIND].fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the pointer came from `into_handle::<T, H>` and is freed once (documented).
        drop(unsafe { Box::from_raw(ptr.cast::<T>()) });
    }
}

/// Handles made and not yet freed, by kind: configs, verifiers, claims.
static LIVE: [std::sync::atomic::AtomicU64; 3] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 3];

/// An opaque handle type of the C ABI, counted by kind in [`LIVE`].
pub(crate) trait Handle {
    /// Its index in [`LIVE`] (and `jwt_live_handles`'s `kind`).
    const KIND: usize;
}

impl Handle for config::jwt_config {
    const KIND: usize = 0;
}

impl Handle for verifier::jwt_verifier {
    const KIND: usize = 1;
}

impl Handle for claims::jwt_claims {
    const KIND: usize = 2;
}

/// How many handles of a kind are made and not yet freed in this process: `kind` 0 configs,
/// 1 verifiers, 2 claims (0 for any other number). For leak checks: a program (or a test
/// suite) that freed everything sees 0 for each.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_live_handles(kind: u32) -> u64 {
    ffi_panic_boundary! {
        LIVE.get(kind as usize)
            .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Whether `value` (`len` bytes) can be a request's authority, `host[:port]` as in a `Host` or
/// `X-Forwarded-Host` header: RFC 3986 host characters (an IPv6 literal in brackets) and an
/// optional port up to 65535; no `/`, `?`, `#`, `@`, backslash or other `:`. A host that builds
/// the request URL for `jwt_verify_request` from such a header checks it first and passes no URL
/// when it fails: pasted into a URL, `Host: api.example/other?` names another URL. False for
/// NULL or bytes that are not UTF-8.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_is_authority(value: *const c_char, len: usize) -> bool {
    ffi_panic_boundary! {
        str_arg(value, len).is_ok_and(crate::dpop::is_authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_authority_over_the_c_abi() {
        let yes = |v: &str| jwt_is_authority(v.as_ptr().cast(), v.len());
        assert!(yes("api.example:8443") && yes("[::1]:80") && yes("api.example"));
        for bad in ["api.example/x", "api.example?", "a@b", "a:99999", "", "a b"] {
            assert!(!yes(bad), "{bad:?}");
        }
        assert!(!jwt_is_authority(std::ptr::null(), 3));
        assert!(!jwt_is_authority(b"a\xff".as_ptr().cast(), 2));
    }

    #[test]
    fn panic_becomes_the_return_types_panic_value() {
        let status: Status = ffi_panic_boundary! {
            if std::hint::black_box(true) { panic!("forced") }
            Status::Ok
        };
        assert_eq!(status, Status::Internal);
        let ptr: *mut u8 = ffi_panic_boundary! {
            if std::hint::black_box(true) { panic!("forced") }
            std::ptr::NonNull::dangling().as_ptr()
        };
        assert!(ptr.is_null());
        let flag: bool = ffi_panic_boundary! {
            if std::hint::black_box(true) { panic!("forced") }
            true
        };
        assert!(!flag);
        let http: u16 = ffi_panic_boundary! {
            if std::hint::black_box(true) { panic!("forced") }
            200
        };
        assert_eq!(http, 500);
        let fine: Status = ffi_panic_boundary! { Status::Ok };
        assert_eq!(fine, Status::Ok);
    }

    #[test]
    fn argument_helpers_reject_null_and_bad_utf8() {
        assert_eq!(bytes_arg(std::ptr::null(), 0), Err(Status::NullArgument));
        let bad = [0xffu8, 0xfe];
        assert_eq!(
            str_arg(bad.as_ptr().cast(), 2),
            Err(Status::InvalidArgument)
        );
        assert_eq!(str_arg(b"ok".as_ptr().cast(), 2), Ok("ok"));
        assert_eq!(
            str_arg(b"ok".as_ptr().cast(), usize::MAX),
            Err(Status::InvalidArgument)
        );
        assert_eq!(
            write_out::<u8>(std::ptr::null_mut(), 1),
            Err(Status::NullArgument)
        );
    }
}
