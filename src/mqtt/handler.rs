//! What the broker does with each packet of a connected client: CONNECT (session lookup,
//! takeover, CONNACK, redelivery), PUBLISH at QoS 0/1/2 (topic aliases, retained, tables as
//! topics, routing), the acknowledgements, UNSUBSCRIBE, PINGREQ and DISCONNECT (SUBSCRIBE is
//! `subscribe.rs`); and the end of a connection (will, session expiry).

use super::broker;
use super::codec::Version;
use super::encode::{self, Ack, ConnAckInfo};
use super::message::Message;
use super::packet::{Connect, Fault, Packet, PublishIn};
use super::session::{Link, Session};
use super::MqttShard;
use super::{acl, retained, store, tables, topic};
use crate::security::limits::{bump, PublishLimit};
use crate::security::Principal;
use bytes::BytesMut;
use glommio::channels::local_channel::{self, LocalReceiver};
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Topic aliases a 5.0 client may use towards us.
pub const TOPIC_ALIAS_MAX: u16 = 32;

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// DISCONNECT (normal): the will is discarded.
    Normal,
    /// 5.0 DISCONNECT 0x04: publish the will.
    WithWill,
    /// The network connection was lost or closed without DISCONNECT.
    Lost,
    /// The server ended it.
    Fault(Fault),
}

/// A connected client.
pub struct Ctx {
    pub shard: Rc<MqttShard>,
    pub session: Rc<Session>,
    pub link_id: u64,
    pub v: Version,
    pub out: BytesMut,
    pub aliases: HashMap<u16, String>,
    pub ended: Option<End>,
    /// QoS 1/2 publishes routed and not yet acknowledged, in the order they came (`settle`).
    pub pending: VecDeque<PendingAck>,
    /// The connection's publish rate (`limits.mqtt_publishes_per_sec`); `None`: unlimited.
    pub publish_limit: Option<PublishLimit>,
    /// The user the client authenticated as; `None` when it connected while no user existed.
    pub user: Option<Arc<Principal>>,
    /// The generation of the users and roles `user` was resolved at (`acl::still_allowed`).
    pub auth_generation: u64,
}

/// A QoS 1/2 publish from the client, routed, whose PUBACK/PUBREC waits for the copies it
/// left for persistent sessions to be committed.
pub struct PendingAck {
    pub pkid: u16,
    pub qos: u8,
    /// The 5.0 reason code of the acknowledgement if every copy is committed.
    pub reason: u8,
    pub commits: broker::Commits,
}

/// What `connect` gives the connection loop.
pub struct Connected {
    pub ctx: Ctx,
    /// The keep-alive the server holds the client to, in seconds (0: none).
    pub keep_alive: u16,
    pub wake: LocalReceiver<()>,
    pub close: Rc<Cell<Option<Fault>>>,
}

