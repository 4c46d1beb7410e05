//! A shard's broker: the sessions whose home is this shard, the trie of their subscriptions,
//! this shard's copy of the node-wide summary (which shards want which filters), and routing:
//! a publish goes once to every interested shard, then to each matching local session once,
//! at the highest QoS of its matching subscriptions; and to one member of each matching
//! shared subscription (`shared.rs`).

use super::mesh::MqttMsg;
use super::message::Message;
use super::session::{Session, SubOpts};
use super::store::{self, PersistJob};
use super::trie::Trie;
use super::MqttShard;
use crate::storage::hlc::Version;
use crate::storage::kv::{KvOp, KvReply};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub struct Broker {
    pub sessions: RefCell<HashMap<Arc<str>, Rc<Session>>>,
    /// filter → (client → options), for this shard's sessions.
    pub local: RefCell<Trie<HashMap<Arc<str>, SubOpts>>>,
    /// filter → shards that have a session subscribed to it (this shard included).
    pub summary: RefCell<Trie<BTreeSet<u16>>>,
    /// Shared subscriptions: this shard's members and its copy of where the others are.
    pub shared: RefCell<super::shared::Shared>,
    /// In-order queue of writes for the writers (see `store`).
    pub persist: LocalSender<PersistJob>,
    pub persist_rx: RefCell<Option<LocalReceiver<PersistJob>>>,
    next_link: Cell<u64>,
}

impl Default for Broker {
    fn default() -> Self {
        let (tx, rx) = local_channel::new_unbounded();
        Broker {
            sessions: RefCell::new(HashMap::new()),
            local: RefCell::new(Trie::default()),
            summary: RefCell::new(Trie::default()),
            shared: RefCell::default(),
            persist: tx,
            persist_rx: RefCell::new(Some(rx)),
            next_link: Cell::new(1),
        }
    }
}

impl Broker {
    pub fn next_link_id(&self) -> u64 {
        let id = self.next_link.get();
        self.next_link.set(id + 1);
        id
    }
}

/// Sends a message published on this node to every shard that has a matching subscription
/// (once per shard), and offers it to the peers (`cluster::forward`; messages from peers come
/// in as `MqttMsg::FromPeer`, never through here, so nothing is forwarded twice). A full
/// inbox of another shard drops a QoS 0 message (counted) and makes a QoS 1/2 publisher wait
/// for room: back-pressure reaches the publisher, never the other shards.
///
/// With `durable` (a QoS 1/2 publish to be acknowledged), returns what to wait for before the
/// acknowledgement (`Commits::wait`): this shard's copies for persistent sessions are written
/// as one job with a reply, and every other shard answers its `Deliver` once its own copies
/// are committed (at once if it stored none). The waiting happens in the publisher's task;
/// no shard ever waits for another while it serves its inbox. A QoS 0 message or one sent
/// without `durable` costs no reply channel and has nothing to wait for.
pub async fn route(shard: &MqttShard, msg: Arc<Message>, durable: bool) -> Commits {
    super::count(&shard.mqtt_node.stats.messages_in);
    let durable = durable && msg.qos > 0;
    let mut targets: BTreeMap<u16, Vec<Arc<str>>> = BTreeMap::new();
    shard
        .mqtt
        .summary
        .borrow()
        .for_each_match(&msg.topic, |set| {
            for t in set {
                targets.entry(*t).or_default();
            }
        });
    let mut remote = Vec::new();
    pick_shared(shard, &msg.topic, &mut targets, &mut remote);
    super::peers::offer(&shard.mqtt_node, &msg, remote);
    let mut commits = Commits::default();
    for (t, shared) in targets {
        let t = t as usize;
        if t == shard.id {
            let writes = deliver(shard, &msg, &shared, None);
            if !writes.is_empty() {
                store::submit(shard, shard.id, writes, commits.reply(durable));
            }
            continue;
        }
        let Some(inbox) = shard.mqtt_node.inboxes.get(t) else {
            continue;
        };
        let m = MqttMsg::Deliver {
            msg: msg.clone(),
            committed: commits.reply(durable),
            shared,
        };
        match inbox.try_send(m) {
            Ok(()) => {}
            // If the shard stopped, its reply is dropped unanswered: `committed` says so.
            Err(flume::TrySendError::Full(m)) if msg.qos > 0 => {
                let _ = inbox.send_async(m).await;
            }
            Err(_) => super::count(&shard.mqtt_node.stats.mesh_dropped),
        }
    }
    commits
}

