//! Messages for the host's log. Silent until a host installs a sink: nginx routes them to its
//! error log, Python to `logging`, the CLI to stderr.

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

static SINK: RwLock<Option<(Level, Sink)>> = RwLock::new(None);

/// Install a sink for messages at `max_level` and more severe, replacing any earlier one;
/// `None` silences the library.
pub fn set_sink(sink: Option<(Level, Sink)>) {
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = sink;
}

/// Deliver a message (built only when a sink wants it).
pub fn emit(level: Level, message: impl FnOnce() -> String) {
    let sink = SINK
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .filter(|(max, _)| level <= *max)
        .map(|(_, s)| s.clone());
    if let Some(sink) = sink {
        sink(level, &message());
    }
}
