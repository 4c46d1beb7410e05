//! Which MQTT topic filters this node wants, for the peers: so that a message published on
//! another node crosses to this one only when one of its subscribers (sessions, persistent
//! ones included, and SSE/WebSocket streams) has a matching filter.
//!
//! `NodeInterest` holds the filters any shard has a subscription to, kept by the shards as
//! they change their own summary, and a bounded log of the filters that came or went. A
//! replication link sends the whole set when it starts and the log's changes after it; a link
//! that fell behind the log's start gets the whole set again. A change rings a bell (the
//! replication executor's), so it goes out within microseconds. The peers' side (what each
//! peer announced) is the replication layer's (`cluster::interest`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Filter changes kept for links that have not sent them yet.
pub const LOG_ENTRIES: usize = 65_536;
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
    /// Rung when the set changed (the replication executor's bell).
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
}
