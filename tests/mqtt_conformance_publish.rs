//! MQTT 3.1.1 and 5.0 §3.3 (PUBLISH): the normative statements that bind a server — the DUP,
//! QoS and RETAIN flags, the topic name, the 5.0 properties and topic aliases, the answers to
//! a PUBLISH and the flow control — each proven against the real binary with a raw byte-level
//! client and rumqttc, for both protocol versions where the statement exists in both.
//! docs/mqtt.md, "Normative statements", maps every statement to its test; those proven by
//! other test files are cited there.

mod common;
use common::conformance::*;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::time::Duration;

/// Subscribes a raw connection to `filter` with the raw options byte (3.1.1: the QoS).
fn subscribe(r: &mut Raw, level: u8, filter: &str, options: u8) {
    r.send(&pkt::subscribe_many(level, 1, &[(filter, options)]));
    let ack = r.packet_of(9, WAIT).expect("a SUBACK");
    assert!(pkt::ack_codes(&ack, level)[0] < 0x80, "{filter}: {ack:?}");
}

/// The (topic, payload, qos, retain, dup) of a PUBLISH frame.
fn publish_of(p: &[u8], level: u8) -> (String, String, u8, bool, bool) {
    let (topic, payload, qos, dup, _) = pkt::parse_publish(p, level);
    let text = String::from_utf8_lossy(&payload).to_string();
    (topic, text, qos, p[0] & 1 == 1, dup)
}

/// [MQTT-3.3.1-4] (both versions): a PUBLISH with both QoS bits set is malformed: 3.1.1 closes
/// the connection, 5.0 sends DISCONNECT 0x81 first.
#[test]
fn mqtt_3_3_1_4_a_publish_with_qos_3_closes_the_connection() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("qos3-{level}"));
        let mut p = pkt::publish(level, "qos3/t", 2, 1, b"x", false, false);
        p[0] |= 0b0110;
        r.send(&p);
        let want = (level == 5).then_some(0x81);
        assert_eq!(closed_with(&mut r, level), want, "level {level}");
    }
}

/// [MQTT-3.3.1-2] (both versions): a QoS 0 PUBLISH with DUP set is malformed: 3.1.1 closes
/// the connection, 5.0 sends DISCONNECT 0x81 first; nothing of it is delivered.
#[test]
fn a_qos_0_publish_with_dup_set_is_malformed() {
    let s = server();
    for level in LEVELS {
        let mut sub = client(&s, level, &format!("dup0-sub-{level}"));
        sub.sub(&format!("dup0/{level}"), 0);
        let mut r = connected(&s, level, &format!("dup0-{level}"));
        r.send(&pkt::publish(
            level,
            &format!("dup0/{level}"),
            0,
            0,
            b"x",
            false,
            true,
        ));
        let want = (level == 5).then_some(0x81);
        assert_eq!(closed_with(&mut r, level), want, "level {level}");
        assert!(sub.recv(std::time::Duration::from_millis(300)).is_none());
    }
}

/// §2.2.2.2 (5.0): a property other than a User Property given twice is a protocol error
/// (DISCONNECT 0x82), in a PUBLISH or any other packet; User Properties may repeat.
#[test]
fn a_property_given_twice_is_a_protocol_error() {
    let s = server();
    let twice = [0x01, 1, 0x01, 1];
    let mut r = connected(&s, 5, "prop-twice");
    r.send(&pkt::publish5("twice/t", 1, 1, b"{}", &twice));
    assert_eq!(closed_with(&mut r, 5), Some(0x82));
    // In a SUBSCRIBE: the Subscription Identifier twice.
    let mut r = connected(&s, 5, "prop-twice-sub");
    r.send(&pkt::subscribe5(1, "twice/#", 1, &[0x0B, 1, 0x0B, 2]));
    assert_eq!(closed_with(&mut r, 5), Some(0x82));
    // User Properties repeat freely.
    let mut user = Vec::new();
    for (k, v) in [("k", "a"), ("k", "b")] {
        user.push(0x26);
        pkt::s(k, &mut user);
        pkt::s(v, &mut user);
    }
    let mut r = connected(&s, 5, "prop-user");
    r.send(&pkt::publish5("twice/u", 1, 1, b"{}", &user));
    let ack = r.packet_of(4, WAIT).expect("a PUBACK");
    assert_eq!(ack[3], 1);
}

