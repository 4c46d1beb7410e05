//! The MQTT 3.1.1 / 5.0 broker that runs on every shard. A client's session lives on one
//! shard, its *home* (chosen by hashing the client id onto the partition map); a connection
//! that lands elsewhere is handed to the home shard right after its CONNECT. Publishes are
//! routed once per interested shard using each shard's copy of the subscription summary, and
//! a QoS 1/2 publish is acknowledged once the copies it left for persistent sessions are
//! committed; committed record changes reach subscribers of `{Table}/{id}` topics through the change
//! feed. See `docs/mqtt.md`.

pub mod broker;
pub mod codec;
pub mod config;
pub mod conn;
pub mod encode;
pub mod handler;
pub mod listener;
pub mod mesh;
pub mod message;
pub mod packet;
pub mod pipe;
pub mod retained;
pub mod session;
pub mod store;
pub mod tables;
pub mod topic;
pub mod trie;
pub mod watch;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Broker state every shard shares (counters readable from `/status`).
#[derive(Debug, Default)]
pub struct NodeMqtt {
    /// Open MQTT connections per shard.
    pub connections: Vec<AtomicUsize>,
    /// Retained messages stored (plain topics).
    pub retained: AtomicUsize,
    pub stats: Stats,
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
}

impl NodeMqtt {
    pub fn new(shards: usize) -> NodeMqtt {
        NodeMqtt {
            connections: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            ..NodeMqtt::default()
        }
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
        })
    }
}

/// Bumps a counter.
pub fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Brings up the broker of a shard before it accepts connections: the persist queue, the
/// stored sessions of this shard (offline, with their queues), the subscription summary as
/// stored sessions describe it, the retained count, and the change-feed listener.
pub fn start(shard: &std::rc::Rc<crate::runtime::shard::Shard>) {
    if let Some(rx) = shard.mqtt.persist_rx.borrow_mut().take() {
        glommio::spawn_local(store::persist_task(shard.clone(), rx)).detach();
    }
    for s in store::load_sessions(shard) {
        let subs: Vec<_> =
            s.st.borrow()
                .subs
                .iter()
                .map(|(f, o)| (f.clone(), *o))
                .collect();
        for (f, o) in subs {
            broker::add_sub(shard, &s, &f, o);
        }
        shard
            .mqtt
            .sessions
            .borrow_mut()
            .insert(s.client_id.clone(), s.clone());
        // Offline since the restart: the expiry clock starts now.
        let gen = s.st.borrow().generation;
        let expiry = s.st.borrow().expiry_secs;
        let (shard, s) = (shard.clone(), s.clone());
        glommio::spawn_local(async move {
            glommio::timer::sleep(std::time::Duration::from_secs(expiry as u64)).await;
            let idle = {
                let st = s.st.borrow();
                st.generation == gen && st.link.is_none()
            };
            if idle {
                broker::remove_session(&shard, &s).await;
            }
        })
        .detach();
    }
    broker::rebuild_summary_from_disk(shard);
    retained::count_stored(shard);
    tables::listen(shard);
}

/// At shutdown: tells every connected client (5.0: DISCONNECT 0x8B), gives the connections a
/// moment to end, then waits until every MQTT write queued on this shard is committed.
pub async fn drain(shard: &crate::runtime::shard::Shard) {
    let sessions: Vec<_> = shard.mqtt.sessions.borrow().values().cloned().collect();
    let mut open = 0;
    for s in sessions {
        if let Some(link) = &s.st.borrow().link {
            link.close(packet::Fault::ShuttingDown);
            open += 1;
        }
    }
    if open > 0 {
        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = store::submit_wait(shard, shard.id, Vec::new()).await;
}
