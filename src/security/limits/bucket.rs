//! Token buckets: one bucket (a rate and a size), and a bounded map of buckets by key, as
//! each shard keeps them for addresses and users. Single-threaded (a shard's own), no atomics:
//! a check is one map lookup and a few arithmetic operations.
//!
//! The map holds at most `max` keys. A bucket that has refilled to its size is the same as a
//! new one, so forgetting it loses nothing: when the map is full, a sweep drops every full
//! bucket (at most once per refill time, so a flood of new keys cannot make every request
//! scan the map). A new key that still finds no room shares one overflow bucket with every
//! other key in that position until a later sweep makes room: known clients keep their own
//! rate, newcomers during a flood of addresses share one.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// A rate (tokens per nanosecond) and a size (tokens).
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    per_ns: f64,
    burst: f64,
}

impl Rate {
    /// `per_sec` tokens a second, at most `burst` at once. `None` when `per_sec` is 0 (off).
    pub fn new(per_sec: u32, burst: u32) -> Option<Rate> {
        (per_sec > 0).then(|| Rate {
            per_ns: per_sec as f64 / 1e9,
            burst: burst.max(1) as f64,
        })
    }

    /// Nanoseconds an empty bucket takes to fill.
    fn fill_ns(&self) -> u64 {
        (self.burst / self.per_ns) as u64
    }
}

/// One bucket: the tokens it held at `last_ns`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last_ns: u64,
}

impl Bucket {
    /// A full bucket.
    pub fn full(rate: &Rate, now_ns: u64) -> Bucket {
        Bucket {
            tokens: rate.burst,
            last_ns: now_ns,
        }
    }

    /// Takes a token; `Err` holds the nanoseconds until one is there.
    pub fn take(&mut self, rate: &Rate, now_ns: u64) -> Result<(), u64> {
        let elapsed = now_ns.saturating_sub(self.last_ns) as f64;
        self.tokens = (self.tokens + elapsed * rate.per_ns).min(rate.burst);
        self.last_ns = now_ns.max(self.last_ns);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / rate.per_ns).ceil() as u64).max(1))
        }
    }

    /// Whether the bucket has refilled to its size by `now_ns` (forgetting it changes nothing).
    fn is_full(&self, rate: &Rate, now_ns: u64) -> bool {
        let elapsed = now_ns.saturating_sub(self.last_ns) as f64;
        self.tokens + elapsed * rate.per_ns >= rate.burst
    }
}

/// What taking a token for a key came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Its own bucket had a token.
    Ok,
    /// The map was full: the key shares the overflow bucket, which had a token.
    Overflow,
    /// No token: the nanoseconds until there is one (and whether it was the overflow bucket).
    Refused { wait_ns: u64, overflow: bool },
}

/// Buckets by key, at most `max` of them, and the overflow bucket.
pub struct Buckets<K> {
    rate: Rate,
    max: usize,
    map: HashMap<K, Bucket>,
    overflow: Bucket,
    /// No sweep before this time (one per refill time at most).
    next_sweep_ns: u64,
}

impl<K: Hash + Eq> Buckets<K> {
    pub fn new(rate: Rate, max: usize) -> Buckets<K> {
        Buckets {
            rate,
            max: max.max(1),
            map: HashMap::new(),
            overflow: Bucket::full(&rate, 0),
            next_sweep_ns: 0,
        }
    }