/// Serves a CONNECT: CONNACK (written to `out`) and, when accepted, the session.
pub async fn connect(
    shard: &Rc<MqttShard>,
    c: Connect,
    assigned: bool,
    certified: Option<String>,
    out: &mut BytesMut,
) -> Option<Connected> {
    let cfg = &shard.config().mqtt;
    let v = if c.v5 { Version::V5 } else { Version::V4 };
    let expiry = c.session_expiry_secs.min(cfg.max_session_expiry_secs);
    let (keep_alive, told) = keep_alive(&c, cfg.max_keep_alive_secs);
    let client: Arc<str> = Arc::from(c.client_id.as_str());
    let auth_generation = shard.security.directory().generation;
    if c.auth_method.is_some() {
        // Enhanced authentication is not offered: 0x8C, before any credential is looked at
        // (MQTT 5.0 §4.12: the server does not support the method).
        super::count(&shard.mqtt_node.stats.connects_unauthorized);
        encode::connack(out, v, info(false, 0x8C, None, cfg, None));
        return None;
    }
    let user = match acl::authenticate(shard, &c, certified.as_deref()).await {
        Ok(user) => user,
        Err((v4, v5)) => {
            super::count(&shard.mqtt_node.stats.connects_unauthorized);
            let code = if c.v5 { v5 } else { v4 };
            encode::connack(out, v, info(false, code, None, cfg, None));
            return None;
        }
    };
    let existing = shard.mqtt.sessions.borrow().get(&client).cloned();
    if let Some((v4, v5)) = refusal(shard, &c, expiry, existing.as_ref()) {
        let code = if c.v5 { Some(v5) } else { v4 };
        if let Some(code) = code {
            encode::connack(out, v, info(false, code, None, cfg, None));
        }
        return None;
    }
    let (session, present) = take_session(shard, &c, client, v, expiry, existing).await;
    let (wake_tx, wake_rx) = local_channel::new_bounded(1);
    let close = Rc::new(Cell::new(None));
    let link_id = shard.mqtt.next_link_id();
    {
        let mut st = session.st.borrow_mut();
        st.version = v;
        st.expiry_secs = expiry;
        st.link = Some(Link {
            id: link_id,
            wake: wake_tx,
            close: close.clone(),
        });
        st.closing = false;
        st.generation += 1;
        st.will = c.will;
        st.receive_max = c.receive_max;
        st.max_packet = c.max_packet.map(|m| m as usize).unwrap_or(usize::MAX);
        st.aliases = super::session::Aliases::new(c.topic_alias_max);
    }
    if expiry > 0 {
        store::put_session(shard, &session);
    }
    tracing::debug!(shard = shard.id, client = %session.client_id, present, "connected");
    let assigned_id = (assigned && c.v5).then(|| c.client_id.clone());
    let granted = (c.v5 && c.session_expiry_secs != expiry).then_some(expiry);
    let mut ack = info(present, 0, assigned_id, cfg, granted);
    ack.server_keep_alive = told;
    if c.request_response {
        ack.response_info = response_info(&session.client_id);
    }
    encode::connack(out, v, ack);
    if present {
        session.resend(shard, out, crate::storage::now_millis());
    }
    Some(Connected {
        ctx: Ctx {
            shard: shard.clone(),
            session,
            link_id,
            v,
            out: BytesMut::new(),
            aliases: HashMap::new(),
            ended: None,
            pending: VecDeque::new(),
            publish_limit: None,
            user,
            auth_generation,
        },
        keep_alive,
        wake: wake_rx,
        close,
    })
}

/// The keep-alive the server holds a client to, and the Server Keep Alive to tell a 5.0
/// client when that is not what it asked for: a 5.0 client asking for none (0) or for more
/// than `max` gets `max` (MQTT 5.0 §3.2.2.3.14); a 3.1.1 client keeps its own.
fn keep_alive(c: &Connect, max: u16) -> (u16, Option<u16>) {
    let asked = c.keep_alive_secs;
    if !c.v5 || (1..=max).contains(&asked) {
        return (asked, None);
    }
    (max, Some(max))
}

/// Why a CONNECT is refused, as (3.1.1 return code, 5.0 reason code); `None` to accept. No
/// 3.1.1 return code: none fits, so the connection closes without a CONNACK (3.1.1
/// MQTT-3.2.2-6).
fn refusal(
    shard: &MqttShard,
    c: &Connect,
    expiry: u32,
    existing: Option<&Rc<Session>>,
) -> Option<(Option<u8>, u8)> {
    if c.client_id.is_empty() || c.client_id.len() > 256 || c.client_id.contains('\0') {
        return Some((Some(2), 0x85));
    }
    if c.will
        .as_ref()
        .is_some_and(|w| !topic::valid_topic(&w.message.topic))
    {
        // A will topic with a wildcard (MQTT-4.7.1-1), empty (MQTT-4.7.3-1) or too long.
        return Some((None, 0x90));
    }
    // A new persistent session past `mqtt.max_persistent_sessions` (taking over a stored one
    // is not a new one): 3.1.1 "server unavailable", 5.0 "quota exceeded".
    let stored = existing.is_some_and(|s| !c.clean && s.st.borrow().on_disk);
    let node = &shard.mqtt_node;
    let max = shard.config().mqtt.max_persistent_sessions;
    if expiry > 0 && !stored && node.persistent_sessions.load(Ordering::Relaxed) >= max {
        super::count(&node.stats.sessions_refused);
        tracing::debug!(client = %c.client_id, "persistent session refused: mqtt.max_persistent_sessions");
        return Some((Some(3), 0x97));
    }
    None
}

