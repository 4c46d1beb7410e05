//! Property tests of the MQTT wire format across both directions: every packet the server
//! encodes that a client may send too (PUBLISH and the four acknowledgements), read back with
//! the decoder the server reads clients with (`mqtt::codec::decode`), is what was encoded, on
//! 3.1.1 and 5.0.

use crate::mqtt::codec::{self, Ack, Decoded, Delivery, Version};
use crate::mqtt::message::{Message, Props};
use crate::mqtt::packet::Packet;
use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use std::sync::Arc;

const NOW_MS: u64 = 1_700_000_000_000;

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V4), Just(Version::V5)]
}

fn props() -> impl Strategy<Value = Props> {
    (
        proptest::option::of(0u8..2),
        proptest::option::of(".{0,8}"),
        proptest::option::of("[a-z/]{1,8}"),
        proptest::option::of(vec(any::<u8>(), 0..8)),
        vec((".{0,6}", ".{0,6}"), 0..3),
    )
        .prop_map(
            |(payload_format, content_type, response_topic, correlation_data, user_properties)| {
                Props {
                    payload_format,
                    content_type,
                    response_topic,
                    correlation_data,
                    user_properties,
                }
            },
        )
        .prop_filter("5.0 sends no empty property set", |p| {
            *p != Props::default()
        })
}

fn message() -> impl Strategy<Value = Message> {
    (
        "[a-zA-Z0-9/ é_-]{1,24}",
        vec(any::<u8>(), 0..64),
        proptest::option::of(props()),
        proptest::option::of(1u64..10_000_000),
    )
        .prop_map(|(topic, payload, props, expires_in_ms)| Message {
            topic,
            payload: Bytes::from(payload),
            qos: 2,
            retain: false,
            props: props.map(Box::new),
            expires_at_ms: expires_in_ms.map(|ms| NOW_MS + ms),
            from: Arc::from("publisher"),
            version: None,
        })
}

fn delivery_parts() -> impl Strategy<Value = (u8, bool, bool, u16, Option<(u16, bool)>)> {
    (
        0u8..3,
        any::<bool>(),
        any::<bool>(),
        1u16..,
        proptest::option::of((1u16.., any::<bool>())),
    )
}

fn decode_one(out: &mut BytesMut, v: Version) -> Packet {
    match codec::decode(out, Some(v), usize::MAX) {
        Ok(Decoded::Packet(p)) => p,
        Ok(Decoded::Incomplete) => panic!("the server's packet is incomplete"),
        Ok(Decoded::UnsupportedVersion) => panic!("unsupported version"),
        Err(fault) => panic!("the server's packet is refused: {fault:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_publish_the_server_sends_decodes_to_the_same_message(
        v in version(),
        m in message(),
        (qos, retain, dup, pkid, alias) in delivery_parts(),
    ) {
        let alias = alias.filter(|_| v == Version::V5);
        // Only a resend carries DUP, and QoS 0 is never resent (MQTT-3.3.1-2).
        let dup = dup && qos > 0;
        let d = Delivery { qos, retain, dup, pkid, sub_ids: &[], alias };
        let mut out = BytesMut::new();
        prop_assert!(codec::publish(&mut out, v, &m, &d, NOW_MS, usize::MAX));
        let Packet::Publish(p) = decode_one(&mut out, v) else {
            panic!("not a PUBLISH");
        };
        prop_assert!(out.is_empty());
        let topic = if matches!(alias, Some((_, true))) { "" } else { m.topic.as_str() };
        prop_assert_eq!(p.topic.as_str(), topic);
        prop_assert_eq!((p.qos, p.retain, p.dup), (qos, retain, dup));
        prop_assert_eq!(p.pkid, if qos == 0 { 0 } else { pkid });
        prop_assert_eq!(&p.payload, &m.payload);
        if v == Version::V5 {
            prop_assert_eq!(&p.props, &m.props);
            prop_assert_eq!(p.expiry_secs, m.remaining_expiry_secs(NOW_MS));
            prop_assert_eq!(p.topic_alias, alias.map(|(a, _)| a));
        }
    }

    #[test]
    fn a_publish_is_written_whole_within_the_limit_or_not_at_all(v in version(), m in message(), max in 0usize..64) {
        let d = Delivery { qos: 1, retain: false, dup: false, pkid: 1, sub_ids: &[], alias: None };
        let mut out = BytesMut::from(&b"before"[..]);
        let fits = codec::publish(&mut out, v, &m, &d, NOW_MS, max);
        prop_assert_eq!(fits, out.len() > 6);
        prop_assert!(out.len() - 6 <= max);
    }

    #[test]
    fn an_acknowledgement_the_server_sends_decodes_to_the_same_packet_id(
        v in version(),
        kind in prop::sample::select(vec![Ack::PubAck, Ack::PubRec, Ack::PubRel, Ack::PubComp]),
        pkid in 1u16..,
        reason in prop::sample::select(vec![0u8, 0x10, 0x83, 0x87, 0x90, 0x92, 0x97, 0x99]),
    ) {
        let mut out = BytesMut::new();
        codec::ack(&mut out, v, kind, pkid, reason);
        let got = decode_one(&mut out, v);
        prop_assert!(out.is_empty());
        let want = match kind {
            Ack::PubAck => Packet::PubAck(pkid),
            Ack::PubRec => Packet::PubRec(pkid),
            Ack::PubRel => Packet::PubRel(pkid),
            Ack::PubComp => Packet::PubComp(pkid),
        };
        prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }
}
