//! Keeps a subscriber from receiving one record version twice, or an older version after a
//! newer one, where a subscription's first batch (the records' current values read from
//! storage, or changes replayed from the change logs) meets the live changes that start
//! flowing as soon as the subscription exists. Live events of one record come in commit order
//! from the shard that owns it, so only the first batch can overlap them:
//!
//! - while a subscription is being set up (`recording`), the versions of live record events
//!   delivered are remembered, so the first batch skips what already went out;
//! - the first batch's versions are remembered, so a live event not newer is dropped; each is
//!   forgotten once a newer live event of its record went out.
//!
//! The map never holds more than `cap` records: past it, nothing more is remembered (a
//! duplicate may then reach the client, never a loss). A stream keeps one for its life, with
//! room for its first batch; an MQTT session keeps one of `SESSION_CAP` records, emptied when
//! its connection ends (a reconnecting client subscribes, or resumes its queue, afresh).

use super::message::Message;
use crate::storage::hlc::Version;
use std::collections::HashMap;

/// The most records an MQTT session remembers.
pub const SESSION_CAP: usize = 1024;

pub struct Fresh {
    sent: HashMap<String, Version>,
    cap: usize,
}

impl Fresh {
    pub fn new(cap: usize) -> Fresh {
        Fresh {
            sent: HashMap::new(),
            cap,
        }
    }

    /// Whether to send `m` of the first batch (it is remembered).
    pub fn first(&mut self, m: &Message) -> bool {
        let Some(v) = m.version else {
            return true;
        };
        if self.sent.get(&m.topic).is_some_and(|prev| *prev >= v) {
            return false;
        }
        self.remember(&m.topic, v);
        true
    }

    /// Whether to send live event `m`; with `recording` (a first batch is on its way) its
    /// version is remembered for that batch.
    pub fn live(&mut self, m: &Message, recording: bool) -> bool {
        let Some(v) = m.version else {
            return true;
        };
        if self.sent.is_empty() && !recording {
            return true; // the common case: no first batch around, nothing to hash
        }
        match self.sent.get(&m.topic) {
            Some(prev) if *prev >= v => return false,
            Some(_) if !recording => {
                self.sent.remove(&m.topic);
            }
            _ if recording => self.remember(&m.topic, v),
            _ => {}
        }
        true
    }

    fn remember(&mut self, topic: &str, v: Version) {
        if let Some(prev) = self.sent.get_mut(topic) {
            *prev = v;
        } else if self.sent.len() < self.cap {
            self.sent.insert(topic.to_string(), v);
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.sent = HashMap::new();
    }

    /// Records remembered now.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Fresh;
    use crate::mqtt::message::Message;
    use crate::storage::hlc::Version;

    fn event(id: &str, clock: u64) -> Message {
        let v = Version { clock, node: 1 };
        crate::mqtt::tables::record_message(format!("T/{id}"), b"{}", v)
    }

    #[test]
    fn live_events_older_than_the_first_batch_are_dropped_then_forgotten() {
        let mut f = Fresh::new(100);
        assert!(f.first(&event("a", 5)));
        assert!(
            !f.first(&event("a", 4)),
            "an older replayed change after the current value"
        );
        assert!(f.first(&event("b", 1)));
        assert_eq!(f.len(), 2);
        assert!(!f.live(&event("a", 5), false), "the same version live");
        assert!(f.live(&event("a", 6), false));
        assert_eq!(
            f.len(),
            1,
            "a is forgotten once a newer live event went out"
        );
        assert!(f.live(&event("a", 7), false));
        for i in 0..10_000 {
            assert!(f.live(&event(&format!("c{i}"), 1), false));
        }
        assert_eq!(f.len(), 1, "live events alone never grow the map");
    }

    #[test]
    fn a_live_event_sent_while_subscribing_keeps_the_first_batch_from_repeating_it() {
        let mut f = Fresh::new(100);
        assert!(f.live(&event("a", 5), true));
        assert!(
            !f.first(&event("a", 5)),
            "the snapshot read the same version"
        );
        assert!(!f.first(&event("a", 4)));
        assert!(f.first(&event("b", 2)));
        assert!(
            !f.live(&event("b", 2), false),
            "then the live copy of b's snapshot"
        );
    }

    #[test]
    fn the_map_stops_growing_at_its_cap() {
        let mut f = Fresh::new(3);
        for i in 0..10 {
            assert!(f.first(&event(&format!("r{i}"), 1)));
        }
        assert_eq!(f.len(), 3);
    }
}
