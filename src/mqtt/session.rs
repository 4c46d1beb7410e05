//! One client's session on its home shard: its subscriptions, the messages waiting for it
//! (bounded, on disk for persistent sessions), the QoS 1/2 messages in flight to it, the
//! QoS 2 packet ids it sent us and has not released, its will, the link to its live
//! connection if any and the topic aliases given to that connection. All methods are
//! synchronous: they never hold a borrow across an await.

use super::codec::Version;
use super::encode::{self, Ack, Delivery};
use super::message::Message;
use super::packet::{Fault, Will};
use super::store;
use super::topic;
use super::MqttShard;
use crate::storage::kv::KvOp;
use bytes::BytesMut;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

/// Options of one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOpts {
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 5.0 Subscription Identifier, sent back with every message this subscription matches.
    pub sub_id: Option<u32>,
}

/// A message queued for, or in flight to, this client.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Key of its stored copy (order of arrival).
    pub seq: u64,
    pub msg: Arc<Message>,
    pub qos: u8,
    pub retain: bool,
    /// Packet id once sent.
    pub pkid: u16,
    /// 0 queued, 1 sent, 2 released (PUBREL sent, waiting for PUBCOMP).
    pub state: u8,
    /// Whether a stored copy exists (to delete once done).
    pub stored: bool,
    /// The shared subscription it came through (and through nothing else): another member
    /// of that group takes it if this client disconnects before completing it.
    pub shared: Option<Arc<str>>,
}

/// The live connection of a session.
pub struct Link {
    pub id: u64,
    pub wake: glommio::channels::local_channel::LocalSender<()>,
    /// Set to make the connection end (with this reason) at its next wake-up.
    pub close: Rc<Cell<Option<Fault>>>,
}

impl Link {
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    pub fn close(&self, why: Fault) {
        self.close.set(Some(why));
        self.wake();
    }
}

pub struct State {
    pub version: Version,
    /// 0 = the session ends with its connection; u32::MAX = never expires.
    pub expiry_secs: u32,
    pub subs: HashMap<String, SubOpts>,
    pub queue: super::queue::Queue,
    pub inflight: BTreeMap<u16, Entry>,
    /// QoS 2 packet ids received (PUBREC sent) and not yet released by PUBREL.
    pub incoming: HashSet<u16>,
    pub next_pkid: u16,
    pub next_seq: u64,
    pub link: Option<Link>,
    /// The connection was told to close (slow consumer): deliver as if offline.
    pub closing: bool,
    pub will: Option<Will>,
    /// How many QoS 1/2 messages the client accepts unacknowledged.
    pub receive_max: u16,
    /// Largest packet the client accepts.
    pub max_packet: usize,
    /// Topic aliases given to the live connection (they last as long as it does).
    pub aliases: Aliases,
    /// Changes at every connect and disconnect; timers check it before acting.
    pub generation: u64,
    /// A session record was written (so ending the session must delete stored state).
    pub on_disk: bool,
    /// Record versions around a table subscription's first batch (`fresh`).
    pub fresh: super::fresh::Fresh,
    /// Subscribes whose first batch is not queued yet: live record events are remembered.
    pub subscribing: u32,
}

pub struct Session {
    pub client_id: Arc<str>,
    pub st: RefCell<State>,
}

impl Session {
    pub fn new(client_id: Arc<str>, version: Version, expiry_secs: u32) -> Rc<Session> {
        Rc::new(Session {
            client_id,
            st: RefCell::new(State {
                version,
                expiry_secs,
                subs: HashMap::new(),
                queue: Default::default(),
                inflight: BTreeMap::new(),
                incoming: HashSet::new(),
                next_pkid: 1,
                next_seq: 1,
                link: None,
                closing: false,
                will: None,
                receive_max: u16::MAX,
                max_packet: usize::MAX,
                aliases: Aliases::new(0),
                generation: 0,
                on_disk: false,
                fresh: super::fresh::Fresh::new(super::fresh::SESSION_CAP),
                subscribing: 0,
            }),
        })
    }

