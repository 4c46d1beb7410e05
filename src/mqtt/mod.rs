//! The MQTT 3.1.1 / 5.0 broker that runs on every shard. A client's session lives on one
//! shard, its *home* (chosen by hashing the client id onto the partition map); a connection
//! that lands elsewhere is handed to the home shard right after its CONNECT. Publishes are
//! routed once per interested shard using each shard's copy of the subscription summary, and
//! a QoS 1/2 publish is acknowledged once the copies it left for persistent sessions are
//! committed; committed record changes reach subscribers of `{Table}/{id}` topics through the change
//! feed. See `docs/mqtt.md`.

pub mod acl;
pub mod broker;
pub mod codec;
pub mod config;
pub mod conn;
pub mod encode;
mod frame_check;
pub mod fresh;
pub mod handler;
pub mod hook;
pub mod interest;
pub mod listener;
pub mod mesh;
pub mod message;
pub mod packet;
pub mod peers;
pub mod pipe;
pub mod queue;
pub mod retained;
pub mod session;
pub mod shard;
pub mod shared;
pub mod store;
pub mod subscribe;
pub mod tables;
pub mod topic;
pub mod trie;
pub mod watch;

#[cfg(test)]
mod wire_props;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

pub use shard::MqttShard;

/// Broker state every shard shares: counters readable from `/status`, the shards' MQTT
/// inboxes, and (clustering on) the outbox to the peers and the filters this node wants.
pub struct NodeMqtt {
    /// Open MQTT connections per shard.
    pub connections: Vec<AtomicUsize>,
    /// Retained messages stored (plain topics).
    pub retained: AtomicUsize,
    pub stats: Stats,
    /// Sessions stored on disk, node-wide (bounded by `mqtt.max_persistent_sessions`).
    pub persistent_sessions: AtomicUsize,
    /// Per shard: bytes queued for the writers and not taken yet (`store::submit`).
    pub persist_backlog: Vec<AtomicUsize>,
    /// Each shard's MQTT inbox (bounded: `shards.mesh_queue_depth`).
    pub inboxes: Vec<flume::Sender<mesh::MqttMsg>>,
    /// The receiving ends, each taken once by its shard as it starts.
    inbox_rx: Mutex<Vec<Option<flume::Receiver<mesh::MqttMsg>>>>,
    /// Messages for the peers (`None` when clustering is off).
    pub peers: Option<peers::PeerOutbox>,
    /// The filters this node's shards want, announced to the peers (clustering on only).
    pub interest: Option<interest::NodeInterest>,
    /// The shared subscriptions the peers have members of (empty when clustering is off).
    pub peer_groups: peers::PeerGroups,
}

/// What the broker counts, node-wide.
#[derive(Debug, Default)]
pub struct Stats {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    /// QoS 0 messages dropped because a connected client's queue was full.
    pub qos0_dropped: AtomicU64,
    /// Messages dropped because a disconnected session's queue was at `max_offline_messages`.
    pub offline_dropped: AtomicU64,
    /// Clients disconnected because their queue filled with QoS 1/2 messages.
    pub slow_disconnects: AtomicU64,
    /// Retained publishes not kept (over `max_retained_messages` or `max_retained_bytes`).
    pub retained_refused: AtomicU64,
    /// Messages not sent because they exceeded the client's maximum packet size.
    pub oversize_dropped: AtomicU64,
    /// Messages a shard's inbox could not take (QoS 0, the target shard too busy).
    pub mesh_dropped: AtomicU64,
    /// Times a publisher (or a peer's link) waited because a shard's persist backlog was at
    /// `mqtt.max_persist_backlog_bytes`.
    pub persist_waits: AtomicU64,
    /// Connections refused because `mqtt.max_persistent_sessions` sessions were stored.
    pub sessions_refused: AtomicU64,
    /// CONNECTs refused for their credentials (or a will the user may not publish).
    pub connects_unauthorized: AtomicU64,
    /// Publishes and subscription filters the client's user may not make.
    pub publishes_unauthorized: AtomicU64,
    pub subscribes_unauthorized: AtomicU64,
    /// Connections ended because their user was removed or lost a permission they rely on.
    pub users_revoked: AtomicU64,
    /// Messages of a shared subscription that found no member where they were sent (the
    /// group's last member there had just left).
    pub shared_unserved: AtomicU64,
    /// Messages a disconnected member of a shared subscription had not completed, given to
    /// another member of its group.
    pub shared_handed_over: AtomicU64,
}

impl NodeMqtt {
    /// The broker state of a node of `shards` shards, whose inboxes hold `queue_depth`
    /// messages each. With `peers_bell` (clustering on), messages for the peers are offered to
    /// an outbox and filter changes ring the bell.
    pub fn new(
        shards: usize,
        queue_depth: usize,
        peers_bell: Option<flume::Sender<()>>,
    ) -> NodeMqtt {
        let (inboxes, inbox_rx): (Vec<_>, Vec<_>) = (0..shards)
            .map(|_| {
                let (tx, rx) = flume::bounded(queue_depth);
                (tx, Some(rx))
            })
            .unzip();
        NodeMqtt {
            connections: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            retained: AtomicUsize::new(0),
            stats: Stats::default(),
            persistent_sessions: AtomicUsize::new(0),
            persist_backlog: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            inboxes,
            inbox_rx: Mutex::new(inbox_rx),
            peers: peers_bell.as_ref().map(|_| peers::PeerOutbox::new()),
            interest: peers_bell.map(interest::NodeInterest::new),
            peer_groups: Default::default(),
        }
    }

    /// Whether every shard's persist backlog is under `limit` bytes.
    pub fn persist_room(&self, limit: usize) -> bool {
        self.persist_backlog
            .iter()
            .all(|b| b.load(Ordering::Relaxed) < limit)
    }

    /// Takes shard `s`'s inbox (once).
    fn take_inbox(&self, s: usize) -> Option<flume::Receiver<mesh::MqttMsg>> {
        self.inbox_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(s)
            .and_then(Option::take)
    }

    /// The counters as JSON for `/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "connections": self.connections.iter().map(|c| c.load(Ordering::Relaxed)).collect::<Vec<_>>(),
            "retained": self.retained.load(Ordering::Relaxed),
            "messages_in": g(&s.messages_in),
            "messages_out": g(&s.messages_out),
            "qos0_dropped": g(&s.qos0_dropped),
            "offline_dropped": g(&s.offline_dropped),
            "slow_disconnects": g(&s.slow_disconnects),
            "retained_refused": g(&s.retained_refused),
            "oversize_dropped": g(&s.oversize_dropped),
            "mesh_dropped": g(&s.mesh_dropped),
            "persist_waits": g(&s.persist_waits),
            "sessions_refused": g(&s.sessions_refused),
            "connects_unauthorized": g(&s.connects_unauthorized),
            "publishes_unauthorized": g(&s.publishes_unauthorized),
            "subscribes_unauthorized": g(&s.subscribes_unauthorized),
            "users_revoked": g(&s.users_revoked),
            "shared_unserved": g(&s.shared_unserved),
            "shared_handed_over": g(&s.shared_handed_over),
            "persistent_sessions": self.persistent_sessions.load(Ordering::Relaxed),
            "persist_backlog_bytes": self.persist_backlog.iter().map(|b| b.load(Ordering::Relaxed)).collect::<Vec<_>>(),
        })
    }
}

/// Bumps a counter.
pub fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
