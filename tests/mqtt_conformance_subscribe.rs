//! MQTT 3.1.1 and 5.0 §3.8 (SUBSCRIBE): the normative statements that bind a server — the
//! packet's form (fixed header, payload, Subscription Options), the SUBACK and what a
//! subscription delivers — each proven against the real binary with a raw byte-level client
//! and rumqttc, for both protocol versions. docs/mqtt.md, "Normative statements", maps every
//! statement to its test; those proven by other test files (No Local, shared subscriptions)
//! are cited there.

mod common;
use common::conformance::*;
use common::mqtt::{pkt, WAIT};
use common::*;
use std::time::Duration;

/// The code a SUBACK gives a refused filter: 0x80 (3.1.1), or `v5` (5.0).
fn refused(level: u8, v5: u8) -> u8 {
    match level {
        4 => 0x80,
        _ => v5,
    }
}

/// Sends `packet` on a fresh connection of each level; each must be closed as malformed
/// (5.0: DISCONNECT 0x81).
fn each_level_closes_as_malformed(s: &Server, name: &str, packet: impl Fn(u8) -> Vec<u8>) {
    for level in LEVELS {
        let mut r = connected(s, level, &format!("{name}-{level}"));
        r.send(&packet(level));
        let want = (level == 5).then_some(0x81);
        assert_eq!(closed_with(&mut r, level), want, "{name}, level {level}");
    }
}

/// [MQTT-3.8.1-1] (both versions): a SUBSCRIBE whose fixed header flags are not 0010 is
/// malformed and closes the connection.
#[test]
fn mqtt_3_8_1_1_wrong_fixed_header_flags_close_the_connection() {
    let s = server();
    each_level_closes_as_malformed(&s, "sub-flags", |level| {
        let mut p = pkt::subscribe(level, 1, "flags/t", 0);
        p[0] = 0x80;
        p
    });
}

/// [MQTT-3.8.3-1] (both versions): a topic filter that is not UTF-8 is malformed and closes
/// the connection.
#[test]
fn mqtt_3_8_3_1_a_topic_filter_that_is_not_utf8_closes_the_connection() {
    let s = server();
    each_level_closes_as_malformed(&s, "sub-utf8", |level| {
        let mut p = pkt::subscribe(level, 1, "fx", 0);
        let at = p.len() - 3;
        p[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
        p
    });
}

/// A SUBSCRIBE without a topic filter is a protocol error (3.1.1 [MQTT-3.8.3-3]: the
/// connection is closed; 5.0 [MQTT-3.8.3-2]: DISCONNECT 0x82).
#[test]
fn a_subscribe_without_filters_is_a_protocol_error() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("sub-empty-{level}"));
        r.send(&pkt::subscribe_many(level, 1, &[]));
        let want = (level == 5).then_some(0x82);
        assert_eq!(closed_with(&mut r, level), want, "level {level}");
    }
}

/// Reserved bits of the Subscription Options must be 0, or the SUBSCRIBE is malformed and the
/// connection closed (3.1.1 [MQTT-3-8.3-4]: bits 2 to 7, and a QoS of 3; 5.0
/// [MQTT-3.8.3-5]: bits 6 and 7).
#[test]
fn reserved_subscription_option_bits_close_the_connection() {
    let s = server();
    let cases: [(u8, u8); 6] = [
        (4, 0x04),
        (4, 0x40),
        (4, 0x80),
        (4, 0x03),
        (5, 0x40),
        (5, 0x81),
    ];
    for (level, options) in cases {
        let mut r = connected(&s, level, &format!("sub-reserved-{level}-{options}"));
        r.send(&pkt::subscribe_many(
            level,
            1,
            &[("ok/t", 1), ("reserved/t", options)],
        ));
        let want = (level == 5).then_some(0x81);
        assert_eq!(
            closed_with(&mut r, level),
            want,
            "level {level}, options {options:#04x}"
        );
    }
}

/// 5.0 §3.8.3.1: a Maximum QoS of 3 or a Retain Handling of 3 is a protocol error
/// (DISCONNECT 0x82).
#[test]
fn a_qos_or_retain_handling_of_3_is_a_protocol_error() {
    let s = server();
    for options in [0x03, 0x30] {
        let mut r = connected(&s, 5, &format!("sub-three-{options}"));
        r.send(&pkt::subscribe5(1, "three/t", options, &[]));
        assert_eq!(closed_with(&mut r, 5), Some(0x82), "options {options:#04x}");
    }
}

