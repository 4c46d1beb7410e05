//! MQTT state on disk, in the `mqtt` keyspace of a session's home shard (retained messages:
//! of the shard that owns the topic's partition). Writes go through the shard's writer thread,
//! in order, via one queue per shard (`persist_task`), so a put and a later delete of the same
//! key can never swap; reads are direct. Keys:
//!
//! - `s\0{client}`                 → session record (version, expiry, subscriptions)
//! - `q\0{client}\0{seq u64 BE}`   → a queued or in-flight message (`StoredMessage`)
//! - `p\0{client}\0{pkid u16 BE}`  → a QoS 2 packet id received and not yet released
//! - `r\0{topic}`                  → a retained message

use super::codec::Version;
use super::message::{Message, StoredMessage};
use super::session::{Entry, Session, SubOpts};
use super::MqttShard;
use super::NodeMqtt;
use crate::storage::kv::{AuxSpace, KvOp, KvReply};
use crate::storage::writer::WriterMsg;
use rkyv::{Archive, Deserialize, Serialize};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One write for a shard's writer, queued in order.
pub struct PersistJob {
    pub target: usize,
    pub ops: Vec<KvOp>,
    pub done: Option<KvReply>,
    /// What the job counts against the shard's persist backlog (`backlog_bytes`).
    bytes: usize,
}

/// What a batch of operations counts against the persist backlog: its keys and values plus
/// a fixed overhead per operation.
fn backlog_bytes(ops: &[KvOp]) -> usize {
    ops.iter()
        .map(|op| 48 + op.key.len() + op.value.as_ref().map_or(0, Vec::len))
        .sum()
}

/// A stored subscription.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredSub {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 5.0 Subscription Identifier; 0: none.
    pub sub_id: u32,
}

/// A stored session.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub v5: bool,
    pub expiry_secs: u32,
    pub subs: Vec<StoredSub>,
}

/// What a session record begins with, before its rkyv bytes. Records without it are of the
/// earlier layout (`old::SessionRecord`, no subscription identifiers); those never begin with
/// it, since their first byte is a topic filter's (never NUL) or, without subscriptions, the
/// `v5` flag followed by zero padding.
const RECORD_TAG: &[u8; 8] = b"\0mqs\x02\0\0\0";

/// The session record layout without subscription identifiers, still read.
mod old {
    use rkyv::{Archive, Deserialize, Serialize};

    #[derive(Archive, Serialize, Deserialize)]
    pub struct StoredSub {
        pub filter: String,
        pub qos: u8,
        pub no_local: bool,
        pub retain_as_published: bool,
    }

    #[derive(Archive, Serialize, Deserialize)]
    pub struct SessionRecord {
        pub v5: bool,
        pub expiry_secs: u32,
        pub subs: Vec<StoredSub>,
    }
}

fn key(tag: u8, client: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(client.len() + 12);
    k.push(tag);
    k.push(0);
    k.extend_from_slice(client.as_bytes());
    k
}

