//! MQTT messages for the other nodes. Every message a shard routes for a local publisher
//! (MQTT client, will, WebSocket) is offered to the replication executor through one bounded
//! outbox (`PeerOutbox`, never blocking a shard: full means dropped and counted). The
//! replication layer (`cluster::forward`) takes them from there to each peer that wants them.

use super::message::{Message, Props};
use super::trie::Trie;
use super::NodeMqtt;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// Messages waiting between the shards and the replication executor.
pub const CHANNEL_MESSAGES: usize = 65_536;
/// Bytes (estimated, see `size`) waiting between the shards and the replication executor.
pub const CHANNEL_BYTES: usize = 64 << 20;
/// A message for the peers, and the peers that serve one of its shared subscriptions (each
/// with the groups it serves for this message).
pub struct Outgoing {
    pub msg: Arc<Message>,
    pub shared: Vec<(u16, Arc<str>)>,
}

/// The shards' way to the replication executor (in `NodeMqtt` when clustering is on).
pub struct PeerOutbox {
    tx: flume::Sender<Outgoing>,
    pub rx: flume::Receiver<Outgoing>,
    /// Estimated bytes in the channel (the reader subtracts what it takes).
    pub bytes: AtomicUsize,
    /// Messages not offered because the outbox was full.
    pub dropped: AtomicU64,
}

impl PeerOutbox {
    pub fn new() -> PeerOutbox {
        let (tx, rx) = flume::bounded(CHANNEL_MESSAGES);
        PeerOutbox {
            tx,
            rx,
            bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

impl Default for PeerOutbox {
    fn default() -> Self {
        PeerOutbox::new()
    }
}

/// Offers a message a shard routes for a local publisher to the peers, with the peers picked
/// to serve its shared subscriptions. Never blocks: when the outbox is full the message is not
/// forwarded (counted in `dropped`).
pub fn offer(mqtt: &NodeMqtt, msg: &Arc<Message>, shared: Vec<(u16, Arc<str>)>) {
    let Some(outbox) = &mqtt.peers else {
        return;
    };
    // No peer has a subscriber at all: only a retained message has somewhere to go.
    if !msg.retain
        && shared.is_empty()
        && mqtt
            .interest
            .as_ref()
            .is_some_and(|i| i.peer_filters.load(Ordering::Relaxed) == 0)
    {
        return;
    }
    let n = size(msg);
    let before = outbox.bytes.fetch_add(n, Ordering::Relaxed);
    let out = Outgoing {
        msg: msg.clone(),
        shared,
    };
    if before + n > CHANNEL_BYTES || outbox.tx.try_send(out).is_err() {
        outbox.bytes.fetch_sub(n, Ordering::Relaxed);
        outbox.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a message costs in a queue or a frame: its bytes plus a fixed overhead.
pub fn size(msg: &Message) -> usize {
    64 + msg.topic.len() + msg.payload.len() + msg.props.as_deref().map_or(0, props_size)
}

pub fn props_size(p: &Props) -> usize {
    8 + p.content_type.as_ref().map_or(0, |s| s.len())
        + p.response_topic.as_ref().map_or(0, |s| s.len())
        + p.correlation_data.as_ref().map_or(0, |s| s.len())
        + p.user_properties
            .iter()
            .map(|(k, v)| 16 + k.len() + v.len())
            .sum::<usize>()
}

/// Which peers have members of which shared subscriptions, as their interest announcements
/// say (`$share/...` filters): written by the replication executor, read by a shard routing a
/// message only while some peer has any (one atomic load otherwise).
#[derive(Default)]
pub struct PeerGroups {
    inner: RwLock<Groups>,
    entries: AtomicUsize,
}

#[derive(Default)]
struct Groups {
    /// Inner filter → share key → peers with members.
    by_filter: Trie<BTreeMap<Arc<str>, BTreeSet<u16>>>,
    /// Peer → its share keys.
    by_peer: HashMap<u16, HashSet<Arc<str>>>,
}

impl PeerGroups {
    /// `peer` now has (`add`) or no longer has members of the shared subscription `key`.
    pub fn set(&self, peer: u16, key: &str, add: bool) {
        let Some((_, inner)) = super::topic::parse_shared(key) else {
            return;
        };
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let key: Arc<str> = Arc::from(key);
        if add {
            if g.by_peer.entry(peer).or_default().insert(key.clone()) {
                let peers = g.by_filter.get_or_insert_with(inner, BTreeMap::new);
                peers.entry(key).or_default().insert(peer);
                self.entries.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if g.by_peer.get_mut(&peer).is_some_and(|k| k.remove(&key)) {
            g.by_filter.update(inner, |groups| {
                if let Some(peers) = groups.get_mut(&key) {
                    peers.remove(&peer);
                    if peers.is_empty() {
                        groups.remove(&key);
                    }
                }
                groups.is_empty()
            });
            self.entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Forgets every group of `peer` (its announcements start over, or its link is gone).
    pub fn forget(&self, peer: u16) {
        let keys: Vec<Arc<str>> = {
            let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
            g.by_peer
                .get(&peer)
                .map(|k| k.iter().cloned().collect())
                .unwrap_or_default()
        };
        for k in keys {
            self.set(peer, &k, false);
        }
    }

    /// For each shared subscription matching `topic` that some peer has members of: its key
    /// and those peers.
    pub fn matching(&self, topic: &str) -> Vec<(Arc<str>, Vec<u16>)> {
        if self.entries.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let g = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        g.by_filter.for_each_match(topic, |groups| {
            for (key, peers) in groups {
                out.push((key.clone(), peers.iter().copied().collect()));
            }
        });
        out
    }
}
