//! Tables as topics: `{Table}/{id}` is the record. A retained publish with a JSON object
//! writes it (an empty payload deletes it); a subscription gets the current record(s) as
//! retained messages, then every committed change, which arrives through the change feed on
//! every shard (so it reaches local subscribers without any extra hop).

use super::message::Message;
use super::MqttShard;
use crate::runtime::records::{self, Precondition, RecordError};
use crate::storage::catalog::TableDef;
use crate::storage::changelog::{ChangeBatch, ChangeOp};
use crate::storage::hlc::Version;
use crate::storage::record_id;
use bytes::Bytes;
use serde_json::Value;
use std::rc::Weak;
use std::sync::Arc;

/// The table and record id a topic names, if its first level is a table.
pub fn table_of<'a>(shard: &MqttShard, topic: &'a str) -> Option<(Arc<TableDef>, &'a str)> {
    let (table, id) = topic.split_once('/')?;
    record_id::check(id).ok()?;
    Some((shard.table(table)?, id))
}

pub fn record_message(topic: String, body: &[u8], version: Version) -> Message {
    Message {
        topic,
        payload: Bytes::copy_from_slice(body),
        qos: 2,
        retain: true,
        props: None,
        expires_at_ms: None,
        from: Arc::from(""),
        version: Some(version),
    }
}

/// Writes the record a retained publish names: a JSON object replaces it, an empty payload
/// deletes it. Err carries the v5 reason code.
pub async fn write_record(
    shard: &MqttShard,
    def: &Arc<TableDef>,
    id: &str,
    payload: &[u8],
) -> Result<(), u8> {
    let result = if payload.is_empty() {
        records::delete(shard, def, id, Precondition::None).await
    } else {
        let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(payload) else {
            return Err(REASON_PAYLOAD_FORMAT_INVALID);
        };
        records::put(shard, def, id, doc, Precondition::None).await
    };
    match result {
        Ok(_) | Err(RecordError::NotFound) => Ok(()),
        Err(RecordError::Invalid(_)) => Err(REASON_PAYLOAD_FORMAT_INVALID),
        Err(RecordError::Rejected { .. }) => Err(REASON_IMPLEMENTATION_SPECIFIC),
        Err(RecordError::Busy | RecordError::Stopping) => Err(REASON_QUOTA_EXCEEDED),
        Err(_) => Err(REASON_UNSPECIFIED),
    }
}

/// MQTT 5 reason codes a table write can answer with.
const REASON_UNSPECIFIED: u8 = 0x80;
const REASON_IMPLEMENTATION_SPECIFIC: u8 = 0x83;
const REASON_QUOTA_EXCEEDED: u8 = 0x97;
const REASON_PAYLOAD_FORMAT_INVALID: u8 = 0x99;

/// The current records a new subscription to `filter` receives (bounded).
pub fn snapshot(shard: &MqttShard, filter: &str) -> Vec<Message> {
    let Some((table, rest)) = filter.split_once('/') else {
        return Vec::new();
    };
    let Some(def) = shard.table(table) else {
        return Vec::new();
    };
    let limit = shard.config().mqtt.max_table_snapshot;
    let mut out = Vec::new();
    if !rest.contains(['+', '#']) {
        if let Ok(Some(rec)) = records::get(shard, &def, rest) {
            out.push(record_message(filter.to_string(), rec.body(), rec.version));
        }
        return out;
    }
    'dbs: for db in &shard.node.dbs {
        for item in db.scan_table(&def.name) {
            let Ok((id, version, value)) = item else {
                continue;
            };
            let topic = format!("{}/{id}", def.name);
            if !super::topic::matches(&topic, filter) {
                continue;
            }
            if out.len() >= limit {
                break 'dbs;
            }
            let body = crate::storage::envelope::Envelope::decode(&value)
                .map(|e| e.body)
                .unwrap_or(b"");
            out.push(record_message(topic, body, version));
        }
    }
    out
}

/// Registers the change-feed listener that turns committed changes into MQTT deliveries.
/// The writers send this shard the feed only while it has subscriptions (`broker::add_sub`
/// counts the shard's interest), so an idle broker costs the writers nothing.
pub fn listen(shard: &std::rc::Rc<MqttShard>) {
    let weak: Weak<MqttShard> = std::rc::Rc::downgrade(shard);
    shard
        .feed_listeners
        .borrow_mut()
        .push(Box::new(move |batch: &Arc<ChangeBatch>| {
            if let Some(shard) = weak.upgrade() {
                on_changes(&shard, batch);
            }
        }));
}

fn on_changes(shard: &MqttShard, batch: &ChangeBatch) {
    if !super::broker::wants_feed(shard) {
        return;
    }
    for c in &batch.changes {
        let body: &[u8] = match c.op {
            ChangeOp::Put => &c.body,
            ChangeOp::Delete => b"",
        };
        let version = Version {
            clock: c.clock,
            node: c.node,
        };
        let topic = format!("{}/{}", c.table, c.id);
        let shared = super::broker::shared_for_change(shard, &topic, version);
        let msg = Arc::new(record_message(topic, body, version));
        // The change is committed already; the copies it queues are stored without waiting.
        super::broker::deliver_local(shard, &msg, &shared, None);
    }
}
