//! A histogram with power-of-two buckets that one thread records into and any thread reads:
//! bucket `i` counts values in `(2^(i-1), 2^i]` (bucket 0 holds 0 and 1; the last bucket also
//! holds everything above). Recording is a load and a store on the recording thread's own cache
//! line (no read-modify-write: there is only one writer); readers see each counter whole.
//! The writer threads use it for group sizes and commit times, which `/metrics` exposes.

use std::sync::atomic::{AtomicU64, Ordering};

/// `N` buckets, the last one catching every larger value, plus the sum of the values.
#[derive(Debug)]
#[repr(align(128))]
pub struct Pow2Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    sum: AtomicU64,
}

impl<const N: usize> Default for Pow2Histogram<N> {
    fn default() -> Self {
        Pow2Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Pow2Histogram<N> {
    /// Records `v`. Only one thread may record into a histogram.
    pub fn record(&self, v: u64) {
        let i = bucket_of(v).min(N - 1);
        bump(&self.buckets[i], 1);
        bump(&self.sum, v);
    }

    /// The upper bound of bucket `i` (`None` for the last one, which is unbounded).
    pub fn upper_bound(i: usize) -> Option<u64> {
        (i + 1 < N).then(|| 1u64 << i)
    }

    /// The count of each bucket (not cumulative) and the sum, as of now.
    pub fn read(&self) -> ([u64; N], u64) {
        let counts = std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed));
        (counts, self.sum.load(Ordering::Relaxed))
    }
}

/// The smallest `i` with `v <= 2^i`.
fn bucket_of(v: u64) -> usize {
    if v <= 1 {
        0
    } else {
        (64 - (v - 1).leading_zeros()) as usize
    }
}

/// Adds to a counter only this thread writes.
fn bump(c: &AtomicU64, by: u64) {
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_bucket_of_their_power_of_two() {
        let h = Pow2Histogram::<4>::default();
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.record(v);
        }
        let (counts, sum) = h.read();
        // (..1], (1, 2], (2, 4], (4, ∞)
        assert_eq!(counts, [2, 1, 2, 2]);
        assert_eq!(sum, 115);
        assert_eq!(Pow2Histogram::<4>::upper_bound(2), Some(4));
        assert_eq!(Pow2Histogram::<4>::upper_bound(3), None);
    }
}
