//! MQTT messages for the other nodes. Every message a shard routes for a local publisher
//! (MQTT client, will, WebSocket) is offered to the replication executor through one bounded
//! outbox (`PeerOutbox`, never blocking a shard: full means dropped and counted). The
//! replication layer (`cluster::forward`) takes them from there to each peer that wants them.

use super::message::{Message, Props};
use super::NodeMqtt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Messages waiting between the shards and the replication executor.
pub const CHANNEL_MESSAGES: usize = 65_536;
/// Bytes (estimated, see `size`) waiting between the shards and the replication executor.
pub const CHANNEL_BYTES: usize = 64 << 20;
/// The shards' way to the replication executor (in `NodeMqtt` when clustering is on).
pub struct PeerOutbox {
    tx: flume::Sender<Arc<Message>>,
    pub rx: flume::Receiver<Arc<Message>>,
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

/// Offers a message a shard routes for a local publisher to the peers. Never blocks: when the
/// outbox is full the message is not forwarded (counted in `dropped`).
pub fn offer(mqtt: &NodeMqtt, msg: &Arc<Message>) {
    let Some(outbox) = &mqtt.peers else {
        return;
    };
    // No peer has a subscriber at all: only a retained message has somewhere to go.
    if !msg.retain
        && mqtt
            .interest
            .as_ref()
            .is_some_and(|i| i.peer_filters.load(Ordering::Relaxed) == 0)
    {
        return;
    }
    let n = size(msg);
    let before = outbox.bytes.fetch_add(n, Ordering::Relaxed);
    if before + n > CHANNEL_BYTES || outbox.tx.try_send(msg.clone()).is_err() {
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