/// The session a connection takes: the existing one (`true`: present) unless the client
/// asks for a clean start or that session ends with the connection it had (3.1.1 clean
/// session, 5.0 expiry 0: closing that connection ends it, MQTT-3.1.2-6, 5.0 MQTT-3.1.4-3
/// before MQTT-3.1.4-4), else a new one. The older connection of the same client id goes;
/// its will is published if its session ends here, and a 3.1.1 will always (3.1.1
/// MQTT-3.1.2-8: published whenever its connection closes without DISCONNECT; a 5.0 will
/// waits for the session to end or its delay to pass, and the new connection came first).
async fn take_session(
    shard: &Rc<MqttShard>,
    c: &Connect,
    client: Arc<str>,
    v: Version,
    expiry: u32,
    existing: Option<Rc<Session>>,
) -> (Rc<Session>, bool) {
    let resume = existing
        .as_ref()
        .is_some_and(|old| !c.clean && old.persistent());
    let old_will = existing.as_ref().and_then(|old| {
        let mut st = old.st.borrow_mut();
        let link = st.link.take()?;
        link.close(Fault::TakenOver);
        let will = st.will.take()?;
        (!resume || st.version == Version::V4).then_some(will)
    });
    if let Some(w) = old_will {
        publish_will(shard, w.message).await;
    }
    match existing {
        Some(old) if resume => (old, true),
        other => {
            if let Some(old) = other {
                broker::remove_session(shard, &old).await;
            }
            let s = Session::new(client.clone(), v, expiry);
            shard.mqtt.sessions.borrow_mut().insert(client, s.clone());
            (s, false)
        }
    }
}

fn info(
    present: bool,
    code: u8,
    assigned: Option<String>,
    cfg: &super::config::MqttConfig,
    expiry: Option<u32>,
) -> ConnAckInfo {
    ConnAckInfo {
        session_present: present,
        code,
        assigned_client_id: assigned,
        receive_max: cfg.max_inflight,
        max_packet: cfg.max_packet_bytes as u32,
        topic_alias_max: TOPIC_ALIAS_MAX,
        session_expiry_secs: expiry,
        server_keep_alive: None,
        response_info: None,
    }
}

/// The base of a client's response topics (§3.2.2.3.15): `response/{client id}/`, when the
/// client id can be a topic level.
fn response_info(client_id: &str) -> Option<String> {
    let level_ok = !client_id.is_empty() && !client_id.contains(['/', '+', '#', '\0']);
    level_ok.then(|| format!("response/{client_id}/"))
}

