//! Which MQTT topics each peer wants, so that a message crosses only to nodes that have a
//! subscriber for it (retained messages always cross: every node keeps the retained store).
//!
//! This node's side is `mqtt::interest::NodeInterest`: each outbound link sends its whole set
//! when it starts (`Interest { reset }`) and the log's changes after it (`frames`).
//!
//! The peers' side (`PeerInterest`, on the cluster executor): per peer, a trie of the filters
//! it announced; `forward::run` queues a message for a link only when the peer's trie matches
//! the topic. Until a peer's first announcement arrives, nothing but retained messages goes to
//! it. So a subscription made on one node takes effect on the others once its announcement
//! arrives (a link's round of a few hundred microseconds on a LAN).

use super::frame::{Frame, InterestChange};
use crate::mqtt::interest::{FilterChange, NodeInterest, Update};
use crate::mqtt::trie::Trie;
use std::collections::HashMap;

/// Most filters a peer may announce (more closes the link as misbehaving).
pub const MAX_PEER_FILTERS: usize = 4_000_000;

/// Appends to `out` the `Interest` frames a link whose announcements reached `*at` sends
/// now (none when nothing changed), each within `budget` bytes of filters.
pub fn frames(node: &NodeInterest, at: &mut Option<u64>, budget: usize, out: &mut Vec<Frame>) {
    let (mut reset, changes) = match node.next(at) {
        Update::None => return,
        Update::Reset(all) => (true, all.into_iter().map(|f| (f, true)).collect()),
        Update::Changes(c) => (false, c),
    };
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for (filter, add) in changes {
        if bytes + filter.len() + 16 > budget && !chunk.is_empty() {
            out.push(Frame::Interest {
                reset,
                changes: std::mem::take(&mut chunk),
            });
            reset = false;
            bytes = 0;
        }
        bytes += filter.len() + 16;
        chunk.push(InterestChange { filter, add });
    }
    // A reset is sent even when the set is empty: the peer forgets what it held.
    if !chunk.is_empty() || reset {
        out.push(Frame::Interest {
            reset,
            changes: chunk,
        });
    }
}

/// Checks an announcement from the network: every filter must be one an MQTT client could
/// subscribe with (at most 65 535 bytes, valid wildcards).
pub fn check(changes: Vec<InterestChange>) -> Result<Vec<FilterChange>, String> {
    changes
        .into_iter()
        .map(|c| {
            if c.filter.len() > 65_535 || !crate::mqtt::topic::valid_filter(&c.filter) {
                Err(format!(
                    "Interest with an invalid topic filter {:?}",
                    c.filter
                ))
            } else {
                Ok((c.filter, c.add))
            }
        })
        .collect()
}

/// The filters each peer announced (cluster executor only).
#[derive(Default)]
pub struct PeerInterest {
    peers: HashMap<u16, Trie<()>>,
}

impl PeerInterest {
    /// Applies an announcement of `peer`; `Err` when it goes past `MAX_PEER_FILTERS`.
    pub fn apply(
        &mut self,
        peer: u16,
        reset: bool,
        changes: Vec<FilterChange>,
    ) -> Result<(), String> {
        let trie = self.peers.entry(peer).or_default();
        if reset {
            *trie = Trie::default();
        }
        for (filter, add) in changes {
            if add {
                trie.get_or_insert_with(&filter, || ());
                if trie.len() > MAX_PEER_FILTERS {
                    return Err(format!("more than {MAX_PEER_FILTERS} filters announced"));
                }
            } else {
                trie.update(&filter, |_| true);
            }
        }
        Ok(())
    }

    /// Whether `peer` has a subscriber for `topic`.
    pub fn wants(&self, peer: u16, topic: &str) -> bool {
        let mut hit = false;
        if let Some(t) = self.peers.get(&peer) {
            t.for_each_match(topic, |_| hit = true);
        }
        hit
    }

    /// Filters `peer` announced.
    pub fn count(&self, peer: u16) -> usize {
        self.peers.get(&peer).map_or(0, |t| t.len())
    }

    /// Filters all peers announced.
    pub fn total(&self) -> usize {
        self.peers.values().map(|t| t.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_with_invalid_filters_are_refused() {
        let change = |f: &str| InterestChange {
            filter: f.to_string(),
            add: true,
        };
        assert_eq!(
            check(vec![change("a/+/b"), change("#")]).unwrap(),
            vec![("a/+/b".to_string(), true), ("#".to_string(), true)]
        );
        for bad in ["a/#/b", "a+", "", "x#"] {
            assert!(check(vec![change("ok"), change(bad)]).is_err(), "{bad:?}");
        }
        assert!(check(vec![change(&"a".repeat(70_000))]).is_err());
    }

    #[test]
    fn peers_match_what_they_announced() {
        let mut p = PeerInterest::default();
        assert!(!p.wants(2, "a/b"));
        p.apply(2, true, vec![("a/+".into(), true), ("c/#".into(), true)])
            .unwrap();
        assert!(p.wants(2, "a/b") && p.wants(2, "c/d/e") && !p.wants(2, "b/a"));
        assert!(!p.wants(3, "a/b"));
        p.apply(2, false, vec![("a/+".into(), false)]).unwrap();
        assert!(!p.wants(2, "a/b"));
        p.apply(2, true, vec![("x".into(), true)]).unwrap();
        assert!(!p.wants(2, "c/d") && p.wants(2, "x"));
        assert_eq!(p.count(2), 1);
    }
}
