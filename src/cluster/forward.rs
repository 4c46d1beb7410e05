//! MQTT messages between nodes. Every message a shard routes for a local publisher (MQTT
//! client, will, WebSocket) is offered to the cluster executor through the broker's bounded outbox
//! (`mqtt::peers::PeerOutbox`, never blocking a shard: full means dropped and counted). The cluster executor
//! copies each message into a bounded queue per outbound link (`Hub`, one `LinkQueue` per
//! `push::serve`), whose write loop is woken at once and sends the queue as `Publish` frames.
//! The receiving node checks every message of a frame (a bad one closes the link), then hands
//! each to its shards: to the shard that owns the topic's retained message (which stores or
//! clears it when the message is retained) and to every shard that has subscribers; each
//! delivers to its own matching sessions. A message received from a peer is never forwarded
//! again: with every node linked to every other, each node gets a message once.

use super::frame::{Frame, PeerMessage};
use super::Ctx;
use crate::mqtt::config::MqttConfig;
use crate::mqtt::mesh::MqttMsg;
use crate::mqtt::message::Message;
use crate::mqtt::peers::{props_size, size};
use crate::mqtt::topic;
use crate::mqtt::NodeMqtt;
use crate::runtime::shard::NodeShared;
use crate::storage::now_millis;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Messages waiting for one outbound link.
pub const LINK_MESSAGES: usize = 16_384;
/// Bytes waiting for one outbound link.
pub const LINK_BYTES: usize = 16 << 20;
/// Most messages in one `Publish` frame (also what a receiver accepts).
pub const FRAME_MESSAGES: usize = 4096;
/// Longest MQTT string (content type, user property), in bytes.
const MAX_STRING: usize = 65_535;
/// Longest message expiry carried (the v5 property is u32 seconds).
const MAX_EXPIRY_MS: u64 = u32::MAX as u64 * 1000;

/// Most shared subscriptions one forwarded message may name.
const MAX_SHARED: usize = 64;

/// A message waiting for a link, with the shared subscriptions the peer serves for it.
type Queued = (Arc<Message>, Vec<Arc<str>>);

/// The messages waiting for one outbound link (bounded in count and bytes).
pub struct LinkQueue {
    peer: u16,
    queue: RefCell<VecDeque<Queued>>,
    bytes: Cell<usize>,
    /// Wakes the link's write loop: queued messages go out at once.
    ringer: super::wake::Ringer,
}

impl LinkQueue {
    /// Appends a message; false (nothing queued) when the queue is at a bound.
    fn push(&self, msg: Arc<Message>, shared: Vec<Arc<str>>) -> bool {
        let n = size(&msg);
        let mut q = self.queue.borrow_mut();
        if q.len() >= LINK_MESSAGES || self.bytes.get() + n > LINK_BYTES {
            return false;
        }
        q.push_back((msg, shared));
        self.bytes.set(self.bytes.get() + n);
        self.ringer.ring();
        true
    }
}

/// The outbound links that take forwarded messages (the cluster executor's side).
#[derive(Default)]
pub struct Hub {
    links: RefCell<Vec<Rc<LinkQueue>>>,
}

impl Hub {
    /// A new queue for an outbound link to `peer`, filled from now on.
    pub fn attach(&self, peer: u16, ringer: super::wake::Ringer) -> Rc<LinkQueue> {
        let q = Rc::new(LinkQueue {
            peer,
            queue: RefCell::new(VecDeque::new()),
            bytes: Cell::new(0),
            ringer,
        });
        self.links.borrow_mut().push(q.clone());
        q
    }

    /// The link is gone: what it had queued is dropped (not counted: the link is down).
    pub fn detach(&self, q: &Rc<LinkQueue>) {
        self.links.borrow_mut().retain(|l| !Rc::ptr_eq(l, q));
    }
}

