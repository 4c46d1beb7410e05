//! Fuzz target of the MQTT decoder (`microlith::mqtt::codec::decode`): the bytes a client
//! sends, decoded packet after packet as `mqtt::conn` does. The first input byte picks the
//! state: a fresh connection (the CONNECT decides 3.1.1 or 5.0), or one already on 3.1.1 or
//! 5.0; the rest is the stream.
//!
//! Properties: no panic; each decoded packet consumes bytes (a decoder that returned a packet
//! without consuming would spin the connection); nothing consumed on `Incomplete`; and a
//! PUBLISH decodes back to the same message once the server encodes it for a subscriber.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use microlith::mqtt::codec::{self, Decoded, Delivery, Version};
use microlith::mqtt::message::Message;
use microlith::mqtt::packet::{Packet, PublishIn};
use std::sync::Arc;

const MAX: usize = 64 * 1024;

/// Encodes `p` as the server sends a PUBLISH and checks it decodes to the same message.
fn publish_round_trips(p: &PublishIn, v: Version) {
    if p.topic_alias.is_some() || p.qos > 2 {
        return;
    }
    let message = Message {
        topic: p.topic.clone(),
        payload: p.payload.clone(),
        qos: p.qos,
        retain: p.retain,
        props: p.props.clone(),
        expires_at_ms: None,
        from: Arc::from(""),
        version: None,
    };
    let delivery = Delivery {
        qos: p.qos,
        retain: p.retain,
        dup: p.dup,
        pkid: p.pkid,
        sub_ids: &[],
        alias: None,
    };
    let mut out = BytesMut::new();
    if !codec::publish(&mut out, v, &message, &delivery, 0, usize::MAX) {
        return;
    }
    let Ok(Decoded::Packet(Packet::Publish(back))) = codec::decode(&mut out, Some(v), usize::MAX)
    else {
        panic!("the server's PUBLISH of {p:?} does not decode");
    };
    assert!(out.is_empty(), "bytes left after the server's PUBLISH");
    assert_eq!(
        (&back.topic, back.qos, back.retain, back.dup, back.pkid),
        (&p.topic, p.qos, p.retain, p.dup, p.pkid)
    );
    assert_eq!((&back.payload, &back.props), (&p.payload, &p.props));
}

fuzz_target!(|data: &[u8]| {
    let Some((&state, stream)) = data.split_first() else {
        return;
    };
    let mut version = match state % 3 {
        0 => None,
        1 => Some(Version::V4),
        _ => Some(Version::V5),
    };
    let mut buf = BytesMut::from(stream);
    loop {
        let before = buf.len();
        match codec::decode(&mut buf, version, MAX) {
            Ok(Decoded::Packet(p)) => {
                assert!(buf.len() < before, "a packet was decoded from no bytes");
                match (&p, version) {
                    (Packet::Connect(c), None) => {
                        version = Some(if c.v5 { Version::V5 } else { Version::V4 })
                    }
                    (Packet::Publish(publish), Some(v)) => publish_round_trips(publish, v),
                    _ => {}
                }
            }
            Ok(Decoded::Incomplete) => {
                assert_eq!(buf.len(), before, "bytes consumed by an incomplete packet");
                return;
            }
            Ok(Decoded::UnsupportedVersion) | Err(_) => return,
        }
    }
});
