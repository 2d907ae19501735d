//! `jwt_set_log_callback`: the library's messages routed to the host's log.

use super::ffi_panic_boundary;
use crate::error::Status;
use crate::log::{self, Level};
use std::ffi::{CString, c_void};
use std::os::raw::c_char;
use std::sync::Arc;

/// Severity of a log message, most severe first.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum jwt_log_level {
    /// JWKS fetch failures, verification impossible.
    Error = 1,
    /// Skipped keys, stale keys in use, unreadable snapshot.
    Warn = 2,
    /// JWKS fetched, issuer discovered.
    Info = 3,
    /// Details.
    Debug = 4,
}

/// A log callback: `userdata` as given to `jwt_set_log_callback`, the level (a
/// `jwt_log_level` value), and the message as `(pointer, length)`, also NUL-terminated. The
/// message is valid only during the call. Called from any thread, including the library's
/// background refresh threads, so it must be thread-safe.
pub type jwt_log_callback = Option<
    extern "C" fn(userdata: *mut c_void, level: u32, message: *const c_char, message_len: usize),
>;

struct Callback {
    function: extern "C" fn(*mut c_void, u32, *const c_char, usize),
    userdata: *mut c_void,
}

impl Callback {
    fn call(&self, level: Level, message: &str) {
        let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
        (self.function)(self.userdata, level as u32, text.as_ptr(), message.len());
    }
}

// SAFETY: the host promises the callback and its userdata may be used from any thread
// (documented on `jwt_set_log_callback`).
unsafe impl Send for Callback {}
// SAFETY: as above.
unsafe impl Sync for Callback {}

/// Route the library's messages at `max_level` (a `jwt_log_level` value) and more severe to
/// `callback`, process-wide, replacing any earlier callback. NULL `callback` silences the
/// library (the default). The callback and `userdata` must stay valid until replaced, and the
/// callback must be safe to call from any thread. Returns once no call to the earlier
/// callback is running, so after it returns the earlier callback is never called again (a
/// host may unload or finalize what it needs); it must not be called from inside a callback.
#[unsafe(no_mangle)]
pub extern "C" fn jwt_set_log_callback(
    callback: jwt_log_callback,
    userdata: *mut c_void,
    max_level: u32,
) -> Status {
    ffi_panic_boundary! {
        let level = match max_level {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            _ => return Status::InvalidArgument,
        };
        match callback {
            None => log::set_sink(None),
            Some(function) => {
                let target = Callback { function, userdata };
                log::set_sink(Some((
                    level,
                    Arc::new(move |level: Level, message: &str| target.call(level, message)),
                )));
            }
        }
        Status::Ok
    }
}