/// Picks who serves each shared subscription matching `topic` this time: a peer (into
/// `remote`, forwarded with the message) or a shard of this node (into `targets`).
fn pick_shared(
    shard: &MqttShard,
    topic: &str,
    targets: &mut BTreeMap<u16, Vec<Arc<str>>>,
    remote: &mut Vec<(u16, Arc<str>)>,
) {
    let peers = shard.mqtt_node.peer_groups.matching(topic);
    let mut sh = shard.mqtt.shared.borrow_mut();
    if sh.is_empty() && peers.is_empty() {
        return;
    }
    let local = sh.pick_shards(topic);
    for (key, nodes) in &peers {
        let here = local.iter().any(|(k, _)| k == key);
        if let Some(node) = sh.pick_node(key, nodes, here) {
            remote.push((node, key.clone()));
        }
    }
    for (key, t) in local {
        if !remote.iter().any(|(_, k)| *k == key) {
            targets.entry(t).or_default().push(key);
        }
    }
}

/// A message from a peer that this node serves for the shared subscriptions `keys`: each
/// goes to one member, on the shard whose turn it is.
pub fn serve_shared_from_peer(shard: &MqttShard, msg: &Arc<Message>, keys: Vec<Arc<str>>) {
    let mut per_shard: BTreeMap<u16, Vec<Arc<str>>> = BTreeMap::new();
    for key in keys {
        match shard.mqtt.shared.borrow_mut().pick_shard_of(&key) {
            Some(t) => per_shard.entry(t).or_default().push(key),
            None => super::count(&shard.mqtt_node.stats.shared_unserved),
        }
    }
    for (t, keys) in per_shard {
        if t as usize == shard.id {
            let writes = deliver(shard, msg, &keys, None);
            if !writes.is_empty() {
                store::submit(shard, shard.id, writes, None);
            }
            continue;
        }
        let m = MqttMsg::Deliver {
            msg: msg.clone(),
            committed: None,
            shared: keys,
        };
        let sent = shard
            .mqtt_node
            .inboxes
            .get(t as usize)
            .map(|i| i.try_send(m));
        if !matches!(sent, Some(Ok(()))) {
            super::count(&shard.mqtt_node.stats.mesh_dropped);
        }
    }
}

/// The commits a routed QoS 1/2 message waits for before it is acknowledged: one answer per
/// shard of this node that was sent the message (or stored copies of it). Empty, and
/// unallocated, for a message that waits for nothing.
#[derive(Default)]
#[must_use = "an acknowledgement must wait for the copies it promises"]
pub struct Commits(Vec<store::Committed>);

impl Commits {
    /// With `durable`, a reply channel for one more commit (bounded(1): answered once);
    /// without, nothing (no allocation).
    fn reply(&mut self, durable: bool) -> Option<KvReply> {
        durable.then(|| {
            let (tx, rx) = flume::bounded(1);
            self.0.push(rx);
            tx
        })
    }

    /// Returns once every copy is committed. `Err` says a copy may not be on disk (a write
    /// failed, or a shard or writer stopped first): the publish must not be acknowledged as
    /// a success.
    pub async fn wait(self) -> Result<(), String> {
        for rx in self.0 {
            store::committed(rx).await?;
        }
        Ok(())
    }
}

