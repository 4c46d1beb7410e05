//! Which MQTT topics each node wants, so that a message crosses only to nodes that have a
//! subscriber for it (retained messages always cross: every node keeps the retained store).
//!
//! This node's side (`NodeInterest`, in `NodeShared`): the filters any of its shards has a
//! subscription to (sessions, persistent ones included, and SSE/WebSocket streams), kept by
//! the shards as they change their own summary, and a bounded log of the filters that came or
//! went. Each outbound link sends the whole set when it starts (`Interest { reset }`) and the
//! log's changes after it; a link that fell behind the log's start sends the whole set again.
//! A change rings the cluster executor, so it goes out within microseconds.
//!
//! The peers' side (`PeerInterest`, on the cluster executor): per peer, a trie of the filters
//! it announced; `forward::run` queues a message for a link only when the peer's trie matches
//! the topic. Until a peer's first announcement arrives, nothing but retained messages goes to
//! it. So a subscription made on one node takes effect on the others once its announcement
//! arrives (a link's round of a few hundred microseconds on a LAN).

use super::frame::{Frame, InterestChange};
use crate::mqtt::trie::Trie;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Filter changes kept for links that have not sent them yet.
pub const LOG_ENTRIES: usize = 65_536;
/// Most filters a peer may announce (more closes the link as misbehaving).
pub const MAX_PEER_FILTERS: usize = 4_000_000;

/// A filter came (`true`) or went (`false`).
pub type FilterChange = (String, bool);

#[derive(Default)]
struct Inner {
    /// Filter → the shards of this node that want it.
    filters: HashMap<String, BTreeSet<u16>>,
    /// Changes of the set, the first at sequence `log_start`.
    log: VecDeque<FilterChange>,
    log_start: u64,
}

impl Inner {
    fn seq(&self) -> u64 {
        self.log_start + self.log.len() as u64
    }
}

/// This node's filters and their change log (shared by the shards and the cluster executor).
pub struct NodeInterest {
    inner: Mutex<Inner>,
    /// Filters all peers announced together: 0 lets the shards skip offering non-retained
    /// messages to the cluster executor at all.
    pub peer_filters: AtomicUsize,
    /// The log's next sequence, readable without the lock: a link that has sent everything
    /// (every wake of every link asks) costs one atomic load.
    seq: AtomicU64,
    /// Rung when the set changed (the replication bell's channel: see `cluster::wake`).
    ring: flume::Sender<()>,
}

/// What a link sends next.
pub enum Update {
    /// Nothing new since `seq`.
    None,
    /// The whole set (the link is new or fell behind the log).
    Reset(Vec<String>),
    /// Changes since the link's sequence.
    Changes(Vec<FilterChange>),
}

impl NodeInterest {
    pub fn new(ring: flume::Sender<()>) -> NodeInterest {
        NodeInterest {
            inner: Mutex::default(),
            peer_filters: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
            ring,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shard `shard` now wants (or no longer wants) `filter`. Called by the shard itself as it
    /// changes its own summary, so the set mirrors the shards' summaries.
    pub fn update(&self, shard: u16, filter: &str, add: bool) {
        let mut g = self.lock();
        let changed = if add {
            let set = g.filters.entry(filter.to_string()).or_default();
            set.insert(shard) && set.len() == 1
        } else {
            let emptied = g
                .filters
                .get_mut(filter)
                .is_some_and(|set| set.remove(&shard) && set.is_empty());
            if emptied {
                g.filters.remove(filter);
            }
            emptied
        };
        if !changed {
            return;
        }
        g.log.push_back((filter.to_string(), add));
        if g.log.len() > LOG_ENTRIES {
            g.log.pop_front();
            g.log_start += 1;
        }
        self.seq.store(g.seq(), Ordering::Release);
        drop(g);
        let _ = self.ring.try_send(());
    }

    /// What a link that has sent everything before `*at` (`None`: nothing yet) sends next;
    /// advances `*at` past it.
    pub fn next(&self, at: &mut Option<u64>) -> Update {
        if *at == Some(self.seq.load(Ordering::Acquire)) {
            return Update::None;
        }
        let g = self.lock();
        let seq = g.seq();
        match *at {
            Some(s) if s == seq => Update::None,
            Some(s) if s >= g.log_start && s < seq => {
                *at = Some(seq);
                Update::Changes(g.log.range((s - g.log_start) as usize..).cloned().collect())
            }
            _ => {
                *at = Some(seq);
                Update::Reset(g.filters.keys().cloned().collect())
            }
        }
    }

    /// Filters this node wants.
    pub fn len(&self) -> usize {
        self.lock().filters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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
    fn the_set_mirrors_the_shards_and_links_get_resets_then_changes() {
        let (tx, rx) = flume::bounded(1);
        let n = NodeInterest::new(tx);
        let mut at = None;
        assert!(matches!(n.next(&mut at), Update::Reset(v) if v.is_empty()));
        n.update(0, "a/#", true);
        n.update(1, "a/#", true); // second shard: not a change of the node's set
        n.update(1, "b/+", true);
        assert!(rx.try_recv().is_ok());
        match n.next(&mut at) {
            Update::Changes(c) => {
                assert_eq!(c, vec![("a/#".into(), true), ("b/+".into(), true)])
            }
            _ => panic!("expected changes"),
        }
        n.update(0, "a/#", false); // shard 1 still wants it
        assert!(matches!(n.next(&mut at), Update::None));
        n.update(1, "a/#", false);
        assert!(
            matches!(n.next(&mut at), Update::Changes(c) if c == vec![("a/#".to_string(), false)])
        );
        // A new link gets the whole set.
        let mut fresh = None;
        assert!(matches!(n.next(&mut fresh), Update::Reset(v) if v == vec!["b/+".to_string()]));
    }

    #[test]
    fn a_link_behind_the_log_gets_the_whole_set_again() {
        let (tx, _rx) = flume::bounded(1);
        let n = NodeInterest::new(tx);
        let mut at = None;
        let _ = n.next(&mut at);
        for i in 0..LOG_ENTRIES + 10 {
            n.update(0, &format!("t/{i}"), true);
        }
        assert!(matches!(n.next(&mut at), Update::Reset(v) if v.len() == LOG_ENTRIES + 10));
    }

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