/// A SUBSCRIBE of several filters is handled as one SUBSCRIBE per filter, in order, answered
/// by one SUBACK with its packet identifier and one code per filter, in their order: the QoS
/// granted, or a failure (3.1.1 [MQTT-3.8.4-1], [MQTT-3.8.4-2], [MQTT-3.8.4-4],
/// [MQTT-3.8.4-5]; 5.0 [MQTT-3.8.4-1], [MQTT-3.8.4-2], [MQTT-3.8.4-5] to [MQTT-3.8.4-7]). The
/// same filter twice: the second replaces the first.
#[test]
fn a_subscribe_of_several_filters_gets_one_suback_with_a_code_per_filter() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("multi-{level}"));
        let a = format!("multi{level}/a");
        let b = format!("multi{level}/b");
        let bad = format!("multi{level}/#/bad");
        let filters = [
            (a.as_str(), 0),
            (bad.as_str(), 1),
            (b.as_str(), 2),
            (a.as_str(), 1),
        ];
        r.send(&pkt::subscribe_many(level, 0x1234, &filters));
        let suback = r.packet(WAIT).expect("a SUBACK");
        assert_eq!((suback[0], pkt::packet_id(&suback)), (0x90, 0x1234));
        let codes = pkt::ack_codes(&suback, level);
        assert_eq!(codes, vec![0, refused(level, 0x8F), 2, 1], "level {level}");
        r.send(&pkt::pingreq());
        assert_eq!(r.packet(WAIT), Some(vec![0xD0, 0]), "one SUBACK only");
        let mut p = client(&s, level, &format!("multi-pub-{level}"));
        p.publish(&a, 2, false, b"a");
        p.publish(&b, 2, false, b"b");
        for (topic, qos) in [(&a, 1), (&b, 2)] {
            let got = r.packet_of(3, WAIT).expect("a message");
            let (t, _, q, _, pkid) = pkt::parse_publish(&got, level);
            assert_eq!(
                (&t, q),
                (topic, qos),
                "level {level}: granted QoS, one copy"
            );
            let ack = if q == 1 { pkt::PUBACK } else { pkt::PUBREC };
            r.send(&pkt::ack(ack, pkid));
        }
    }
}

/// Subscribing again to the same filter replaces the subscription (its QoS now), sends the
/// retained messages again, and loses no message (3.1.1 [MQTT-3.8.4-3]; 5.0 [MQTT-3.8.4-3],
/// [MQTT-3.8.4-4] with Retain Handling 0).
#[test]
fn subscribing_again_replaces_the_subscription_and_sends_retained_again() {
    let s = server();
    for level in LEVELS {
        let topic = format!("again/{level}");
        let mut p = client(&s, level, &format!("again-pub-{level}"));
        p.publish(&topic, 2, true, b"kept");
        let mut c = client(&s, level, &format!("again-sub-{level}"));
        assert_eq!(c.sub(&topic, 0), vec![0]);
        let m = c.expect();
        assert_eq!((m.text().as_str(), m.qos, m.retain), ("kept", 0, true));
        p.publish(&topic, 2, false, b"before");
        assert_eq!(c.sub(&topic, 2), vec![2]);
        p.publish(&topic, 2, false, b"after");
        let mut got: Vec<(String, u8, bool)> = (0..3)
            .map(|_| c.expect())
            .map(|m| (m.text(), m.qos, m.retain))
            .collect();
        got.sort();
        let want = vec![
            ("after".to_string(), 2, false),
            ("before".to_string(), 0, false),
            ("kept".to_string(), 2, true),
        ];
        assert_eq!(got, want, "level {level}");
        assert!(
            c.recv(Duration::from_millis(300)).is_none(),
            "one subscription"
        );
    }
}

/// A subscription delivers at the lower of the message's QoS and the QoS it was granted
/// (3.1.1 [MQTT-3.8.4-6]; 5.0 [MQTT-3.8.4-8]).
#[test]
fn delivery_is_at_the_lower_of_published_and_granted_qos() {
    let s = server();
    for level in LEVELS {
        let mut c = client(&s, level, &format!("min-{level}"));
        let mut p = client(&s, level, &format!("min-pub-{level}"));
        for granted in 0..=2u8 {
            let topic = format!("min{level}/{granted}");
            assert_eq!(c.sub(&topic, granted), vec![granted]);
            for published in 0..=2u8 {
                p.publish(&topic, published, false, b"x");
                let m = c.expect();
                let want = published.min(granted);
                assert_eq!(m.qos, want, "level {level}: {published} to {granted}");
            }
        }
    }
}
