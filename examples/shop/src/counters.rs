//! The shop's counters, node-wide: pages served, rendered and refreshed per kind, and
//! templates decoded. Each shard adds to its own cache-line-sized slot (no shared line is
//! written on the request path); `/shop/api/stats` sums the slots.

use super::pages::Kind;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots; shards beyond this share a slot (still exact, just contended).
const SLOTS: usize = 64;

/// What is counted.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    /// A request answered from a pre-rendered page.
    Served(Kind),
    /// A request whose page this shard already held decoded (no decode, no render).
    Hit(Kind),
    /// A page rendered (first read, expiry, or a change).
    Rendered(Kind),
    /// A page rendered again and stored because something it shows changed.
    Refreshed(Kind),
    /// A stored page decoded into a shard's memory.
    Decoded,
    /// A request for an id that names no page.
    NotFound,
}

const KINDS: usize = 3;
const COUNTERS: usize = 4 * KINDS + 2;

impl Counter {
    fn index(self) -> usize {
        match self {
            Counter::Served(k) => k as usize,
            Counter::Hit(k) => KINDS + k as usize,
            Counter::Rendered(k) => 2 * KINDS + k as usize,
            Counter::Refreshed(k) => 3 * KINDS + k as usize,
            Counter::Decoded => 4 * KINDS,
            Counter::NotFound => 4 * KINDS + 1,
        }
    }
}

#[repr(align(128))]
#[derive(Default)]
struct Slot([AtomicU64; COUNTERS]);

pub struct Counters {
    slots: Box<[Slot]>,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

impl Counters {
    /// Counts one `c` on shard `shard`.
    pub fn add(&self, shard: usize, c: Counter) {
        self.slots[shard % SLOTS].0[c.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn total(&self, c: Counter) -> u64 {
        let i = c.index();
        self.slots
            .iter()
            .map(|s| s.0[i].load(Ordering::Relaxed))
            .sum()
    }

    /// Every counter, as `/shop/api/stats` shows them.
    pub fn json(&self) -> Value {
        let per_kind = |f: fn(Kind) -> Counter| {
            let mut m = serde_json::Map::new();
            for k in Kind::ALL {
                m.insert(k.name().into(), json!(self.total(f(k))));
            }
            Value::Object(m)
        };
        json!({
            "served": per_kind(Counter::Served),
            "hits": per_kind(Counter::Hit),
            "renders": per_kind(Counter::Rendered),
            "refreshes": per_kind(Counter::Refreshed),
            "decoded": self.total(Counter::Decoded),
            "not_found": self.total(Counter::NotFound),
        })
    }
}