/// The DUP flag of a PUBLISH to a subscriber says only whether that PUBLISH is a resend
/// ([MQTT-3.3.1-1], [MQTT-3.3.1-2], [MQTT-3.3.1-3], both versions): the publisher's DUP is not
/// passed on, a QoS 0 message never has it, and after a reconnect the unacknowledged QoS 1
/// and QoS 2 messages are resent with it and their packet identifiers.
#[test]
fn the_dup_flag_marks_resends_only() {
    let s = server();
    for level in LEVELS {
        let id = format!("dup-sub-{level}");
        let persistent = || match level {
            4 => pkt::connect(4, &id, false, 30, None),
            _ => pkt::connect5_expiry(&id, false, 60),
        };
        let mut sub = accepted(&s, &persistent());
        let topic = format!("dup/{level}");
        subscribe(&mut sub, level, &topic, 2);
        let mut p = connected(&s, level, &format!("dup-pub-{level}"));
        p.send(&pkt::publish(level, &topic, 1, 1, b"one", false, true));
        p.send(&pkt::publish(level, &topic, 0, 0, b"zero", false, false));
        p.send(&pkt::publish(level, &topic, 2, 2, b"two", false, true));
        let mut first = Vec::new();
        for want in ["one", "zero", "two"] {
            let got = sub.packet_of(3, WAIT).expect("a message");
            let (_, text, qos, _, dup) = publish_of(&got, level);
            assert_eq!(
                (text.as_str(), dup),
                (want, false),
                "level {level}: first send"
            );
            if qos > 0 {
                first.push((text, pkt::parse_publish(&got, level).4));
            }
        }
        drop(sub);
        let mut sub = accepted(&s, &persistent());
        for (text, pkid) in first {
            let got = sub.packet_of(3, WAIT).expect("a resend");
            let (_, again, _, _, dup) = publish_of(&got, level);
            let again_pkid = pkt::parse_publish(&got, level).4;
            assert_eq!(
                (again, dup, again_pkid),
                (text, true, pkid),
                "level {level}: resend"
            );
        }
    }
}

/// A retained message is stored with its QoS and sent, with RETAIN 1, to each new
/// subscription that matches it, at the lower of its QoS and the subscription's (3.1.1
/// [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-8]; 5.0 [MQTT-3.3.1-5], and [MQTT-3.3.1-9]:
/// Retain Handling 0 sends them).
#[test]
fn a_retained_message_is_stored_with_its_qos_and_sent_to_new_subscriptions() {
    let s = server();
    for level in LEVELS {
        let mut p = client(&s, level, &format!("rq-pub-{level}"));
        for qos in 0..=2u8 {
            p.publish(&format!("rq{level}/{qos}"), qos, true, b"kept");
        }
        let mut c = client(&s, level, &format!("rq-sub-{level}"));
        c.sub(&format!("rq{level}/+"), 2);
        let mut got: Vec<(String, u8, bool)> = (0..3)
            .map(|_| c.expect())
            .map(|m| (m.topic, m.qos, m.retain))
            .collect();
        got.sort();
        let want: Vec<(String, u8, bool)> = (0..=2u8)
            .map(|q| (format!("rq{level}/{q}"), q, true))
            .collect();
        assert_eq!(got, want, "level {level}");
        let mut low = client(&s, level, &format!("rq-low-{level}"));
        low.sub(&format!("rq{level}/2"), 1);
        assert_eq!(
            low.expect().qos,
            1,
            "level {level}: the subscription's QoS caps it"
        );
    }
}