    /// Queues a table subscription's first-batch message unless this client already has
    /// that version or a newer one of its record (`fresh`).
    pub fn enqueue_first(&self, shard: &MqttShard, msg: Message, qos: u8) {
        if !self.st.borrow_mut().fresh.first(&msg) {
            return;
        }
        let mut writes = Vec::new();
        self.enqueue_unchecked(shard, Arc::new(msg), qos, true, None, &mut writes);
        if !writes.is_empty() {
            store::submit(shard, shard.id, writes, None);
        }
    }

    pub fn persistent(&self) -> bool {
        self.st.borrow().expiry_secs > 0
    }

    /// Queues a message for this client (bounded); wakes its connection. The copy of a
    /// persistent session is stored at once (not awaited).
    pub fn enqueue(&self, shard: &MqttShard, msg: Arc<Message>, qos: u8, retain: bool) {
        let mut writes = Vec::new();
        self.enqueue_into(shard, msg, qos, retain, None, &mut writes);
        if !writes.is_empty() {
            store::submit(shard, shard.id, writes, None);
        }
    }

    /// Queues a message for this client (bounded); wakes its connection. The write that
    /// stores the copy of a persistent session is appended to `writes` (nothing when no copy
    /// is stored): the caller must queue it on this shard's persist queue (`store::submit`)
    /// before it next yields, so that it precedes any later write of this entry (its delete
    /// once acknowledged) and the caller can wait for its commit.
    pub fn enqueue_into(
        &self,
        shard: &MqttShard,
        msg: Arc<Message>,
        qos: u8,
        retain: bool,
        shared: Option<Arc<str>>,
        writes: &mut Vec<KvOp>,
    ) {
        {
            let mut st = self.st.borrow_mut();
            let recording = st.subscribing > 0;
            if !st.fresh.live(&msg, recording) {
                return;
            }
        }
        self.enqueue_unchecked(shard, msg, qos, retain, shared, writes);
    }