/// Hands a message to every matching session of this shard, once each, and to one member
/// here of each shared subscription in `shared`; queues the writes that store the copies of
/// persistent sessions as one job. With `done`, the job answers it once committed; when
/// nothing was stored, it is answered at once. Never waits.
pub fn deliver_local(
    shard: &MqttShard,
    msg: &Arc<Message>,
    shared: &[Arc<str>],
    done: Option<KvReply>,
) {
    let writes = deliver(shard, msg, shared, None);
    if !writes.is_empty() {
        store::submit(shard, shard.id, writes, done);
    } else if let Some(done) = done {
        // Bounded(1) and answered once: never full, never blocks.
        let _ = done.try_send(Ok(()));
    }
}

/// How one session gets a message: the highest QoS of its matching subscriptions, whether
/// one keeps the retain flag, and the shared subscription it came through when it came
/// through nothing else (so it can go to another member if this one disconnects).
#[derive(Default)]
struct Via {
    qos: u8,
    retain_as_published: bool,
    shared: Option<Arc<str>>,
    plain: bool,
}

/// Hands a message to every matching session of this shard, once each, and to one member
/// here of each shared subscription in `shared` (never `exclude`); returns the writes that
/// store the copies of persistent sessions (empty, unallocated, when there are none), which
/// the caller queues before it yields (`Session::enqueue_into`).
fn deliver(
    shard: &MqttShard,
    msg: &Arc<Message>,
    shared: &[Arc<str>],
    exclude: Option<&str>,
) -> Vec<KvOp> {
    let mut writes = Vec::new();
    let mut per: HashMap<Arc<str>, Via> = HashMap::new();
    shard
        .mqtt
        .local
        .borrow()
        .for_each_match(&msg.topic, |subs| {
            for (client, o) in subs {
                if o.no_local && **client == *msg.from {
                    continue;
                }
                let e = per.entry(client.clone()).or_default();
                e.qos = e.qos.max(o.qos);
                e.retain_as_published |= o.retain_as_published;
                e.plain = true;
            }
        });
    let sessions = shard.mqtt.sessions.borrow();
    for key in shared {
        let Some((member, o)) = pick_member(shard, &sessions, key, exclude) else {
            super::count(&shard.mqtt_node.stats.shared_unserved);
            continue;
        };
        let e = per.entry(member).or_default();
        e.qos = e.qos.max(o.qos);
        e.retain_as_published |= o.retain_as_published;
        e.shared = Some(key.clone());
    }
    if per.is_empty() || msg.expired(crate::storage::now_millis()) {
        return writes;
    }
    for (client, via) in per {
        if let Some(s) = sessions.get(&client) {
            let shared = via.shared.filter(|_| !via.plain);
            let retain = via.retain_as_published && msg.retain;
            s.enqueue_into(
                shard,
                msg.clone(),
                via.qos.min(msg.qos),
                retain,
                shared,
                &mut writes,
            );
        }
    }
    writes
}

/// The member of shared subscription `key` on this shard that gets the next message, with
/// its subscription's options.
fn pick_member(
    shard: &MqttShard,
    sessions: &HashMap<Arc<str>, Rc<Session>>,
    key: &str,
    exclude: Option<&str>,
) -> Option<(Arc<str>, SubOpts)> {
    let (_, inner) = super::topic::parse_shared(key)?;
    let connected = |c: &str| {
        Some(c) != exclude
            && sessions
                .get(c)
                .is_some_and(|s| s.st.borrow().link.is_some() && !s.st.borrow().closing)
    };
    let member = shard
        .mqtt
        .shared
        .borrow_mut()
        .pick_member(key, inner, exclude, connected)?;
    let opts = *sessions.get(&member)?.st.borrow().subs.get(key)?;
    Some((member, opts))
}

