//! The failures a shard remembers for one caching table: an origin call that failed (or found
//! no record) is answered again, without calling the origin, until its short TTL passes.
//! Bounded: past `MAX_REMEMBERED` the oldest entries are forgotten first.

use super::Failure;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Most failures remembered per caching table per shard.
pub const MAX_REMEMBERED: usize = 4096;

/// Remembered failures by record id, with the order they expire in (one TTL per table, so
/// insertion order is expiry order).
#[derive(Default)]
pub(crate) struct Negative {
    by_id: HashMap<String, (Failure, Instant)>,
    order: VecDeque<(String, Instant)>,
}

impl Negative {
    /// The failure remembered for `id`, if it has not expired.
    pub fn get(&mut self, id: &str, now: Instant) -> Option<Failure> {
        match self.by_id.get(id) {
            Some((f, until)) if now < *until => Some(f.clone()),
            Some(_) => {
                self.by_id.remove(id);
                None
            }
            None => None,
        }
    }

    /// Remembers `failure` for `id` until `until`.
    pub fn insert(&mut self, id: &str, failure: Failure, now: Instant, until: Instant) {
        while let Some((old, expires)) = self.order.front() {
            if *expires > now && self.order.len() < MAX_REMEMBERED {
                break;
            }
            if self.by_id.get(old).is_some_and(|(_, u)| u == expires) {
                self.by_id.remove(old);
            }
            self.order.pop_front();
        }
        self.by_id.insert(id.to_string(), (failure, until));
        self.order.push_back((id.to_string(), until));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_failure_is_answered_until_its_ttl_passes() {
        let mut n = Negative::default();
        let t = Instant::now();
        n.insert("a", Failure::NotFound, t, t + Duration::from_secs(1));
        assert!(n.get("a", t + Duration::from_millis(999)).is_some());
        assert!(n.get("a", t + Duration::from_secs(1)).is_none());
        assert_eq!(n.len(), 0);
    }

    #[test]
    fn the_oldest_are_forgotten_past_the_bound() {
        let mut n = Negative::default();
        let t = Instant::now();
        let until = t + Duration::from_secs(60);
        for i in 0..MAX_REMEMBERED + 10 {
            n.insert(&i.to_string(), Failure::NotFound, t, until);
        }
        assert_eq!(n.len(), MAX_REMEMBERED);
        assert!(n.get("0", t).is_none());
        assert!(n.get(&(MAX_REMEMBERED + 9).to_string(), t).is_some());
    }
}
