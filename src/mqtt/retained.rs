//! Retained messages of plain topics: stored on the shard that owns the topic's partition
//! (`$retained` in the partition map), written through that shard's writer, bounded in count
//! and size, read directly when a subscription needs them. An empty payload deletes.

use super::message::{Message, StoredMessage};
use super::store;
use super::MqttShard;
use crate::storage::kv::{AuxSpace, KvOp};
use std::sync::atomic::Ordering;

/// The shard that stores a topic's retained message.
pub fn owner(shard: &MqttShard, topic: &str) -> usize {
    shard.locate("$retained", topic).1
}

/// Stores (or, for an empty payload, deletes) the retained message of `msg.topic`. With
/// `wait`, returns once it is committed. False if it was refused by a bound.
pub async fn store(shard: &MqttShard, msg: &Message, wait: bool) -> bool {
    let (o, op) = match write_of(shard, msg) {
        Ok(Some(w)) => w,
        Ok(None) => return true,
        Err(()) => return false,
    };
    if wait {
        if let Err(e) = store::submit_wait(shard, o, vec![op]).await {
            tracing::warn!("storing a retained message failed: {e}");
        }
    } else {
        store::submit(shard, o, vec![op], None);
    }
    true
}

/// `store` without waiting for the commit, for callers that cannot wait (a shard's inbox).
pub fn store_now(shard: &MqttShard, msg: &Message) -> bool {
    match write_of(shard, msg) {
        Ok(Some((o, op))) => {
            store::submit(shard, o, vec![op], None);
            true
        }
        Ok(None) => true,
        Err(()) => false,
    }
}

/// The write that stores or deletes `msg` as its topic's retained message, and the shard whose
/// writer takes it; `Ok(None)`: nothing to do; `Err`: refused by a bound (counted).
fn write_of(shard: &MqttShard, msg: &Message) -> Result<Option<(usize, KvOp)>, ()> {
    let cfg = &shard.config().mqtt;
    let node = &shard.mqtt_node;
    let o = owner(shard, &msg.topic);
    let key = store::retained_key(&msg.topic);
    let exists = matches!(shard.node.dbs[o].mqtt.get(&key), Ok(Some(_)));
    let op = if msg.payload.is_empty() {
        if !exists {
            return Ok(None);
        }
        node.retained.fetch_sub(1, Ordering::Relaxed);
        KvOp::delete(AuxSpace::Mqtt, key)
    } else {
        let full = !exists && node.retained.load(Ordering::Relaxed) >= cfg.max_retained_messages;
        if full || msg.payload.len() > cfg.max_retained_bytes {
            super::count(&node.stats.retained_refused);
            return Err(());
        }
        let stored = StoredMessage::from_message(msg, msg.qos, true, 0, 0);
        let bytes = stored.encode().map_err(|e| {
            tracing::error!(topic = %msg.topic, "retained message not stored: {e}");
        })?;
        if !exists {
            node.retained.fetch_add(1, Ordering::Relaxed);
        }
        KvOp::put(AuxSpace::Mqtt, key, bytes)
    };
    Ok(Some((o, op)))
}

/// The retained messages a new subscription to `filter` receives.
pub fn matching(shard: &MqttShard, filter: &str) -> Vec<Message> {
    let now = crate::storage::now_millis();
    let mut out = Vec::new();
    if !filter.contains(['+', '#']) {
        let o = owner(shard, filter);
        if let Ok(Some(v)) = shard.node.dbs[o].mqtt.get(store::retained_key(filter)) {
            out.extend(store::decode_retained(&v));
        }
    } else {
        for db in &shard.node.dbs {
            for guard in db.mqtt.prefix(b"r\0") {
                let Ok((k, v)) = guard.into_inner() else {
                    continue;
                };
                let Ok(topic) = std::str::from_utf8(&k[2..]) else {
                    continue;
                };
                if super::topic::matches(topic, filter) {
                    out.extend(store::decode_retained(&v));
                }
            }
        }
    }
    out.retain(|m| !m.expired(now));
    out
}

/// Counts this shard's stored retained messages into the node total (at start).
pub fn count_stored(shard: &MqttShard) {
    let n = shard.node.dbs[shard.id].mqtt.prefix(b"r\0").count();
    shard.mqtt_node.retained.fetch_add(n, Ordering::Relaxed);
}