/// A retained message replaces the one before it on its topic, also at QoS 0 (3.1.1
/// [MQTT-3.3.1-7]; 5.0 [MQTT-3.3.1-5]).
#[test]
fn a_new_retained_message_replaces_the_old_one_even_at_qos_0() {
    let s = server();
    for level in LEVELS {
        let topic = format!("replace/{level}");
        let mut p = client(&s, level, &format!("replace-pub-{level}"));
        p.publish(&topic, 1, true, b"old");
        p.publish(&topic, 0, true, b"new");
        let mut c = client(&s, level, &format!("replace-sub-{level}"));
        c.sub(&topic, 1);
        let m = c.expect();
        assert_eq!((m.text().as_str(), m.qos), ("new", 0), "level {level}");
        assert!(c.recv(Duration::from_millis(300)).is_none(), "only one");
    }
}

/// A retained PUBLISH with an empty payload is delivered like any other and deletes the
/// retained message of its topic, which is not replaced by an empty one (3.1.1
/// [MQTT-3.3.1-10], [MQTT-3.3.1-11]; 5.0 [MQTT-3.3.1-6], [MQTT-3.3.1-7]).
#[test]
fn an_empty_retained_message_is_delivered_and_deletes_the_retained_one() {
    let s = server();
    for level in LEVELS {
        let topic = format!("empty/{level}");
        let mut p = client(&s, level, &format!("empty-pub-{level}"));
        p.publish(&topic, 1, true, b"kept");
        let mut c = client(&s, level, &format!("empty-sub-{level}"));
        c.sub(&topic, 1);
        assert_eq!(c.expect().text(), "kept");
        p.publish(&topic, 1, true, b"");
        assert_eq!(c.expect().payload, b"", "level {level}: delivered");
        let mut late = client(&s, level, &format!("empty-late-{level}"));
        late.sub(&topic, 1);
        p.publish(&topic, 1, false, b"marker");
        assert_eq!(
            late.expect().text(),
            "marker",
            "level {level}: nothing retained"
        );
    }
}

/// A PUBLISH with RETAIN 0 is neither stored as the retained message nor removes or replaces
/// the one there is (3.1.1 [MQTT-3.3.1-12]; 5.0 [MQTT-3.3.1-8]).
#[test]
fn a_message_without_retain_leaves_the_retained_one_alone() {
    let s = server();
    for level in LEVELS {
        let topic = format!("alone/{level}");
        let mut p = client(&s, level, &format!("alone-pub-{level}"));
        p.publish(&topic, 1, true, b"kept");
        p.publish(&topic, 1, false, b"live");
        p.publish(&topic, 1, false, b"");
        let mut c = client(&s, level, &format!("alone-sub-{level}"));
        c.sub(&topic, 1);
        assert_eq!(c.expect().text(), "kept", "level {level}");
        assert!(c.recv(Duration::from_millis(300)).is_none(), "only one");
    }
}

/// A message sent to an established subscription has RETAIN 0 whatever the publisher set
/// (3.1.1 [MQTT-3.3.1-9]; 5.0 [MQTT-3.3.1-12], Retain As Published 0); with Retain As
/// Published 1 it keeps the publisher's flag (5.0 [MQTT-3.3.1-13]).
#[test]
fn the_retain_flag_to_established_subscriptions_follows_retain_as_published() {
    let s = server();
    for (level, options, kept) in [(4, 1, false), (5, 1, false), (5, 1 | 0x08, true)] {
        let topic = format!("rap/{level}/{options}");
        let mut sub = connected(&s, level, &format!("rap-sub-{level}-{options}"));
        subscribe(&mut sub, level, &topic, options);
        let mut p = client(&s, level, &format!("rap-pub-{level}-{options}"));
        p.publish(&topic, 1, true, b"retained");
        p.publish(&topic, 1, false, b"plain");
        for (want, retain) in [("retained", kept), ("plain", false)] {
            let got = sub.packet_of(3, WAIT).expect("a message");
            let (_, text, _, flag, _) = publish_of(&got, level);
            assert_eq!((text.as_str(), flag), (want, retain), "{topic}");
            sub.send(&pkt::ack(pkt::PUBACK, pkt::parse_publish(&got, level).4));
        }
    }
}