    /// `enqueue_into` without the check against a first batch.
    fn enqueue_unchecked(
        &self,
        shard: &MqttShard,
        msg: Arc<Message>,
        qos: u8,
        retain: bool,
        shared: Option<Arc<str>>,
        writes: &mut Vec<KvOp>,
    ) {
        let cfg = &shard.config().mqtt;
        let stats = &shard.mqtt_node.stats;
        let mut st = self.st.borrow_mut();
        let persistent = st.expiry_secs > 0;
        let mut online = st.link.is_some() && !st.closing;
        let bytes = super::peers::size(&msg);
        let full = st.queue.len() >= cfg.max_queued_messages
            || st.queue.bytes() + bytes > cfg.max_queued_bytes;
        if online && full {
            if qos == 0 {
                super::count(&stats.qos0_dropped);
                return;
            }
            // A slow consumer of QoS 1/2: disconnect it; a persistent session keeps queueing.
            super::count(&stats.slow_disconnects);
            st.closing = true;
            if let Some(link) = &st.link {
                link.close(Fault::QuotaExceeded);
            }
            online = false;
        }
        if !online {
            if !persistent {
                return;
            }
            if st.queue.len() + st.inflight.len() >= cfg.max_offline_messages
                || st.queue.bytes() + bytes > cfg.max_offline_bytes
            {
                super::count(&stats.offline_dropped);
                return;
            }
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let entry = Entry {
            seq,
            msg,
            qos,
            retain,
            pkid: 0,
            state: 0,
            stored: persistent && (qos > 0 || !online),
            shared,
        };
        if entry.stored {
            writes.extend(store::entry_write(&self.client_id, &entry));
        }
        st.queue.push_back(entry);
        if let Some(link) = &st.link {
            tracing::trace!(client = %self.client_id, queued = st.queue.len(), "enqueued, waking");
            link.wake();
        }
    }

    /// Takes out the messages that came through a shared subscription for which `another`
    /// says the group has another member, queued or sent and not yet acknowledged (a QoS 2
    /// message already released stays), deleting their stored copies; returns them with
    /// their subscription, oldest first.
    pub fn take_shared(
        &self,
        shard: &MqttShard,
        mut another: impl FnMut(&str) -> bool,
    ) -> Vec<(Arc<str>, Arc<Message>)> {
        let mut st = self.st.borrow_mut();
        let mut movable = |e: &Entry| e.state < 2 && e.shared.as_deref().is_some_and(&mut another);
        let mut taken: Vec<Entry> = Vec::new();
        let flying: Vec<u16> = st
            .inflight
            .iter()
            .filter(|(_, e)| movable(e))
            .map(|(k, _)| *k)
            .collect();
        for k in flying {
            taken.extend(st.inflight.remove(&k));
        }
        let queued = st.queue.take_all();
        for e in queued {
            match movable(&e) {
                true => taken.push(e),
                false => st.queue.push_back(e),
            }
        }
        drop(st);
        taken.sort_by_key(|e| e.seq);
        taken
            .into_iter()
            .filter_map(|e| {
                if e.stored {
                    store::delete_entry(shard, &self.client_id, e.seq);
                }
                Some((e.shared?, e.msg))
            })
            .collect()
    }

    /// Moves queued messages into flight, within the client's window, encoding them.
    pub fn fill(&self, shard: &MqttShard, out: &mut BytesMut, now_ms: u64) {
        let cfg = &shard.config().mqtt;
        let stats = &shard.mqtt_node.stats;
        let mut st = self.st.borrow_mut();
        let window = (st.receive_max.min(cfg.max_inflight)) as usize;
        let (v, max) = (st.version, st.max_packet.min(cfg.max_packet_bytes));
        while let Some(front) = st.queue.front() {
            if front.qos > 0 && st.inflight.len() >= window {
                break;
            }
            let Some(mut e) = st.queue.pop_front() else {
                break;
            };
            if e.msg.expired(now_ms) {
                if e.stored {
                    store::delete_entry(shard, &self.client_id, e.seq);
                }
                continue;
            }
            let pkid = if e.qos > 0 { next_pkid(&mut st) } else { 0 };
            let sub_ids = sub_ids(&st, &self.client_id, &e.msg);
            let alias = st.aliases.get(&e.msg.topic);
            let d = Delivery {
                qos: e.qos,
                retain: e.retain,
                dup: false,
                pkid,
                sub_ids: &sub_ids,
                alias,
            };
            if !encode::publish(out, v, &e.msg, &d, now_ms, max) {
                super::count(&stats.oversize_dropped);
                if e.stored {
                    store::delete_entry(shard, &self.client_id, e.seq);
                }
                continue;
            }
            st.aliases.sent(&e.msg.topic, alias);
            super::count(&stats.messages_out);
            if e.qos == 0 {
                if e.stored {
                    store::delete_entry(shard, &self.client_id, e.seq);
                }
                continue;
            }
            e.pkid = pkid;
            e.state = 1;
            // QoS 2 must keep its packet id across a restart (the client may hold it).
            if e.qos == 2 && e.stored {
                store::put_entry(shard, &self.client_id, &e);
            }
            st.inflight.insert(pkid, e);
        }
    }

    /// After a reconnect: everything in flight again, PUBLISH with DUP or PUBREL.
    pub fn resend(&self, shard: &MqttShard, out: &mut BytesMut, now_ms: u64) {
        let st = self.st.borrow();
        let max = st.max_packet.min(shard.config().mqtt.max_packet_bytes);
        for (pkid, e) in &st.inflight {
            if e.state == 2 {
                encode::ack(out, st.version, Ack::PubRel, *pkid, 0);
            } else {
                let sub_ids = sub_ids(&st, &self.client_id, &e.msg);
                let d = Delivery {
                    qos: e.qos,
                    retain: e.retain,
                    dup: true,
                    pkid: *pkid,
                    sub_ids: &sub_ids,
                    alias: None,
                };
                encode::publish(out, st.version, &e.msg, &d, now_ms, max);
            }
        }
    }

    /// PUBACK from the client.
    pub fn puback(&self, shard: &MqttShard, pkid: u16) {
        let mut st = self.st.borrow_mut();
        if st.inflight.get(&pkid).is_some_and(|e| e.qos == 1) {
            if let Some(e) = st.inflight.remove(&pkid) {
                if e.stored {
                    store::delete_entry(shard, &self.client_id, e.seq);
                }
            }
        }
    }

    /// PUBREC from the client: the message is released; true if the packet id was ours.
    pub fn pubrec(&self, shard: &MqttShard, pkid: u16) -> bool {
        let mut st = self.st.borrow_mut();
        let Some(e) = st.inflight.get_mut(&pkid).filter(|e| e.qos == 2) else {
            return false;
        };
        if e.state == 1 {
            e.state = 2;
            if e.stored {
                // Keep only what a PUBREL needs; the payload is delivered.
                let mut light = e.clone();
                light.msg = Arc::new(Message {
                    payload: bytes::Bytes::new(),
                    ..(*e.msg).clone()
                });
                store::put_entry(shard, &self.client_id, &light);
            }
        }
        true
    }

    /// PUBCOMP from the client.
    pub fn pubcomp(&self, shard: &MqttShard, pkid: u16) {
        let mut st = self.st.borrow_mut();
        if st.inflight.get(&pkid).is_some_and(|e| e.state == 2) {
            if let Some(e) = st.inflight.remove(&pkid) {
                if e.stored {
                    store::delete_entry(shard, &self.client_id, e.seq);
                }
            }
        }
    }
}

/// Most topic aliases the server gives one connection, whatever the client accepts.
pub const SERVER_ALIASES_MAX: u16 = 32;

/// The topic aliases the server gives a 5.0 connection (MQTT 5.0 §3.3.2.3.4): the first
/// topics sent get one each, up to the client's Topic Alias Maximum (and
/// `SERVER_ALIASES_MAX`); after that, topics without one are sent in full. An alias is never
/// reassigned, and it counts as known only once a PUBLISH that set it went out.
pub struct Aliases {
    max: u16,
    given: HashMap<String, u16>,
}

impl Aliases {
    pub fn new(client_max: u16) -> Aliases {
        Aliases {
            max: client_max.min(SERVER_ALIASES_MAX),
            given: HashMap::new(),
        }
    }

