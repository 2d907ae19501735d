//! Counters that many threads bump on the hot path without sharing a cache line: each thread
//! adds to its own stripe, a read sums the stripes.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes per counter set; threads beyond this many share stripes (still correct).
const STRIPES: usize = 16;
/// Words between the starts of two stripes, beyond a stripe's own: one cache line (and the
/// adjacent-line prefetcher's pair) of separation.
const GAP_WORDS: usize = 16;

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) });
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
}

/// `width` counters, striped per thread.
pub(crate) struct Striped {
    width: usize,
    stride: usize,
    cells: Box<[AtomicU64]>,
}

impl Striped {
    /// `width` counters, all zero.
    pub(crate) fn new(width: usize) -> Striped {
        let stride = width + GAP_WORDS;
        Striped {
            width,
            stride,
            cells: (0..stride * STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Add one to counter `i` (ignored when out of range).
    pub(crate) fn add(&self, i: usize) {
        if i < self.width {
            self.cells[stripe() * self.stride + i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counter `i`, summed over the stripes.
    pub(crate) fn get(&self, i: usize) -> u64 {
        if i >= self.width {
            return 0;
        }
        (0..STRIPES)
            .map(|s| self.cells[s * self.stride + i].load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sums_every_threads_additions() {
        let c = Arc::new(Striped::new(3));
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(1);
                    }
                    c.add(2);
                    c.add(3);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((c.get(0), c.get(1), c.get(2), c.get(3)), (0, 20_000, 20, 0));
    }
}