/// [MQTT-3.3.2-1] (both versions): a topic name that is not UTF-8 is malformed: 3.1.1 closes
/// the connection, 5.0 sends DISCONNECT 0x81 first.
#[test]
fn mqtt_3_3_2_1_a_topic_name_that_is_not_utf8_closes_the_connection() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("utf8-topic-{level}"));
        let mut p = pkt::publish(level, "tx", 0, 0, b"x", false, false);
        p[4..6].copy_from_slice(&[0xff, 0xfe]);
        r.send(&p);
        let want = (level == 5).then_some(0x81);
        assert_eq!(closed_with(&mut r, level), want, "level {level}");
    }
}

/// 5.0 [MQTT-3.3.2-4]: the Payload Format Indicator reaches subscribers unaltered.
#[test]
fn the_payload_format_indicator_is_passed_on_unaltered() {
    let s = server();
    let mut sub = connected(&s, 5, "pfi-sub");
    subscribe(&mut sub, 5, "pfi/t", 0);
    let mut p = connected(&s, 5, "pfi-pub");
    for indicator in [1u8, 0] {
        p.send(&pkt::publish5("pfi/t", 0, 0, b"text", &[0x01, indicator]));
        let got = sub.packet_of(3, WAIT).expect("a message");
        assert_eq!(pkt::publish_props(&got), vec![(0x01, indicator as u32)]);
    }
}

/// 5.0: a Response Topic or Content Type that is not UTF-8 is malformed (DISCONNECT 0x81)
/// ([MQTT-3.3.2-13], [MQTT-3.3.2-19]).
#[test]
fn a_response_topic_or_content_type_that_is_not_utf8_is_malformed() {
    let s = server();
    for (name, property) in [("response topic", 0x08u8), ("content type", 0x03)] {
        let mut r = connected(&s, 5, &format!("utf8-prop-{property}"));
        let props = [property, 0, 2, 0xff, 0xfe];
        r.send(&pkt::publish5("utf8/props", 0, 0, b"x", &props));
        assert_eq!(closed_with(&mut r, 5), Some(0x81), "{name}");
    }
}

/// 5.0 [MQTT-3.3.2-7]: topic aliases last one connection, both ways. An alias the client set
/// on an earlier connection is unknown on the next one (DISCONNECT 0x82), and a topic the
/// server aliased on an earlier connection is sent in full again on the next one.
#[test]
fn topic_aliases_last_one_connection() {
    let s = server();
    let mut r = accepted(&s, &pkt::connect5_expiry("alias-in", false, 60));
    r.send(&pkt::publish5(
        "alias/in",
        1,
        1,
        b"set",
        &pkt::prop16(0x23, 5),
    ));
    r.packet_of(4, WAIT).expect("a PUBACK");
    r.send(&pkt::disconnect());
    r.until_closed(WAIT);
    let mut r = accepted(&s, &pkt::connect5_expiry("alias-in", false, 60));
    r.send(&pkt::publish5("", 1, 2, b"reuse", &pkt::prop16(0x23, 5)));
    assert_eq!(
        closed_with(&mut r, 5),
        Some(0x82),
        "an alias of another connection"
    );

    let props = [pkt::prop32(0x11, 60), pkt::prop16(0x22, 4)].concat();
    let aliasing = || pkt::connect5("alias-out", false, 30, &props, None);
    let mut sub = accepted(&s, &aliasing());
    subscribe(&mut sub, 5, "alias/out", 1);
    let mut p = Client::v5(&s.mqtt_addr, "alias-out-pub", true);
    for want_topic in ["alias/out", ""] {
        p.publish("alias/out", 1, false, b"x");
        let got = sub.packet_of(3, WAIT).expect("a message");
        assert_eq!(
            pkt::parse_publish(&got, 5).0,
            want_topic,
            "first connection"
        );
        assert!(pkt::publish_props(&got).contains(&(0x23, 1)), "aliased");
        sub.send(&pkt::ack(pkt::PUBACK, pkt::parse_publish(&got, 5).4));
    }
    sub.send(&pkt::disconnect());
    sub.until_closed(WAIT);
    let mut sub = accepted(&s, &aliasing());
    p.publish("alias/out", 1, false, b"x");
    let got = sub.packet_of(3, WAIT).expect("a message");
    assert_eq!(
        pkt::parse_publish(&got, 5).0,
        "alias/out",
        "the topic again"
    );
}