    /// The alias for `topic`, and whether the client knows it; `None`: send the topic alone.
    pub fn get(&self, topic: &str) -> Option<(u16, bool)> {
        if let Some(a) = self.given.get(topic) {
            return Some((*a, true));
        }
        let next = self.given.len() as u16 + 1;
        (next <= self.max).then_some((next, false))
    }

    /// A PUBLISH with `alias` (from `get`) went out for `topic`.
    pub fn sent(&mut self, topic: &str, alias: Option<(u16, bool)>) {
        if let Some((a, false)) = alias {
            self.given.insert(topic.to_string(), a);
        }
    }
}

/// The Subscription Identifiers of a 5.0 client's subscriptions that `msg` matches, in
/// ascending order: looked up when the message is sent, so a message that waited (also across
/// a restart) carries the identifiers of the subscriptions as they are then. At most one per
/// subscription (`mqtt.max_subscriptions_per_client`); none for 3.1.1.
fn sub_ids(st: &State, client: &str, msg: &Message) -> Vec<u32> {
    if st.version != Version::V5 {
        return Vec::new();
    }
    let own = *msg.from == *client;
    let mut ids: Vec<u32> = st
        .subs
        .iter()
        .filter(|(_, o)| !(o.no_local && own))
        .filter_map(|(f, o)| o.sub_id.filter(|_| topic::matches(&msg.topic, f)))
        .collect();
    ids.sort_unstable();
    ids
}

fn next_pkid(st: &mut State) -> u16 {
    loop {
        let p = st.next_pkid;
        st.next_pkid = if p == u16::MAX { 1 } else { p + 1 };
        if !st.inflight.contains_key(&p) {
            return p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_go_to_the_first_topics_up_to_the_maximum() {
        let mut a = Aliases::new(2);
        assert_eq!(a.get("t/a"), Some((1, false)));
        // Not sent (too large, say): not known, and the same alias is offered again.
        assert_eq!(a.get("t/a"), Some((1, false)));
        a.sent("t/a", a.get("t/a"));
        assert_eq!(a.get("t/a"), Some((1, true)));
        a.sent("t/b", a.get("t/b"));
        assert_eq!(a.get("t/b"), Some((2, true)));
        assert_eq!(a.get("t/c"), None, "past the client's maximum");
        assert_eq!(Aliases::new(0).get("t/a"), None);
        assert_eq!(Aliases::new(u16::MAX).max, SERVER_ALIASES_MAX);
    }
}