    /// Takes a token from `key`'s bucket (a new key starts full).
    pub fn take<Q>(&mut self, key: &Q, now_ns: u64) -> Taken
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(b) = self.map.get_mut(key) {
            return match b.take(&self.rate, now_ns) {
                Ok(()) => Taken::Ok,
                Err(wait_ns) => Taken::Refused {
                    wait_ns,
                    overflow: false,
                },
            };
        }
        if self.map.len() >= self.max && now_ns >= self.next_sweep_ns {
            self.sweep(now_ns);
        }
        if self.map.len() < self.max {
            let mut b = Bucket::full(&self.rate, now_ns);
            let _ = b.take(&self.rate, now_ns);
            self.map.insert(key.to_owned(), b);
            return Taken::Ok;
        }
        match self.overflow.take(&self.rate, now_ns) {
            Ok(()) => Taken::Overflow,
            Err(wait_ns) => Taken::Refused {
                wait_ns,
                overflow: true,
            },
        }
    }

    /// Forgets every bucket that has refilled.
    fn sweep(&mut self, now_ns: u64) {
        let rate = self.rate;
        self.map.retain(|_, b| !b.is_full(&rate, now_ns));
        self.next_sweep_ns = now_ns.saturating_add(rate.fill_ns().max(1_000_000));
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let rate = Rate::new(10, 3).unwrap();
        let mut b = Bucket::full(&rate, 0);
        for _ in 0..3 {
            assert_eq!(b.take(&rate, 0), Ok(()));
        }
        let wait = b.take(&rate, 0).unwrap_err();
        assert!(
            wait.abs_diff(SEC / 10) <= 1,
            "one token every 100 ms: {wait}"
        );
        assert!(b.take(&rate, SEC / 20).is_err(), "half a token is not one");
        assert_eq!(b.take(&rate, SEC / 10 + 10), Ok(()));
        // Idle for long: it holds its burst, no more.
        for _ in 0..3 {
            assert_eq!(b.take(&rate, 100 * SEC), Ok(()));
        }
        assert!(b.take(&rate, 100 * SEC).is_err());
        assert!(Rate::new(0, 5).is_none(), "a rate of 0 is off");
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let mut m: Buckets<u32> = Buckets::new(Rate::new(1, 2).unwrap(), 10);
        assert_eq!(m.take(&1, 0), Taken::Ok);
        assert_eq!(m.take(&1, 0), Taken::Ok);
        assert!(matches!(
            m.take(&1, 0),
            Taken::Refused {
                overflow: false,
                ..
            }
        ));
        assert_eq!(m.take(&2, 0), Taken::Ok, "another key is not affected");
        assert_eq!(m.take(&1, SEC), Taken::Ok, "recovers after a second");
    }

    #[test]
    fn a_full_map_sends_new_keys_to_the_overflow_bucket_until_idle_keys_go() {
        let mut m: Buckets<u32> = Buckets::new(Rate::new(10, 2).unwrap(), 2);
        assert_eq!(m.take(&1, 0), Taken::Ok);
        assert_eq!(m.take(&2, 0), Taken::Ok);
        // Full, and nothing has refilled: newcomers share one bucket.
        assert_eq!(m.take(&3, 1), Taken::Overflow);
        assert_eq!(m.take(&4, 1), Taken::Overflow);
        assert!(matches!(
            m.take(&5, 1),
            Taken::Refused { overflow: true, .. }
        ));
        assert_eq!(m.len(), 2, "the map never grows past its bound");
        // Known keys keep their own buckets meanwhile.
        assert_eq!(m.take(&1, 1), Taken::Ok);
        // Once the keys have refilled (200 ms) a sweep forgets them, and a newcomer gets a
        // bucket of its own.
        assert_eq!(m.take(&3, SEC), Taken::Ok);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn sweeps_are_rate_limited() {
        let mut m: Buckets<u32> = Buckets::new(Rate::new(10, 2).unwrap(), 1);
        assert_eq!(m.take(&1, 0), Taken::Ok);
        assert_eq!(
            m.take(&2, 0),
            Taken::Overflow,
            "the first sweep finds 1 still draining"
        );
        // Key 1 is full again at 100 ms, but the next sweep waits for the refill time (200 ms).
        assert_eq!(m.take(&3, SEC / 10 + 1), Taken::Overflow);
        assert_eq!(m.take(&3, SEC / 5 + 1), Taken::Ok);
    }

    #[test]
    fn borrowed_lookups_for_string_keys() {
        let mut m: Buckets<String> = Buckets::new(Rate::new(1, 1).unwrap(), 4);
        assert_eq!(m.take("alice", 0), Taken::Ok);
        assert!(matches!(m.take("alice", 0), Taken::Refused { .. }));
        assert_eq!(m.take("bob", 0), Taken::Ok);
    }
}