/// Serves one packet after CONNECT. An error ends the connection with that reason.
pub async fn handle(ctx: &mut Ctx, p: Packet) -> Result<(), Fault> {
    let shard = ctx.shard.clone();
    // Publishes and the client's acks of our messages neither answer nor depend on the
    // acknowledgements still waiting; anything else comes after them.
    if !matches!(
        p,
        Packet::Publish(_) | Packet::PubAck(_) | Packet::PubComp(_)
    ) {
        settle(ctx).await?;
    }
    match p {
        Packet::Publish(p) => publish(ctx, p).await?,
        Packet::PubAck(pkid) => ctx.session.puback(&shard, pkid),
        Packet::PubRec(pkid) => {
            let ok = ctx.session.pubrec(&shard, pkid);
            let reason = if ok { 0 } else { 0x92 };
            encode::ack(&mut ctx.out, ctx.v, Ack::PubRel, pkid, reason);
        }
        Packet::PubComp(pkid) => ctx.session.pubcomp(&shard, pkid),
        Packet::PubRel(pkid) => {
            let had = ctx.session.st.borrow_mut().incoming.remove(&pkid);
            if had && ctx.session.persistent() {
                store::set_incoming(&shard, &ctx.session.client_id, pkid, false).await;
            }
            let reason = if had { 0 } else { 0x92 };
            encode::ack(&mut ctx.out, ctx.v, Ack::PubComp, pkid, reason);
        }
        Packet::Subscribe { pkid, filters } => {
            super::subscribe::subscribe(ctx, pkid, filters).await
        }
        Packet::Unsubscribe { pkid, filters } => {
            let mut existed = Vec::new();
            let mut gone = Vec::new();
            for f in filters {
                let (had, last) = broker::remove_sub(&shard, &ctx.session, &f);
                existed.push(had);
                if last {
                    gone.push(f);
                }
            }
            broker::announce(&shard, gone, false, false).await;
            if ctx.session.persistent() {
                store::put_session(&shard, &ctx.session);
            }
            encode::unsuback(&mut ctx.out, ctx.v, pkid, &existed);
        }
        Packet::PingReq => encode::pingresp(&mut ctx.out),
        Packet::Disconnect {
            reason,
            session_expiry_secs,
        } => {
            if let Some(e) = session_expiry_secs {
                let mut st = ctx.session.st.borrow_mut();
                if st.expiry_secs == 0 && e != 0 {
                    return Err(Fault::Protocol);
                }
                st.expiry_secs = e.min(shard.config().mqtt.max_session_expiry_secs);
            }
            ctx.ended = Some(if reason == 0x04 {
                End::WithWill
            } else {
                End::Normal
            });
        }
        Packet::Connect(_) | Packet::ServerOnly => return Err(Fault::Protocol),
    }
    Ok(())
}

async fn publish(ctx: &mut Ctx, p: PublishIn) -> Result<(), Fault> {
    let shard = ctx.shard.clone();
    let topic = match p.topic_alias {
        // An empty topic name without a topic alias: a protocol error (5.0 §3.3.2.3.4).
        None if p.topic.is_empty() => return Err(Fault::Protocol),
        None => p.topic,
        Some(a) if a > TOPIC_ALIAS_MAX => return Err(Fault::TopicAliasInvalid),
        Some(a) if p.topic.is_empty() => match ctx.aliases.get(&a) {
            Some(t) => t.clone(),
            None => return Err(Fault::Protocol),
        },
        Some(a) => {
            ctx.aliases.insert(a, p.topic.clone());
            p.topic
        }
    };
    if !topic::valid_topic(&topic) {
        return Err(Fault::TopicInvalid);
    }
    if p.qos == 2 {
        if ctx.pending.iter().any(|a| a.pkid == p.pkid) {
            // The same packet id is still waiting: settle it, so it is known below.
            settle(ctx).await?;
        }
        let waiting = ctx.pending.iter().filter(|a| a.qos == 2).count();
        let st = ctx.session.st.borrow();
        if st.incoming.contains(&p.pkid) {
            // A resend of a message we already have: acknowledge, do not deliver again.
            encode::ack(&mut ctx.out, ctx.v, Ack::PubRec, p.pkid, 0);
            return Ok(());
        }
        if st.incoming.len() + waiting >= shard.config().mqtt.max_inflight as usize {
            return Err(Fault::ReceiveMaxExceeded);
        }
    }
    let retained_delete = (p.retain, p.payload.is_empty());
    if !may_publish(ctx, &topic, p.qos, p.pkid, retained_delete) {
        return Ok(());
    }
    if !within_rate(ctx, p.qos, p.pkid).await {
        return Ok(());
    }
    let now = crate::storage::now_millis();
    let msg = Message {
        topic,
        payload: p.payload,
        qos: p.qos,
        retain: p.retain,
        props: p.props,
        expires_at_ms: p.expiry_secs.map(|s| now + s as u64 * 1000),
        from: ctx.session.client_id.clone(),
        version: None,
    };
    tracing::debug!(shard = shard.id, topic = %msg.topic, qos = p.qos, "publish");
    let (reason, commits) = super::hook::publish_from_client(&shard, msg, p.qos > 0).await;
    tracing::debug!(shard = shard.id, reason, "published");
    if p.qos > 0 {
        // Acknowledged by `settle`, once its copies are committed; meanwhile the next packets
        // are routed, so the waits of a pipelining client overlap.
        ctx.pending.push_back(PendingAck {
            pkid: p.pkid,
            qos: p.qos,
            reason,
            commits,
        });
    }
    Ok(())
}