fn entry_key(client: &str, seq: u64) -> Vec<u8> {
    let mut k = key(b'q', client);
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn incoming_key(client: &str, pkid: u16) -> Vec<u8> {
    let mut k = key(b'p', client);
    k.push(0);
    k.extend_from_slice(&pkid.to_be_bytes());
    k
}

pub fn retained_key(topic: &str) -> Vec<u8> {
    key(b'r', topic)
}

/// Queues a write on this shard's persist queue (never blocks). The queue holds what the
/// writers have not taken yet; its bytes are the shard's persist backlog, which publishers
/// wait on (`wait_for_room`) so that it stays near `mqtt.max_persist_backlog_bytes`.
pub fn submit(shard: &MqttShard, target: usize, ops: Vec<KvOp>, done: Option<KvReply>) {
    let bytes = backlog_bytes(&ops);
    let job = PersistJob {
        target,
        ops,
        done,
        bytes,
    };
    shard.mqtt_node.persist_backlog[shard.id].fetch_add(bytes, Ordering::Relaxed);
    if let Err(e) = shard.mqtt.persist.try_send(job) {
        shard.mqtt_node.persist_backlog[shard.id].fetch_sub(bytes, Ordering::Relaxed);
        tracing::error!(shard = shard.id, "mqtt persist queue closed: {e}");
    }
}

/// Waits while some shard's persist backlog is at `mqtt.max_persist_backlog_bytes`: the
/// writers are behind (a slow disk, `sync` durability under a burst), so whoever brings new
/// messages (a publisher's connection, a peer's link) slows down instead of the backlog
/// growing without bound. The wait is counted in `/status` (`mqtt.persist_waits`).
pub async fn wait_for_room(node: &NodeMqtt, limit: usize) {
    if node.persist_room(limit) {
        return;
    }
    super::count(&node.stats.persist_waits);
    while !node.persist_room(limit) {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// The answer to a write queued with a reply (`KvReply`): `Ok` once the writer committed it,
/// and with it every write queued before it for the same writer.
pub type Committed = flume::Receiver<Result<(), String>>;

/// Queues a write and waits until it is committed.
pub async fn submit_wait(shard: &MqttShard, target: usize, ops: Vec<KvOp>) -> Result<(), String> {
    let (tx, rx) = flume::bounded(1);
    submit(shard, target, ops, Some(tx));
    committed(rx).await
}

/// Waits for the answer to a write queued with a reply. A reply dropped unanswered (the
/// writer or the shard stopped first) is an error: nothing says the write was committed.
pub async fn committed(rx: Committed) -> Result<(), String> {
    rx.recv_async()
        .await
        .map_err(|_| "stopped before the write was committed".to_string())?
}

/// Drains the persist queue into the writers, in order.
pub async fn persist_task(
    shard: Rc<MqttShard>,
    rx: glommio::channels::local_channel::LocalReceiver<PersistJob>,
) {
    while let Some(job) = rx.recv().await {
        let msg = WriterMsg::KvBatch {
            ops: job.ops,
            done: job.done,
        };
        let sent = shard.node.writers[job.target].send_async(msg).await;
        shard.mqtt_node.persist_backlog[shard.id].fetch_sub(job.bytes, Ordering::Relaxed);
        if sent.is_err() {
            return;
        }
    }
}

/// The write that stores a queued or in-flight message of `client`; `None` (logged) if it
/// cannot be encoded, so the copy stays in memory only.
pub fn entry_write(client: &str, e: &Entry) -> Option<KvOp> {
    let stored = StoredMessage::from_message(&e.msg, e.qos, e.retain, e.pkid, e.state);
    match stored.encode() {
        Ok(bytes) => Some(KvOp::put(AuxSpace::Mqtt, entry_key(client, e.seq), bytes)),
        Err(err) => {
            tracing::error!(client, "queued message not stored: {err}");
            None
        }
    }
}

/// Stores a queued or in-flight message of `client` (not awaited).
pub fn put_entry(shard: &MqttShard, client: &str, e: &Entry) {
    if let Some(op) = entry_write(client, e) {
        submit(shard, shard.id, vec![op], None);
    }
}

pub fn delete_entry(shard: &MqttShard, client: &str, seq: u64) {
    let op = KvOp::delete(AuxSpace::Mqtt, entry_key(client, seq));
    submit(shard, shard.id, vec![op], None);
}

/// Records a received QoS 2 packet id (`held`) or its release; waits for the commit.
pub async fn set_incoming(shard: &MqttShard, client: &str, pkid: u16, held: bool) {
    let k = incoming_key(client, pkid);
    let op = if held {
        KvOp::put(AuxSpace::Mqtt, k, Vec::new())
    } else {
        KvOp::delete(AuxSpace::Mqtt, k)
    };
    if let Err(e) = submit_wait(shard, shard.id, vec![op]).await {
        tracing::warn!("storing QoS 2 state of {client:?} failed: {e}");
    }
}

/// Writes the session record (subscriptions, expiry). A session stored for the first time
/// counts against `mqtt.max_persistent_sessions`.
pub fn put_session(shard: &MqttShard, s: &Session) {
    let st = s.st.borrow();
    let rec = SessionRecord {
        v5: st.version == Version::V5,
        expiry_secs: st.expiry_secs,
        subs: st
            .subs
            .iter()
            .map(|(f, o)| StoredSub {
                filter: f.clone(),
                qos: o.qos,
                no_local: o.no_local,
                retain_as_published: o.retain_as_published,
                sub_id: o.sub_id.unwrap_or(0),
            })
            .collect(),
    };
    drop(st);
    let bytes = match encode_record(&rec) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(client = %s.client_id, "session not stored: cannot encode it: {e}");
            return;
        }
    };
    if !std::mem::replace(&mut s.st.borrow_mut().on_disk, true) {
        shard
            .mqtt_node
            .persistent_sessions
            .fetch_add(1, Ordering::Relaxed);
    }
    let op = KvOp::put(AuxSpace::Mqtt, key(b's', &s.client_id), bytes);
    submit(shard, shard.id, vec![op], None);
}

/// Deletes everything stored for a session (one that is on disk).
pub fn delete_session(shard: &MqttShard, client: &str) {
    shard
        .mqtt_node
        .persistent_sessions
        .fetch_sub(1, Ordering::Relaxed);
    let db = &shard.node.dbs[shard.id];
    let mut ops = vec![KvOp::delete(AuxSpace::Mqtt, key(b's', client))];
    for tag in [b'q', b'p'] {
        let mut prefix = key(tag, client);
        prefix.push(0);
        for guard in db.mqtt.prefix(prefix) {
            if let Ok(k) = guard.key() {
                ops.push(KvOp::delete(AuxSpace::Mqtt, k.to_vec()));
            }
        }
    }
    submit(shard, shard.id, ops, None);
}

fn encode_record(rec: &SessionRecord) -> Result<Vec<u8>, rkyv::rancor::Error> {
    let body = rkyv::to_bytes::<rkyv::rancor::Error>(rec)?;
    let mut out = Vec::with_capacity(RECORD_TAG.len() + body.len());
    out.extend_from_slice(RECORD_TAG);
    out.extend_from_slice(&body);
    Ok(out)
}

/// A stored session record of either layout; `None` for anything this build did not write.
fn decode_record(bytes: &[u8]) -> Option<SessionRecord> {
    match bytes.strip_prefix(RECORD_TAG) {
        Some(body) => {
            let aligned = aligned(body);
            let archived =
                rkyv::access::<ArchivedSessionRecord, rkyv::rancor::Error>(&aligned).ok()?;
            rkyv::deserialize::<SessionRecord, rkyv::rancor::Error>(archived).ok()
        }
        None => decode_old_record(bytes),
    }
}

fn decode_old_record(bytes: &[u8]) -> Option<SessionRecord> {
    let aligned = aligned(bytes);
    let archived =
        rkyv::access::<old::ArchivedSessionRecord, rkyv::rancor::Error>(&aligned).ok()?;
    let rec = rkyv::deserialize::<old::SessionRecord, rkyv::rancor::Error>(archived).ok()?;
    Some(SessionRecord {
        v5: rec.v5,
        expiry_secs: rec.expiry_secs,
        subs: rec
            .subs
            .into_iter()
            .map(|s| StoredSub {
                filter: s.filter,
                qos: s.qos,
                no_local: s.no_local,
                retain_as_published: s.retain_as_published,
                sub_id: 0,
            })
            .collect(),
    })
}

fn aligned(bytes: &[u8]) -> rkyv::util::AlignedVec<16> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    aligned
}