/// A member of shared subscriptions lost its connection: the messages it was given through
/// them and has not completed go to another member of the same group, on any shard of this
/// node, when the group has another member (§4.8.2). What has no other member stays.
pub async fn hand_over_shared(shard: &MqttShard, s: &Session) {
    let here = shard.id as u16;
    let moved = s.take_shared(shard, |key| {
        let Some((_, inner)) = super::topic::parse_shared(key) else {
            return false;
        };
        let mut sh = shard.mqtt.shared.borrow_mut();
        sh.has_other_member(key, inner, here, &s.client_id)
    });
    for (key, msg) in moved {
        super::count(&shard.mqtt_node.stats.shared_handed_over);
        let target = {
            let mut sh = shard.mqtt.shared.borrow_mut();
            super::topic::parse_shared(&key)
                .and_then(|(_, inner)| sh.pick_shard_for(&key, inner, here, &s.client_id))
        };
        match target {
            Some(t) if t == here => {
                let writes = deliver(shard, &msg, std::slice::from_ref(&key), Some(&s.client_id));
                if !writes.is_empty() {
                    store::submit(shard, shard.id, writes, None);
                }
            }
            Some(t) => {
                let qos = msg.qos;
                let m = MqttMsg::Deliver {
                    msg,
                    committed: None,
                    shared: vec![key],
                };
                // As in `route`: a full inbox drops a QoS 0 message, a QoS 1/2 one waits for
                // room (its stored copy here is gone already; it must not be lost).
                let Some(inbox) = shard.mqtt_node.inboxes.get(t as usize) else {
                    continue;
                };
                match inbox.try_send(m) {
                    Ok(()) => {}
                    Err(flume::TrySendError::Full(m)) if qos > 0 => {
                        let _ = inbox.send_async(m).await;
                    }
                    Err(_) => super::count(&shard.mqtt_node.stats.mesh_dropped),
                }
            }
            None => super::count(&shard.mqtt_node.stats.shared_unserved),
        }
    }
}

/// Adds a subscription of a local session. Returns (new for this session, first on shard).
pub fn add_sub(shard: &MqttShard, s: &Session, filter: &str, o: SubOpts) -> (bool, bool) {
    let new_for_session =
        s.st.borrow_mut()
            .subs
            .insert(filter.to_string(), o)
            .is_none();
    let before = wants_feed(shard);
    let result = match super::topic::parse_shared(filter) {
        Some((_, inner)) => {
            // Every new member is announced: shards take turns by their members.
            let mut sh = shard.mqtt.shared.borrow_mut();
            sh.join(filter, inner, &s.client_id);
            (new_for_session, new_for_session)
        }
        None => {
            let mut local = shard.mqtt.local.borrow_mut();
            let subs = local.get_or_insert_with(filter, HashMap::new);
            let first = subs.is_empty();
            subs.insert(s.client_id.clone(), o);
            (new_for_session, first)
        }
    };
    follow_feed(shard, before);
    result
}

/// Whether this shard's sessions want record changes (any subscription, plain or shared).
pub fn wants_feed(shard: &MqttShard) -> bool {
    !shard.mqtt.local.borrow().is_empty() || shard.mqtt.shared.borrow().has_members_here()
}