/// Whether the connection may go on under the users and roles as they are now (looked at
/// again only when they changed); counted when not.
pub fn user_still_allowed(ctx: &mut Ctx) -> bool {
    let st = ctx.session.st.borrow();
    let filters = st.subs.keys().map(|f| f.as_ref());
    let ok = acl::still_allowed(&ctx.shard, &mut ctx.user, &mut ctx.auth_generation, filters);
    drop(st);
    if !ok {
        super::count(&ctx.shard.mqtt_node.stats.users_revoked);
        tracing::info!(client = %ctx.session.client_id, "mqtt connection ended: its user was removed or lost a permission it relies on");
    }
    ok
}

/// The 5.0 reason code of a publish the user may not make (not authorized).
pub const REASON_NOT_AUTHORIZED: u8 = 0x87;

/// Whether the connection's user may make this publish. A refused one is counted and goes no
/// further: QoS 0 is dropped; QoS 1/2 from a 5.0 client is answered `REASON_NOT_AUTHORIZED`;
/// a 3.1.1 client, which has no negative acknowledgement, gets a positive one (as MQTT 3.1.1
/// §3.3.5 allows) and the message is dropped.
/// `(retain, empty)`: what the publish would do to a record.
fn may_publish(
    ctx: &mut Ctx,
    topic: &str,
    qos: u8,
    pkid: u16,
    (retain, empty): (bool, bool),
) -> bool {
    let Some(user) = ctx.user.as_ref() else {
        return true;
    };
    if acl::may_publish(&ctx.shard, user, topic, retain, empty) {
        return true;
    }
    super::count(&ctx.shard.mqtt_node.stats.publishes_unauthorized);
    tracing::debug!(client = %ctx.session.client_id, user = %user.name, topic, "publish refused: not authorized");
    if qos > 0 {
        let reason = match ctx.v {
            Version::V5 => REASON_NOT_AUTHORIZED,
            Version::V4 => 0,
        };
        ctx.pending.push_back(PendingAck {
            pkid,
            qos,
            reason,
            commits: broker::Commits::default(),
        });
    }
    false
}

/// The 5.0 reason code of a publish over the client's rate (quota exceeded).
pub const REASON_QUOTA: u8 = 0x97;