/// Every stored session of one shard's database: (client id, record).
pub fn stored_sessions(shard: &MqttShard, db_index: usize) -> Vec<(String, SessionRecord)> {
    let db = &shard.node.dbs[db_index];
    let mut out = Vec::new();
    for guard in db.mqtt.prefix(b"s\0") {
        let Ok((k, v)) = guard.into_inner() else {
            continue;
        };
        let (Ok(client), Some(rec)) = (std::str::from_utf8(&k[2..]), decode_record(&v)) else {
            continue;
        };
        out.push((client.to_string(), rec));
    }
    out
}

/// Rebuilds this shard's stored sessions in memory (offline, with their queues).
pub fn load_sessions(shard: &MqttShard) -> Vec<Rc<Session>> {
    let db = &shard.node.dbs[shard.id];
    let mut out = Vec::new();
    for (client, rec) in stored_sessions(shard, shard.id) {
        let v = if rec.v5 { Version::V5 } else { Version::V4 };
        let s = Session::new(Arc::from(client.as_str()), v, rec.expiry_secs);
        shard
            .mqtt_node
            .persistent_sessions
            .fetch_add(1, Ordering::Relaxed);
        {
            let mut st = s.st.borrow_mut();
            st.on_disk = true;
            for sub in rec.subs {
                let o = SubOpts {
                    qos: sub.qos,
                    no_local: sub.no_local,
                    retain_as_published: sub.retain_as_published,
                    sub_id: (sub.sub_id != 0).then_some(sub.sub_id),
                };
                st.subs.insert(sub.filter, o);
            }
            let mut prefix = key(b'q', &client);
            prefix.push(0);
            for guard in db.mqtt.prefix(&prefix) {
                let Ok((k, v)) = guard.into_inner() else {
                    continue;
                };
                let Some(m) = StoredMessage::decode(&v) else {
                    continue;
                };
                let seq = k
                    .get(prefix.len()..)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                st.next_seq = st.next_seq.max(seq + 1);
                let e = Entry {
                    seq,
                    msg: Arc::new(m.to_message()),
                    qos: m.qos,
                    retain: m.retain,
                    pkid: m.pkid,
                    state: m.state,
                    stored: true,
                    // Which shared subscription it came through is not stored: after a
                    // restart it stays with this session.
                    shared: None,
                };
                if m.state > 0 && m.pkid != 0 {
                    st.inflight.insert(m.pkid, e);
                } else {
                    st.queue.push_back(Entry { state: 0, ..e });
                }
            }
            let mut prefix = key(b'p', &client);
            prefix.push(0);
            for guard in db.mqtt.prefix(&prefix) {
                if let Ok(k) = guard.key() {
                    if let Some(b) = k.get(prefix.len()..prefix.len() + 2) {
                        st.incoming.insert(u16::from_be_bytes([b[0], b[1]]));
                    }
                }
            }
        }
        out.push(s);
    }
    out
}