/// The cluster executor's task: takes what the shards offer and queues it on every link.
pub async fn run(ctx: Rc<Ctx>) {
    let Some(ch) = &ctx.mqtt.peers else {
        return;
    };
    let rx = ch.rx.clone();
    while let Ok(first) = rx.recv_async().await {
        if ctx.stop.load(Ordering::Relaxed) {
            return;
        }
        // Take what else is there now: one pass over the links for a burst.
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(FRAME_MESSAGES));
        let bytes: usize = batch.iter().map(|o| size(&o.msg)).sum();
        ch.bytes.fetch_sub(bytes, Ordering::Relaxed);
        let links = ctx.forward.links.borrow().clone();
        let interest = ctx.peer_interest.borrow();
        for link in links {
            let mut dropped = 0u64;
            for o in &batch {
                let shared: Vec<Arc<str>> = o
                    .shared
                    .iter()
                    .filter(|(peer, _)| *peer == link.peer)
                    .map(|(_, key)| key.clone())
                    .collect();
                // Only what the peer has subscribers for, or serves a shared subscription of;
                // retained messages always (every node keeps the retained store).
                let wanted =
                    o.msg.retain || !shared.is_empty() || interest.wants(link.peer, &o.msg.topic);
                if wanted && !link.push(o.msg.clone(), shared) {
                    dropped += 1;
                }
            }
            if dropped > 0 {
                ctx.state
                    .accepted(link.peer, |p| p.publishes.dropped += dropped);
            }
        }
    }
}

/// Moves what `link` has queued into `Publish` frames, at most about one frame's worth per
/// call (the write loop calls again at once while `out` is not empty). A message that would
/// not fit in half a frame alone is dropped and counted.
pub fn take(ctx: &Ctx, link: &LinkQueue, out: &mut Vec<Frame>) {
    let budget = ctx.max_frame / 2;
    let now = now_millis();
    let (mut sent, mut dropped, mut total) = (0u64, 0u64, 0usize);
    let mut messages = Vec::new();
    let mut bytes = 0usize;
    let mut q = link.queue.borrow_mut();
    while let Some((m, shared)) = q.front() {
        let n = size(m);
        if n > budget {
            dropped += 1;
        } else if bytes + n > budget || messages.len() >= FRAME_MESSAGES {
            out.push(Frame::Publish {
                messages: std::mem::take(&mut messages),
            });
            total += bytes;
            bytes = 0;
            if total >= ctx.max_frame {
                break;
            }
            continue;
        } else if let Some(pm) = to_peer(ctx.node_id, m, shared, now) {
            bytes += n;
            messages.push(pm);
            sent += 1;
        }
        // An expired message is simply not sent.
        link.bytes.set(link.bytes.get().saturating_sub(n));
        q.pop_front();
    }
    if !messages.is_empty() {
        out.push(Frame::Publish { messages });
    }
    if sent + dropped > 0 {
        ctx.state.accepted(link.peer, |p| {
            p.publishes.forwarded += sent;
            p.publishes.dropped += dropped;
        });
    }
}

/// The wire form of a message published on node `origin`, for a peer that serves the shared
/// subscriptions `shared` for it (`None`: it has expired).
pub fn to_peer(origin: u16, m: &Message, shared: &[Arc<str>], now: u64) -> Option<PeerMessage> {
    let expiry_ms = match m.expires_at_ms {
        Some(t) if t <= now => return None,
        Some(t) => Some((t - now).min(MAX_EXPIRY_MS)),
        None => None,
    };
    Some(PeerMessage {
        origin,
        topic: m.topic.clone(),
        payload: m.payload.to_vec(),
        qos: m.qos,
        retain: m.retain,
        expiry_ms,
        props: m.props.as_deref().cloned(),
        shared: shared.iter().map(|k| k.to_string()).collect(),
    })
}