/// 5.0: the server accepts every Topic Alias from 1 to the Topic Alias Maximum it gave in its
/// CONNACK ([MQTT-3.3.2-12]); 0, which no sender may use ([MQTT-3.3.2-8]), and an alias above
/// the maximum ([MQTT-3.3.2-9]) get DISCONNECT 0x94 (Topic Alias invalid).
#[test]
fn topic_aliases_from_1_to_the_servers_maximum_are_accepted() {
    let s = server();
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("alias-max", true, 30, &[], None));
    let ack = r.packet(WAIT).expect("a CONNACK");
    let max = pkt::connack_props(&ack)
        .into_iter()
        .find(|(id, _)| *id == 0x22)
        .map(|(_, v)| v as u16)
        .expect("a Topic Alias Maximum");
    for (pkid, alias) in [(1, 1), (2, max)] {
        r.send(&pkt::publish5(
            "alias/max",
            1,
            pkid,
            b"x",
            &pkt::prop16(0x23, alias),
        ));
        r.send(&pkt::publish5(
            "",
            1,
            pkid + 10,
            b"y",
            &pkt::prop16(0x23, alias),
        ));
        for id in [pkid, pkid + 10] {
            let puback = r.packet_of(4, WAIT).expect("a PUBACK");
            assert_eq!(pkt::packet_id(&puback), id, "alias {alias}");
        }
    }
    for alias in [0, max + 1] {
        let mut r = connected(&s, 5, &format!("alias-bad-{alias}"));
        r.send(&pkt::publish5(
            "alias/bad",
            0,
            0,
            b"x",
            &pkt::prop16(0x23, alias),
        ));
        assert_eq!(closed_with(&mut r, 5), Some(0x94), "alias {alias}");
    }
}

/// The receiver of a PUBLISH answers as its QoS says ([MQTT-3.3.4-1], both versions): nothing
/// for QoS 0, PUBACK for QoS 1, PUBREC for QoS 2 and PUBCOMP for its PUBREL, each with the
/// packet identifier of the PUBLISH.
#[test]
fn mqtt_3_3_4_1_each_qos_gets_its_answer() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("answers-{level}"));
        r.send(&pkt::publish(level, "answers/t", 0, 0, b"0", false, false));
        r.send(&pkt::pingreq());
        assert_eq!(r.packet(WAIT), Some(vec![0xD0, 0]), "nothing for QoS 0");
        r.send(&pkt::publish(
            level,
            "answers/t",
            1,
            0x0101,
            b"1",
            false,
            false,
        ));
        let puback = r.packet(WAIT).expect("a PUBACK");
        assert_eq!((puback[0], pkt::packet_id(&puback)), (0x40, 0x0101));
        r.send(&pkt::publish(
            level,
            "answers/t",
            2,
            0x0202,
            b"2",
            false,
            false,
        ));
        let pubrec = r.packet(WAIT).expect("a PUBREC");
        assert_eq!((pubrec[0], pkt::packet_id(&pubrec)), (0x50, 0x0202));
        r.send(&pkt::ack(pkt::PUBREL, 0x0202));
        let pubcomp = r.packet(WAIT).expect("a PUBCOMP");
        assert_eq!((pubcomp[0], pkt::packet_id(&pubcomp)), (0x70, 0x0202));
    }
}