/// Takes a token of the connection's publish rate. Past the rate a QoS 0 publish is dropped
/// (counted); a QoS 1/2 one of a 5.0 client is answered `REASON_QUOTA` (counted), which tells
/// it to send the message again later; a 3.1.1 client, which cannot be told, is held back
/// until a token is there (counted): its connection reads nothing meanwhile, so its own
/// unacknowledged window and TCP slow it down, and nothing it sent is lost. False: the
/// publish is answered already (or dropped) and goes no further.
async fn within_rate(ctx: &mut Ctx, qos: u8, pkid: u16) -> bool {
    let Some(limit) = ctx.publish_limit.as_mut() else {
        return true;
    };
    let limits = ctx.shard.limits.clone();
    let mut wait_ns = match limit.take(&limits) {
        Ok(()) => return true,
        Err(w) => w,
    };
    let stats = limits.stats();
    match (qos, ctx.v) {
        (0, _) => bump(&stats.mqtt_publishes_dropped),
        (_, Version::V5) => {
            bump(&stats.mqtt_publishes_refused);
            ctx.pending.push_back(PendingAck {
                pkid,
                qos,
                reason: REASON_QUOTA,
                commits: broker::Commits::default(),
            });
        }
        (_, Version::V4) => {
            bump(&stats.mqtt_publishes_delayed);
            loop {
                glommio::timer::sleep(Duration::from_nanos(wait_ns)).await;
                match limit.take(&limits) {
                    Ok(()) => return true,
                    Err(w) => wait_ns = w,
                }
            }
        }
    }
    false
}

/// Whether a publish's reason code says it was not applied for a reason that may pass (as
/// opposed to a payload that will never be accepted, which a 3.1.1 client must not resend
/// forever).
fn retry_later(reason: u8) -> bool {
    matches!(reason, 0x80 | 0x97)
}

/// Whether a publish's reason code says a record write it asked for was refused for good: a
/// payload that is not a JSON object or breaks the table's rules (0x99, only a table write
/// answers it).
fn write_refused(reason: u8) -> bool {
    reason == 0x99
}

/// Acknowledges the QoS 1/2 publishes routed so far, in the order they came (MQTT requires
/// it), each once every copy it left for a persistent session is committed. Runs before any
/// packet whose answer or effect must follow them, and before the connection writes what it
/// has and waits for more. A copy that may not be on disk gets 5.0 reason 0x80; a 3.1.1
/// client, which cannot be told, is disconnected unacknowledged and sends the message again.
/// The same holds for a table write refused for now (the writer's queue was full) or for good
/// (a payload that is not a JSON object): a 3.1.1 client never hears that a record was
/// written when it was not.
pub async fn settle(ctx: &mut Ctx) -> Result<(), Fault> {
    while let Some(a) = ctx.pending.pop_front() {
        let mut reason = a.reason;
        if ctx.v == Version::V4 && retry_later(reason) {
            tracing::debug!(client = %ctx.session.client_id, reason, "a 3.1.1 publish was not applied: disconnecting it unacknowledged");
            return Err(Fault::NotStored);
        }
        // 3.1.1 has no reason codes: a PUBACK would say the record was written.
        if ctx.v == Version::V4 && write_refused(reason) {
            tracing::warn!(client = %ctx.session.client_id, "a 3.1.1 retained publish to a table topic was not written (not a JSON object, or against the table's rules): closing the connection without acknowledging it, since 3.1.1 cannot say why");
            return Err(Fault::NotStored);
        }
        if let Err(e) = a.commits.wait().await {
            tracing::warn!(
                shard = ctx.shard.id,
                client = %ctx.session.client_id,
                "a QoS {} publish was not stored for every session: {e}",
                a.qos
            );
            if ctx.v == Version::V4 {
                return Err(Fault::NotStored);
            }
            reason = 0x80;
        }
        if a.qos == 1 {
            encode::ack(&mut ctx.out, ctx.v, Ack::PubAck, a.pkid, reason);
            continue;
        }
        if reason == 0 {
            ctx.session.st.borrow_mut().incoming.insert(a.pkid);
            if ctx.session.persistent() {
                store::set_incoming(&ctx.shard, &ctx.session.client_id, a.pkid, true).await;
            }
        }
        encode::ack(&mut ctx.out, ctx.v, Ack::PubRec, a.pkid, reason);
    }
    Ok(())
}