/// Checks one received message: made by the peer itself, a valid topic name (no wildcards),
/// QoS at most 2, properties MQTT could carry, and within this node's packet size.
pub fn check(cfg: &MqttConfig, peer: u16, m: &PeerMessage) -> Result<(), String> {
    if m.origin != peer {
        return Err(format!(
            "Publish of a message made on node {} by node {peer}",
            m.origin
        ));
    }
    if !topic::valid_topic(&m.topic) {
        return Err("Publish with an invalid topic name".into());
    }
    if m.qos > 2 {
        return Err(format!("Publish at QoS {}", m.qos));
    }
    if m.expiry_ms.is_some_and(|e| e > MAX_EXPIRY_MS) {
        return Err("Publish with an expiry past the MQTT maximum".into());
    }
    if m.shared.len() > MAX_SHARED {
        return Err(format!(
            "Publish naming {} shared subscriptions",
            m.shared.len()
        ));
    }
    for key in &m.shared {
        let matches = topic::parse_shared(key).is_some_and(|(_, f)| topic::matches(&m.topic, f));
        if !matches {
            return Err("Publish naming a shared subscription its topic does not match".into());
        }
    }
    let mut bytes = m.topic.len() + m.payload.len();
    if let Some(p) = &m.props {
        if p.payload_format.is_some_and(|f| f > 1) {
            return Err("Publish with an unknown payload format".into());
        }
        if p.response_topic
            .as_ref()
            .is_some_and(|t| !topic::valid_topic(t))
        {
            return Err("Publish with an invalid response topic".into());
        }
        let strings = p
            .content_type
            .iter()
            .chain(p.user_properties.iter().flat_map(|(k, v)| [k, v]));
        for s in strings {
            if s.len() > MAX_STRING || s.contains('\0') {
                return Err("Publish with a property MQTT cannot carry".into());
            }
        }
        if p.correlation_data
            .as_ref()
            .is_some_and(|d| d.len() > MAX_STRING)
        {
            return Err("Publish with correlation data over 65535 bytes".into());
        }
        bytes += props_size(p);
    }
    if bytes > cfg.max_packet_bytes {
        return Err(format!(
            "Publish of {bytes} bytes (over `mqtt.max_packet_bytes`)"
        ));
    }
    Ok(())
}

/// The message a shard delivers, from its checked wire form received at `now`.
pub fn from_peer(m: PeerMessage, now: u64) -> Message {
    Message {
        topic: m.topic,
        payload: m.payload.into(),
        qos: m.qos,
        retain: m.retain,
        props: m.props.map(Box::new),
        expires_at_ms: m.expiry_ms.map(|e| now + e),
        // Matches no client id, so no subscriber here counts as its publisher (no-local).
        from: Arc::from(""),
        version: None,
    }
}