/// Follows a change of `wants_feed` (it was `before`). Record changes are delivered through
/// the change feed: the shard asks the writers for it, then starts from what they have
/// committed (a group that skipped this shard is read back from the change log:
/// `feed::reset_positions`).
fn follow_feed(shard: &MqttShard, before: bool) {
    let interest = &shard.node.feed_interest[shard.id];
    match (before, wants_feed(shard)) {
        (false, true) if interest.fetch_add(1, Ordering::Relaxed) == 0 => {
            crate::runtime::feed::reset_positions(shard);
        }
        (true, false) => {
            interest.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// The shared subscriptions this shard serves for a record change (see
/// `Shared::serves_change`): each group gets it once in the cluster.
pub fn shared_for_change(shard: &MqttShard, topic: &str, version: Version) -> Vec<Arc<str>> {
    let sh = shard.mqtt.shared.borrow();
    if sh.is_empty() {
        return Vec::new();
    }
    let peers = shard.mqtt_node.peer_groups.matching(topic);
    // Every bit of the version moves every bit of the seed (SplitMix64's finalizer): the
    // low bits of a clock are a counter that is mostly 0.
    let mut z = version.clock ^ ((version.node as u64) << 48);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let seed = z ^ (z >> 31);
    let node = shard.node.config.cluster.node_id;
    sh.serves_change(topic, seed, shard.id as u16, node, &peers)
}

/// Removes a subscription; returns (existed, last on shard).
pub fn remove_sub(shard: &MqttShard, s: &Session, filter: &str) -> (bool, bool) {
    let existed = s.st.borrow_mut().subs.remove(filter).is_some();
    let before = wants_feed(shard);
    let result = match super::topic::parse_shared(filter) {
        Some((_, inner)) => {
            // Every member that leaves is announced (see `add_sub`).
            let mut sh = shard.mqtt.shared.borrow_mut();
            sh.leave(filter, inner, &s.client_id);
            (existed, existed)
        }
        None => {
            let mut last = false;
            shard.mqtt.local.borrow_mut().update(filter, |subs| {
                subs.remove(&s.client_id);
                last = subs.is_empty();
                last
            });
            (existed, last)
        }
    };
    follow_feed(shard, before);
    result
}

/// Tells every shard (this one included) that this shard now wants, or no longer wants,
/// these filters; with `wait`, returns once every shard has taken the change.
pub async fn announce(shard: &MqttShard, filters: Vec<String>, add: bool, wait: bool) {
    if filters.is_empty() {
        return;
    }
    let mut acks = Vec::new();
    for f in &filters {
        apply_summary(shard, shard.id, f, add);
    }
    for (t, inbox) in shard.mqtt_node.inboxes.iter().enumerate() {
        if t == shard.id {
            continue;
        }
        for f in &filters {
            let (tx, rx) = flume::bounded(1);
            let msg = MqttMsg::Filter {
                from: shard.id,
                filter: f.clone(),
                add,
                ack: tx,
            };
            // Summary changes must not be lost: wait for room in the inbox.
            if inbox.send_async(msg).await.is_ok() {
                acks.push(rx);
            }
        }
    }
    if wait {
        for rx in acks {
            let _ = rx.recv_async().await;
        }
    }
}

/// Applies a summary change from shard `from`.
pub fn apply_summary(shard: &MqttShard, from: usize, filter: &str, add: bool) {
    // A shared subscription changes here with each member; the shard wants it from its
    // first member to its last.
    let edge = match super::topic::parse_shared(filter) {
        Some((_, inner)) => {
            let mut sh = shard.mqtt.shared.borrow_mut();
            sh.apply_summary(filter, inner, from as u16, add)
        }
        None => true,
    };
    if from == shard.id && edge {
        // The shard's own change: the node's set that peers are told about follows it.
        if let Some(interest) = &shard.mqtt_node.interest {
            interest.update(from as u16, filter, add);
        }
    }
    if super::topic::is_shared(filter) {
        return;
    }
    let mut summary = shard.mqtt.summary.borrow_mut();
    if add {
        summary
            .get_or_insert_with(filter, BTreeSet::new)
            .insert(from as u16);
    } else {
        summary.update(filter, |set| {
            set.remove(&(from as u16));
            set.is_empty()
        });
    }
}

/// Ends a session: its subscriptions, its memory, its stored state.
pub async fn remove_session(shard: &MqttShard, s: &Rc<Session>) {
    let filters: Vec<String> = s.st.borrow().subs.keys().cloned().collect();
    let mut gone = Vec::new();
    for f in &filters {
        if remove_sub(shard, s, f).1 {
            gone.push(f.clone());
        }
    }
    let current = shard.mqtt.sessions.borrow().get(&s.client_id).cloned();
    if current.is_some_and(|c| Rc::ptr_eq(&c, s)) {
        shard.mqtt.sessions.borrow_mut().remove(&s.client_id);
    }
    let on_disk = s.st.borrow().on_disk;
    if on_disk {
        store::delete_session(shard, &s.client_id);
    }
    announce(shard, gone, false, false).await;
}

/// The summary as stored sessions describe it: called at start, before any client connects.
pub fn rebuild_summary_from_disk(shard: &MqttShard) {
    for db in 0..shard.count() {
        for (_, rec) in store::stored_sessions(shard, db) {
            for sub in rec.subs {
                apply_summary(shard, db, &sub.filter, true);
            }
        }
    }
}
