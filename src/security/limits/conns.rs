//! Open connections per client address on one shard: a count per address, taken when a
//! connection is accepted and given back when it ends (`Slot` gives it back on drop). The map
//! holds only addresses with open connections, so it is bounded by the shard's connection cap.

use super::addr::IpKey;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// One shard's open connections of one protocol, by address.
pub struct ConnCounts {
    max_per_ip: u32,
    open: RefCell<HashMap<IpKey, u32>>,
}

impl ConnCounts {
    pub fn new(max_per_ip: u32) -> Rc<ConnCounts> {
        Rc::new(ConnCounts {
            max_per_ip,
            open: RefCell::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `key`, or `None` if the address has `max_per_ip` open.
    pub fn open(self: &Rc<Self>, key: IpKey) -> Option<Slot> {
        let mut open = self.open.borrow_mut();
        let n = open.entry(key).or_insert(0);
        if *n >= self.max_per_ip {
            if *n == 0 {
                open.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: Some(self.clone()),
            key,
        })
    }

    /// Open connections from `key`.
    pub fn of(&self, key: IpKey) -> u32 {
        self.open.borrow().get(&key).copied().unwrap_or(0)
    }

    /// Addresses with open connections.
    pub fn addresses(&self) -> usize {
        self.open.borrow().len()
    }

    fn close(&self, key: IpKey) {
        let mut open = self.open.borrow_mut();
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

/// A counted connection; dropping it gives the count back. An uncounted one (exempt address,
/// limit off) holds nothing.
pub struct Slot {
    counts: Option<Rc<ConnCounts>>,
    key: IpKey,
}

impl Slot {
    /// A connection that is not counted.
    pub fn uncounted(key: IpKey) -> Slot {
        Slot { counts: None, key }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(c) = self.counts.take() {
            c.close(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_bound_and_gets_counts_back() {
        let c = ConnCounts::new(2);
        let a = IpKey::of("10.0.0.1".parse().unwrap());
        let b = IpKey::of("10.0.0.2".parse().unwrap());
        let s1 = c.open(a).unwrap();
        let _s2 = c.open(a).unwrap();
        assert!(c.open(a).is_none());
        assert!(c.open(b).is_some(), "another address is not affected");
        drop(s1);
        assert_eq!(c.of(a), 1);
        let s3 = c.open(a);
        assert!(s3.is_some());
        drop(s3);
        drop(_s2);
        assert_eq!(c.of(a), 0);
        assert_eq!(
            c.addresses(),
            0,
            "addresses without connections are forgotten"
        );
    }
}