/// Serves a `Publish` frame from `peer`: checks every message first (an error is a bad frame
/// and nothing of it is delivered), then hands each to the shards that need it, in order,
/// waiting for room in their inboxes (back-pressure on this link, never on the shards).
/// Returns how many messages were handed over.
pub async fn receive(
    node: &NodeShared,
    mqtt: &NodeMqtt,
    peer: u16,
    messages: Vec<PeerMessage>,
) -> Result<u64, String> {
    if messages.len() > FRAME_MESSAGES {
        return Err(format!("bad frame: Publish of {} messages", messages.len()));
    }
    for m in &messages {
        check(&node.config.mqtt, peer, m).map_err(|e| format!("bad frame: {e}"))?;
    }
    // Copies for persistent sessions wait for the writers like a local publisher's would.
    crate::mqtt::store::wait_for_room(mqtt, node.config.mqtt.max_persist_backlog_bytes).await;
    let now = now_millis();
    let n = messages.len() as u64;
    let shards = mqtt.inboxes.len();
    for m in messages {
        // The shard that stores the topic's retained message, as `mqtt::retained::owner`.
        let p = crate::storage::keys::partition_of("$retained", &m.topic, node.partitions);
        let home = crate::storage::layout::owner_of(p, shards);
        let mut shared: Vec<Arc<str>> = m.shared.iter().map(|k| Arc::from(k.as_str())).collect();
        let msg = Arc::new(from_peer(m, now));
        for (s, inbox) in mqtt.inboxes.iter().enumerate() {
            let retain_here = msg.retain && s == home;
            // The shared subscriptions this node serves are handed out by the home shard.
            let shared = match s == home {
                true => std::mem::take(&mut shared),
                false => Vec::new(),
            };
            // A shard with no subscription at all has nothing to deliver.
            let idle = node.feed_interest[s].load(Ordering::Acquire) == 0;
            if !retain_here && shared.is_empty() && idle {
                continue;
            }
            let m = MqttMsg::FromPeer {
                msg: msg.clone(),
                retain_here,
                shared,
            };
            // Fails only when the shard has stopped (the node is shutting down).
            let _ = inbox.send_async(m).await;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::frame::{decode, encode, FrameError, HEADER};
    use crate::mqtt::message::Props;

    fn msg(topic: &str) -> PeerMessage {
        PeerMessage {
            origin: 2,
            topic: topic.into(),
            payload: b"21.5".to_vec(),
            qos: 1,
            retain: false,
            expiry_ms: Some(30_000),
            props: Some(Props {
                content_type: Some("text/plain".into()),
                user_properties: vec![("k".into(), "v".into())],
                ..Props::default()
            }),
            shared: Vec::new(),
        }
    }

    #[test]
    fn a_good_message_passes_and_round_trips() {
        let cfg = MqttConfig::default();
        let mut m = msg("sensors/t1");
        m.shared = vec!["$share/g/sensors/+".into()];
        assert_eq!(check(&cfg, 2, &m), Ok(()));
        let f = Frame::Publish {
            messages: vec![m.clone()],
        };
        let bytes = encode(&f).unwrap();
        let crc = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(decode(&bytes[HEADER..], crc).unwrap(), f);
        let m2 = m.clone();
        let back = from_peer(m, 1_000);
        assert_eq!(back.expires_at_ms, Some(31_000));
        assert_eq!(&*back.from, "");
        let shared = [Arc::from("$share/g/sensors/+")];
        let again = to_peer(2, &back, &shared, 1_000).unwrap();
        assert_eq!(again, m2);
        assert!(
            to_peer(2, &back, &shared, 31_000).is_none(),
            "expired: not sent"
        );
    }

    #[test]
    fn bad_messages_are_refused() {
        let cfg = MqttConfig::default();
        for topic in ["sensors/+", "sensors/#", "#", "", "a\0b"] {
            let e = check(&cfg, 2, &msg(topic)).unwrap_err();
            assert!(e.contains("invalid topic"), "{topic:?}: {e}");
        }
        let long = "a/".repeat(40) + "a";
        assert!(check(&cfg, 2, &msg(&long)).is_err(), "too many levels");
        assert!(check(&cfg, 3, &msg("a")).is_err(), "not made by the peer");
        let mut m = msg("a");
        m.qos = 3;
        assert!(check(&cfg, 2, &m).is_err());
        let mut m = msg("a");
        m.payload = vec![0; cfg.max_packet_bytes + 1];
        assert!(check(&cfg, 2, &m).is_err());
        let mut m = msg("a");
        m.props.as_mut().unwrap().response_topic = Some("reply/#".into());
        assert!(check(&cfg, 2, &m).is_err());
        let mut m = msg("a");
        m.props.as_mut().unwrap().payload_format = Some(7);
        assert!(check(&cfg, 2, &m).is_err());
        let mut m = msg("a");
        m.expiry_ms = Some(u64::MAX);
        assert!(check(&cfg, 2, &m).is_err());
        let mut m = msg("a/b");
        m.shared = vec!["$share/g/c/#".into()];
        let e = check(&cfg, 2, &m).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        m.shared = vec!["$share/g/a/+".into(); 65];
        assert!(check(&cfg, 2, &m).is_err(), "too many shared subscriptions");
    }

    #[test]
    fn a_damaged_publish_frame_never_panics() {
        let bytes = encode(&Frame::Publish {
            messages: vec![msg("sensors/t1"); 3],
        })
        .unwrap();
        let payload = &bytes[HEADER..];
        for i in 0..payload.len() {
            let mut bad = payload.to_vec();
            bad[i] ^= 0x5a;
            match decode(&bad, crate::cluster::frame::crc32(&bad)) {
                Ok(_) | Err(FrameError::Invalid(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}