/// A message that matches several subscriptions of one client goes to it once, at the
/// highest QoS among them (3.1.1 [MQTT-3.3.5-1]; 5.0 [MQTT-3.3.4-2]).
#[test]
fn overlapping_subscriptions_get_one_copy_at_their_highest_qos() {
    let s = server();
    for level in LEVELS {
        let mut c = client(&s, level, &format!("overlap-{level}"));
        c.sub(&format!("ov{level}/#"), 0);
        c.sub(&format!("ov{level}/+"), 2);
        c.sub(&format!("ov{level}/t"), 1);
        let mut p = client(&s, level, &format!("overlap-pub-{level}"));
        p.publish(&format!("ov{level}/t"), 2, false, b"one");
        p.publish(&format!("ov{level}/end"), 0, false, b"end");
        let m = c.expect();
        assert_eq!((m.text().as_str(), m.qos), ("one", 2), "level {level}");
        assert_eq!(c.expect().text(), "end", "level {level}: one copy");
    }
}

/// 5.0 [MQTT-3.3.4-6]: a PUBLISH from a client must not carry a Subscription Identifier; one
/// that does gets DISCONNECT 0x82.
#[test]
fn a_subscription_identifier_from_a_client_is_a_protocol_error() {
    let s = server();
    let mut r = connected(&s, 5, "sid-in");
    r.send(&pkt::publish5(
        "sid/in",
        0,
        0,
        b"x",
        &pkt::prop_var(0x0B, 5),
    ));
    assert_eq!(closed_with(&mut r, 5), Some(0x82));
}

/// 5.0 [MQTT-3.3.4-7] seen from the server: a client with more unacknowledged QoS 2 PUBLISH
/// packets than the Receive Maximum the CONNACK gave it gets DISCONNECT 0x93.
#[test]
fn a_client_past_the_servers_receive_maximum_gets_0x93() {
    let s = Server::start("[shards]\ncount = 2\n[mqtt]\nmax_inflight = 2\n");
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("rmax-in", true, 30, &[], None));
    let ack = r.packet(WAIT).expect("a CONNACK");
    assert!(pkt::connack_props(&ack).contains(&(0x21, 2)), "{ack:?}");
    for pkid in 1..=2 {
        r.send(&pkt::publish(5, "rmax/in", 2, pkid, b"x", false, false));
        r.packet_of(5, WAIT).expect("a PUBREC");
    }
    r.send(&pkt::publish(5, "rmax/in", 2, 3, b"x", false, false));
    assert_eq!(closed_with(&mut r, 5), Some(0x93));
}

/// 5.0 [MQTT-3.3.4-10]: while the client's Receive Maximum holds back QoS 1 messages, the
/// server still answers its other packets (PINGREQ, SUBSCRIBE) at once.
#[test]
fn a_full_receive_maximum_delays_only_publish_packets() {
    let s = server();
    let mut r = accepted(
        &s,
        &pkt::connect5("window", true, 30, &pkt::prop16(0x21, 1), None),
    );
    subscribe(&mut r, 5, "window/t", 1);
    let mut p = Client::v5(&s.mqtt_addr, "window-pub", true);
    p.publish("window/t", 1, false, b"first");
    p.publish("window/t", 1, false, b"second");
    let first = r.packet_of(3, WAIT).expect("the first message");
    r.send(&pkt::pingreq());
    assert_eq!(
        r.packet(WAIT),
        Some(vec![0xD0, 0]),
        "PINGRESP, not the second message"
    );
    r.send(&pkt::subscribe(5, 7, "window/other", 1));
    let suback = r.packet(WAIT).expect("a SUBACK");
    assert_eq!((suback[0], pkt::packet_id(&suback)), (0x90, 7));
    r.send(&pkt::ack(pkt::PUBACK, pkt::parse_publish(&first, 5).4));
    let second = r.packet_of(3, WAIT).expect("the second message");
    assert_eq!(pkt::parse_publish(&second, 5).1, b"second");
}