/// Publishes an application message: a retained publish to `{Table}/{id}` writes the record
/// (subscribers hear of it through the change feed); anything else is routed, and a retained
/// one stored. Returns the 5.0 reason code for the acknowledgement and, with `wait` (a QoS
/// 1/2 publish to be acknowledged), the commits of the copies queued for persistent sessions
/// on this node, which the acknowledgement waits for (`broker::route`); a record or retained
/// message written here is committed already when this returns.
pub async fn publish_message(shard: &MqttShard, msg: Message, wait: bool) -> (u8, broker::Commits) {
    store::wait_for_room(
        &shard.mqtt_node,
        shard.config().mqtt.max_persist_backlog_bytes,
    )
    .await;
    if msg.retain {
        if let Some((def, id)) = tables::table_of(shard, &msg.topic) {
            let reason = match tables::write_record(shard, &def, id, &msg.payload).await {
                Ok(()) => 0,
                Err(code) => code,
            };
            return (reason, broker::Commits::default());
        }
        retained::store(shard, &msg, wait).await;
        if msg.payload.is_empty() {
            // An empty retained payload only deletes; subscribers still get it (spec 3.3.1.3).
        }
    }
    (0, broker::route(shard, Arc::new(msg), wait).await)
}

/// Publishes a will now (its expiry interval becomes a deadline).
pub async fn publish_will(shard: &MqttShard, mut m: Message) {
    if let Some(secs) = m.expires_at_ms {
        m.expires_at_ms = Some(crate::storage::now_millis() + secs * 1000);
    }
    // Nobody waits for a will's acknowledgement: routed without `wait`.
    let _ = publish_message(shard, m, false).await;
}

/// The connection `link_id` of `session` is gone: will, and session end or expiry timer.
pub async fn end(shard: &Rc<MqttShard>, session: &Rc<Session>, link_id: u64, how: End) {
    let (will, expiry, generation) = {
        let mut st = session.st.borrow_mut();
        if st.link.as_ref().map(|l| l.id) != Some(link_id) {
            return; // taken over: the new connection owns the session now
        }
        st.link = None;
        st.fresh.clear();
        st.closing = false;
        st.generation += 1;
        let will = st.will.take();
        // No will for a normal DISCONNECT, a takeover (the new connection decided), or a
        // server shutdown (the client did nothing wrong; its session survives).
        let publish = !matches!(
            how,
            End::Normal | End::Fault(Fault::TakenOver) | End::Fault(Fault::ShuttingDown)
        );
        (will.filter(|_| publish), st.expiry_secs, st.generation)
    };
    // What it was given through shared subscriptions goes to another member of the group.
    broker::hand_over_shared(shard, session).await;
    if expiry > 0 {
        // What is still queued must survive a restart now that nobody is reading it.
        let mut st = session.st.borrow_mut();
        for e in st.queue.iter_mut().filter(|e| !e.stored) {
            e.stored = true;
            store::put_entry(shard, &session.client_id, e);
        }
        drop(st);
        store::put_session(shard, session);
    }
    if let Some(w) = will {
        let delay = w.delay_secs.min(expiry);
        if delay == 0 {
            publish_will(shard, w.message).await;
        } else {
            let (shard, session) = (shard.clone(), session.clone());
            glommio::spawn_local(async move {
                glommio::timer::sleep(Duration::from_secs(delay as u64)).await;
                if session.st.borrow().generation == generation {
                    publish_will(&shard, w.message).await;
                }
            })
            .detach();
        }
    }
    if expiry == 0 {
        broker::remove_session(shard, session).await;
        return;
    }
    let (shard, session) = (shard.clone(), session.clone());
    glommio::spawn_local(async move {
        glommio::timer::sleep(Duration::from_secs(expiry as u64)).await;
        let idle = {
            let st = session.st.borrow();
            st.generation == generation && st.link.is_none()
        };
        if idle {
            broker::remove_session(&shard, &session).await;
        }
    })
    .detach();
}
