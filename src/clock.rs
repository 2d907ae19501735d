//! Time as the verifier sees it: the system clock, or a clock tests move by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in seconds since the Unix epoch (fractions allowed).
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// A clock that only moves when told to; shared by its clones.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `unix_secs`.
    pub fn manual(unix_secs: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(unix_secs * 1000)))
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> f64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            Clock::Manual(ms) => ms.load(Ordering::SeqCst) as f64 / 1000.0,
        }
    }

    /// Move a manual clock forward (or back, with a negative value). No effect on the system clock.
    pub fn advance(&self, secs: f64) {
        if let Clock::Manual(ms) = self {
            ms.fetch_add((secs * 1000.0) as i64, Ordering::SeqCst);
        }
    }

    /// Set a manual clock. No effect on the system clock.
    pub fn set(&self, unix_secs: f64) {
        if let Clock::Manual(ms) = self {
            ms.store((unix_secs * 1000.0) as i64, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(1000);
        let shared = c.clone();
        assert_eq!(c.now(), 1000.0);
        shared.advance(1.5);
        assert_eq!(c.now(), 1001.5);
        c.set(5.0);
        assert_eq!(shared.now(), 5.0);
        assert!(Clock::System.now() > 1.7e9);
    }
}