/// A retained message as stored.
pub fn decode_retained(bytes: &[u8]) -> Option<Message> {
    StoredMessage::decode(bytes).map(|m| m.to_message())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(filter: &str, sub_id: u32) -> StoredSub {
        StoredSub {
            filter: filter.into(),
            qos: 1,
            no_local: false,
            retain_as_published: true,
            sub_id,
        }
    }

    #[test]
    fn session_records_keep_subscription_identifiers() {
        let rec = SessionRecord {
            v5: true,
            expiry_secs: 60,
            subs: vec![sub("a/+", 7), sub("b/#", 0)],
        };
        let bytes = encode_record(&rec).unwrap();
        assert_eq!(decode_record(&bytes), Some(rec));
        assert_eq!(decode_record(b"garbage"), None);
        assert_eq!(decode_record(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn records_of_the_layout_without_identifiers_are_read() {
        for (v5, filters) in [
            (false, vec![]),
            (true, vec!["short", "a/much/longer/filter"]),
        ] {
            let old = old::SessionRecord {
                v5,
                expiry_secs: 9,
                subs: filters
                    .iter()
                    .map(|f| old::StoredSub {
                        filter: f.to_string(),
                        qos: 1,
                        no_local: false,
                        retain_as_published: true,
                    })
                    .collect(),
            };
            let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&old).unwrap();
            assert!(!bytes.starts_with(RECORD_TAG));
            let rec = decode_record(&bytes).expect("an old record is read");
            assert_eq!((rec.v5, rec.expiry_secs), (v5, 9));
            let want: Vec<StoredSub> = filters.iter().map(|f| sub(f, 0)).collect();
            assert_eq!(rec.subs, want);
        }
    }
}
