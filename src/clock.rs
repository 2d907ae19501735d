//! Time as the verifier sees it: the system clock, or a clock tests move by hand.
//!
//! Two readings: `now()`, the wall clock, for what tokens and snapshot files say (`exp`,
//! `fetched_at`); and `ticks()`, a monotonic count of seconds, for scheduling (refresh,
//! backoff, cooldowns), so that a step of the wall clock neither freezes nor rushes them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of the current time in seconds since the Unix epoch (fractions allowed).
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// A clock that only moves when told to; shared by its clones.
    Manual(Arc<ManualTime>),
}

/// The two readings of a manual clock, in milliseconds.
#[derive(Debug)]
pub struct ManualTime {
    wall: AtomicI64,
    ticks: AtomicI64,
}

/// The instant `ticks()` counts from (the first use in this process; kept across fork, as
/// the monotonic clock is system-wide).
static TICKS_BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

impl Clock {
    /// A manual clock starting at `unix_secs` (its ticks start there too).
    pub fn manual(unix_secs: i64) -> Clock {
        Clock::Manual(Arc::new(ManualTime {
            wall: AtomicI64::new(unix_secs * 1000),
            ticks: AtomicI64::new(unix_secs * 1000),
        }))
    }

    /// Seconds since the Unix epoch, by the wall clock.
    pub fn now(&self) -> f64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            Clock::Manual(t) => t.wall.load(Ordering::SeqCst) as f64 / 1000.0,
        }
    }

    /// Seconds on a monotonic clock (an arbitrary origin; only differences mean anything).
    pub fn ticks(&self) -> f64 {
        match self {
            Clock::System => TICKS_BASE.elapsed().as_secs_f64(),
            Clock::Manual(t) => t.ticks.load(Ordering::SeqCst) as f64 / 1000.0,
        }
    }

    /// Let time pass on a manual clock (both readings; a negative value moves both back).
    /// No effect on the system clock.
    pub fn advance(&self, secs: f64) {
        if let Clock::Manual(t) = self {
            let ms = (secs * 1000.0) as i64;
            t.wall.fetch_add(ms, Ordering::SeqCst);
            t.ticks.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Step the wall reading of a manual clock (an operator or NTP setting the clock): the
    /// monotonic reading does not move. No effect on the system clock.
    pub fn step_wall(&self, secs: f64) {
        if let Clock::Manual(t) = self {
            t.wall.fetch_add((secs * 1000.0) as i64, Ordering::SeqCst);
        }
    }

    /// Set the wall reading of a manual clock (a step; ticks do not move). No effect on the
    /// system clock.
    pub fn set(&self, unix_secs: f64) {
        if let Clock::Manual(t) = self {
            t.wall.store((unix_secs * 1000.0) as i64, Ordering::SeqCst);
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
        assert_eq!(c.ticks(), 1000.0);
        shared.advance(1.5);
        assert_eq!(c.now(), 1001.5);
        assert_eq!(c.ticks(), 1001.5);
        c.set(5.0);
        assert_eq!(shared.now(), 5.0);
        assert_eq!(shared.ticks(), 1001.5);
        c.step_wall(10.0);
        assert_eq!((c.now(), c.ticks()), (15.0, 1001.5));
        assert!(Clock::System.now() > 1.7e9);
        let t = Clock::System.ticks();
        assert!(Clock::System.ticks() >= t);
    }
}
