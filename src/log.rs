//! Messages for the host's log. Silent until a host installs a sink: nginx routes them to its
//! error log, Python to `logging`, the CLI to stderr.

use std::cell::Cell;
use std::sync::{Arc, PoisonError, RwLock};

/// Severity of a message.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Failures that leave the verifier working on stale keys or unable to verify.
    Error = 1,
    /// Something the operator should look at (skipped keys, stale keys in use).
    Warn = 2,
    /// Normal events worth a line (a JWKS fetched, keys rotated).
    Info = 3,
    /// Details for debugging.
    Debug = 4,
}

/// A log sink.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// The sink is called under the read lock, so replacing it (the write lock) waits until no
/// call to the old sink is running: after [`set_sink`] returns, the old sink is never called
/// again. Python relies on this to detach its callback before the interpreter shuts down.
static SINK: RwLock<Option<(Level, Sink)>> = RwLock::new(None);

thread_local! {
    /// Set while this thread runs the sink: a message the sink itself causes is dropped
    /// instead of taking the lock again.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Install a sink for messages at `max_level` and more severe, replacing any earlier one;
/// `None` silences the library. Returns once no call to the earlier sink is running. Must
/// not be called from inside a sink (it would wait for itself).
pub fn set_sink(sink: Option<(Level, Sink)>) {
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = sink;
}

/// Deliver a message (built only when a sink wants it).
pub fn emit(level: Level, message: impl FnOnce() -> String) {
    if IN_SINK.with(Cell::get) {
        return;
    }
    let guard = SINK.read().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, sink)) = guard.as_ref().filter(|(max, _)| level <= *max) {
        IN_SINK.with(|f| f.set(true));
        sink(level, &message());
        IN_SINK.with(|f| f.set(false));
    }
}
