//! MQTT 3.1.1 and 5.0 §3.1 (CONNECT): the normative statements that bind a server, each
//! proven against the real binary with a raw byte-level client (hand-built packets, so
//! malformed ones too) and rumqttc, for both protocol versions where the statement exists in
//! both. docs/mqtt.md, "Normative statements", maps every statement to its test; those
//! proven by other test files are cited there.

mod common;
use common::conformance::*;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::time::Duration;

/// Sends `connect` on a new connection; returns what the server sent before it closed the
/// connection (panics if it keeps it open).
fn closed_after(s: &Server, connect: &[u8]) -> Vec<Vec<u8>> {
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(connect);
    r.until_closed(WAIT)
}

/// Sends `connect` on a new connection and checks that it is accepted; returns the
/// connection and its CONNACK.
fn accepted(s: &Server, connect: &[u8]) -> (Raw, Vec<u8>) {
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(connect);
    let ack = r.packet(WAIT).expect("a CONNACK");
    assert_eq!((ack[0], ack[3]), (0x20, 0), "accepted: {ack:?}");
    (r, ack)
}

/// `connect` (under 128 bytes) with `flags` added to its Connect Flags and `extra` appended to
/// its payload, its remaining length fixed up.
fn altered(mut connect: Vec<u8>, flags: u8, extra: &[u8]) -> Vec<u8> {
    connect[9] |= flags;
    connect.extend_from_slice(extra);
    connect[1] = (connect.len() - 2) as u8;
    connect
}

/// A length-prefixed string field.
fn field(x: &str) -> Vec<u8> {
    let mut b = Vec::new();
    pkt::s(x, &mut b);
    b
}

/// `packet` with the bytes of its first string field `from` overwritten by `to` (as long).
fn overwritten(mut packet: Vec<u8>, from: &str, to: &[u8]) -> Vec<u8> {
    let needle = field(from);
    let at = packet
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the field")
        + 2;
    packet[at..at + to.len()].copy_from_slice(to);
    packet
}

/// The 5.0 CONNACK reason code, or the 3.1.1 return code, of a CONNACK frame.
fn connack_code(ack: &[u8]) -> u8 {
    assert_eq!(ack[0], 0x20, "a CONNACK: {ack:?}");
    ack[3]
}

/// A subscriber to a filter that must see nothing more before a marker published after the
/// test's actions: `assert_quiet` proves that nothing else arrived.
struct Watcher {
    c: Client,
    /// A topic the filter matches (its `#` made a level).
    marker: String,
}

impl Watcher {
    fn on(s: &Server, id: &str, filter: &str) -> Watcher {
        let mut c = Client::v4(&s.mqtt_addr, id, true);
        c.sub(filter, 1);
        Watcher {
            c,
            marker: filter.replace('#', "marker"),
        }
    }

    /// Publishes a marker that the filter matches: it must be the next message there.
    fn assert_quiet(&mut self, s: &Server, why: &str) {
        let mut p = Client::v4(&s.mqtt_addr, "marker-pub", true);
        p.publish(&self.marker, 1, false, b"marker");
        assert_eq!(self.c.expect().text(), "marker", "{why}");
        p.disconnect();
    }
}

/// [MQTT-3.1.2-1] (both versions): a protocol name other than "MQTT" is not processed as MQTT:
/// the connection is closed without a CONNACK.
#[test]
fn mqtt_3_1_2_1_a_wrong_protocol_name_closes_without_connack() {
    let s = server();
    for level in LEVELS {
        for name in [b"MQTX", b"mqtt"] {
            let mut c = pkt::connect(level, "name", true, 30, None);
            c[4..8].copy_from_slice(name);
            assert!(closed_after(&s, &c).is_empty(), "level {level}, {name:?}");
        }
    }
}

/// [MQTT-3.1.2-2]: a protocol level the server does not speak gets CONNACK return code 0x01
/// (unacceptable protocol level) and the connection is closed. (5.0 lets the server send
/// 0x84 instead; a client of an unknown version gets the 3.1.1 answer.)
#[test]
fn mqtt_3_1_2_2_an_unsupported_protocol_level_gets_0x01_and_is_closed() {
    let s = server();
    for level in [0u8, 3, 6, 255] {
        let got = closed_after(&s, &pkt::connect(level, "level", true, 30, None));
        assert_eq!(got, vec![vec![0x20, 2, 0, 1]], "level {level}");
    }
}

/// [MQTT-3.1.2-3] (both versions): the reserved bit of the Connect Flags must be 0; a CONNECT
/// with it set is malformed and closed without a CONNACK ([MQTT-3.1.4-1]).
#[test]
fn mqtt_3_1_2_3_a_set_reserved_connect_flag_closes_without_connack() {
    let s = server();
    for level in LEVELS {
        let c = altered(pkt::connect(level, "reserved", true, 30, None), 0x01, &[]);
        assert!(closed_after(&s, &c).is_empty(), "level {level}");
    }
}

/// The will flags must agree with the payload, or the CONNECT is malformed and closed without
/// a CONNACK ([MQTT-3.1.4-1]): without the Will Flag, Will QoS and Will Retain are 0
/// (3.1.1 [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]; 5.0 [MQTT-3.1.2-11],
/// [MQTT-3.1.2-13]); with it, the will fields are there ([MQTT-3.1.2-9]) and Will QoS is not 3
/// (3.1.1 [MQTT-3.1.2-14]; 5.0 [MQTT-3.1.2-12]).
#[test]
fn will_flags_that_disagree_with_the_payload_close_without_connack() {
    let s = server();
    for level in LEVELS {
        let plain = || pkt::connect(level, "will-flags", true, 30, None);
        let cases = [
            ("Will QoS without a will", altered(plain(), 0x08, &[])),
            ("Will Retain without a will", altered(plain(), 0x20, &[])),
            (
                "Will Flag without the will fields",
                altered(plain(), 0x04, &[]),
            ),
            (
                "Will QoS 3",
                pkt::connect(level, "will-flags", true, 30, Some(("w/t", b"x", 3, false))),
            ),
        ];
        for (what, c) in cases {
            assert!(closed_after(&s, &c).is_empty(), "level {level}: {what}");
        }
    }
}

/// The User Name and Password flags must agree with the payload, or the CONNECT is malformed
/// and closed without a CONNACK ([MQTT-3.1.4-1]): a field is there if and only if its flag is
/// set (3.1.1 [MQTT-3.1.2-18] to [MQTT-3.1.2-21]; 5.0 [MQTT-3.1.2-16] to [MQTT-3.1.2-19]),
/// and in 3.1.1 a password needs a user name ([MQTT-3.1.2-22]; 5.0 allows a password alone).
#[test]
fn user_name_and_password_flags_that_disagree_with_the_payload_close_without_connack() {
    let s = server();
    for level in LEVELS {
        let login = |user, password| pkt::connect_login(level, "login-flags", user, password);
        let cases = [
            (
                "User Name Flag, no user name",
                altered(login(None, None), 0x80, &[]),
            ),
            (
                "Password Flag, no password",
                altered(login(Some("u"), None), 0x40, &[]),
            ),
            (
                "a user name without its flag",
                altered(login(None, None), 0, &field("u")),
            ),
            (
                "a password without its flag",
                altered(login(Some("u"), None), 0, &field("p")),
            ),
        ];
        for (what, c) in cases {
            assert!(closed_after(&s, &c).is_empty(), "level {level}: {what}");
        }
    }
    let password_alone = pkt::connect_login(4, "pw-alone", None, Some("p"));
    assert!(closed_after(&s, &password_alone).is_empty(), "3.1.1");
    accepted(&s, &pkt::connect_login(5, "pw-alone", None, Some("p")));
}

/// The strings of a CONNECT are UTF-8, or it is malformed and closed without a CONNACK: the
/// client identifier ([MQTT-3.1.3-4], both versions), the will topic (3.1.1
/// [MQTT-3.1.3-10]; 5.0 [MQTT-3.1.3-11]) and the user name (3.1.1 [MQTT-3.1.3-11]; 5.0
/// [MQTT-3.1.3-12]).
#[test]
fn strings_of_a_connect_that_are_not_utf8_close_without_connack() {
    let s = server();
    let not_utf8 = [0xff, 0xfe];
    for level in LEVELS {
        let id = overwritten(pkt::connect(level, "Ix", true, 30, None), "Ix", &not_utf8);
        let will = pkt::connect(level, "utf8", true, 30, Some(("Wx", b"bye", 0, false)));
        let will = overwritten(will, "Wx", &not_utf8);
        let user = pkt::connect_login(level, "utf8", Some("Ux"), Some("p"));
        let user = overwritten(user, "Ux", &not_utf8);
        for (what, c) in [("client id", id), ("will topic", will), ("user name", user)] {
            assert!(closed_after(&s, &c).is_empty(), "level {level}: {what}");
        }
    }
}

/// [MQTT-3.1.3-5] (both versions): client identifiers of 1 to 23 bytes of `0-9a-zA-Z` are
/// allowed.
#[test]
fn mqtt_3_1_3_5_client_identifiers_of_1_to_23_alphanumerics_are_allowed() {
    let s = server();
    let ids = [
        "0123456789abcdefghijklm",
        "nopqrstuvwxyzABCDEFGHIJ",
        "KLMNOPQRSTUVWXYZ",
        "z",
    ];
    for level in LEVELS {
        for id in ids {
            accepted(&s, &pkt::connect(level, id, true, 30, None));
        }
    }
}

/// A zero-byte client identifier: the server assigns a unique one and handles the CONNECT as
/// if the client had sent it (3.1.1 and 5.0 [MQTT-3.1.3-6]); a 5.0 client is told it in the
/// CONNACK ([MQTT-3.1.3-7]) and can resume its session with it.
#[test]
fn an_assigned_client_identifier_is_used_as_if_the_client_had_sent_it() {
    let s = server();
    let (_, ack) = accepted(&s, &pkt::connect(4, "", true, 30, None));
    assert_eq!(ack, vec![0x20, 2, 0, 0], "3.1.1");
    let (mut r, ack) = accepted(&s, &pkt::connect5_expiry("", false, 60));
    let assigned: Vec<String> = pkt::connack_strings(&ack)
        .into_iter()
        .filter(|(id, _)| *id == 0x12)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(assigned.len(), 1, "one Assigned Client Identifier: {ack:?}");
    let (_, other) = accepted(&s, &pkt::connect5_expiry("", false, 60));
    assert!(
        !pkt::connack_strings(&other).contains(&(0x12, assigned[0].clone())),
        "each connection gets its own"
    );
    r.send(&pkt::subscribe(5, 1, "assigned/t", 1));
    r.packet_of(9, WAIT).expect("a SUBACK");
    r.send(&pkt::disconnect());
    r.until_closed(WAIT);
    let (_, again) = accepted(&s, &pkt::connect5_expiry(&assigned[0], false, 60));
    assert_eq!(
        again[2], 1,
        "the session made under the assigned id is present"
    );
}

/// [MQTT-3.1.3-8] (3.1.1): a zero-byte client identifier with CleanSession 0 gets CONNACK
/// return code 0x02 and the connection is closed. (5.0 has no such rule: the server assigns
/// an identifier, see above.)
#[test]
fn mqtt_3_1_3_8_an_empty_client_id_for_a_persistent_session_gets_0x02_and_is_closed() {
    let s = server();
    let got = closed_after(&s, &pkt::connect(4, "", false, 30, None));
    assert_eq!(got, vec![vec![0x20, 2, 0, 2]]);
}

/// A client identifier the server rejects (longer than 256 bytes here) gets CONNACK 0x02
/// (3.1.1 [MQTT-3.1.3-9]) or 0x85 (5.0 [MQTT-3.1.3-8]), then the connection is closed (5.0
/// [MQTT-3.1.4-2]).
#[test]
fn a_rejected_client_identifier_gets_0x02_or_0x85_and_is_closed() {
    let s = server();
    let long = "x".repeat(300);
    let got = closed_after(&s, &pkt::connect(4, &long, true, 30, None));
    assert_eq!(got, vec![vec![0x20, 2, 0, 2]], "3.1.1");
    let got = closed_after(&s, &pkt::connect(5, &long, true, 30, None));
    assert_eq!(got.len(), 1, "one packet: {got:?}");
    assert_eq!(connack_code(&got[0]), 0x85, "5.0");
    assert_eq!(got[0][2], 0, "no session present on a refusal");
}

/// Data sent after a refused CONNECT is not processed (3.1.1 [MQTT-3.1.4-5]; 5.0
/// [MQTT-3.1.4-6]): a PUBLISH right behind it reaches nobody.
#[test]
fn data_after_a_refused_connect_is_not_processed() {
    let s = server();
    let mut watcher = Watcher::on(&s, "refused-watch", "refused/t");
    let long = "x".repeat(300);
    let refusals = [
        pkt::connect(4, &long, true, 30, None),
        pkt::connect(4, "", false, 30, None),
        pkt::connect(5, &long, true, 30, None),
    ];
    for connect in refusals {
        let level = connect[8];
        let publish = pkt::publish(level, "refused/t", 0, 0, b"sneaked in", false, false);
        let got = closed_after(&s, &[connect, publish].concat());
        assert!(
            got.iter().all(|p| p[0] == 0x20),
            "only the CONNACK: {got:?}"
        );
    }
    watcher.assert_quiet(&s, "nothing published after a refused CONNECT");
}

/// [MQTT-3.1.4-2] (3.1.1): a CONNECT with the client id of a connected client closes the
/// existing connection (5.0 [MQTT-3.1.4-3], with DISCONNECT 0x8E: `mqtt_client_id_takeover`).
#[test]
fn mqtt_3_1_4_2_a_second_connection_with_the_same_client_id_closes_the_first() {
    let s = server();
    let (mut first, _) = accepted(&s, &pkt::connect(4, "twin4", true, 30, None));
    let (mut second, _) = accepted(&s, &pkt::connect(4, "twin4", true, 30, None));
    assert!(first.until_closed(WAIT).is_empty(), "closed, nothing sent");
    second.send(&pkt::pingreq());
    assert_eq!(
        second.packet(WAIT),
        Some(vec![0xD0, 0]),
        "the new one works"
    );
}

/// 3.1.1 [MQTT-3.1.2-4], [MQTT-3.1.2-5] and [MQTT-3.1.4-3]: with CleanSession 0 the session
/// outlives the connection, QoS 1 and QoS 2 messages that match its subscriptions are kept
/// for it while it is away, and the next connection resumes it.
#[test]
fn mqtt_3_1_2_5_a_persistent_session_keeps_qos1_and_qos2_messages_while_offline() {
    let s = server();
    let mut c = Client::v4(&s.mqtt_addr, "away4", false);
    c.sub("away4/t", 2);
    c.disconnect();
    let mut p = Client::v4(&s.mqtt_addr, "away4-pub", true);
    p.publish("away4/t", 1, false, b"one");
    p.publish("away4/t", 2, false, b"two");
    let mut c = Client::v4(&s.mqtt_addr, "away4", false);
    assert!(c.present, "the session was resumed");
    let got: Vec<(String, u8)> = (0..2)
        .map(|_| c.expect())
        .map(|m| (m.text(), m.qos))
        .collect();
    assert_eq!(got, vec![("one".into(), 1), ("two".into(), 2)]);
}

/// 3.1.1 [MQTT-3.1.2-6]: CleanSession 1 discards the previous session and starts one that
/// lasts as long as the connection; nothing of either is used by a later session.
#[test]
fn mqtt_3_1_2_6_a_clean_session_discards_the_previous_one_and_is_not_kept() {
    let s = server();
    let mut c = Client::v4(&s.mqtt_addr, "clean6", false);
    c.sub("clean6/old", 1);
    c.disconnect();
    let mut c = Client::v4(&s.mqtt_addr, "clean6", true);
    assert!(!c.present, "CleanSession 1: no session present");
    c.sub("clean6/new", 1);
    c.disconnect();
    let mut p = Client::v4(&s.mqtt_addr, "clean6-pub", true);
    p.publish("clean6/old", 1, false, b"old");
    p.publish("clean6/new", 1, false, b"new");
    let mut c = Client::v4(&s.mqtt_addr, "clean6", false);
    assert!(!c.present, "neither session was kept");
    assert!(
        c.recv(Duration::from_millis(500)).is_none(),
        "no subscription left"
    );
}

/// 5.0 [MQTT-3.1.2-4] and [MQTT-3.1.4-4]: Clean Start 1 discards an existing session, even
/// one with a Session Expiry Interval that has not passed.
#[test]
fn clean_start_discards_an_existing_session() {
    let s = server();
    let expiring = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_session_expiry_interval(Some(60));
    };
    let mut c = Client::v5_with(&s.mqtt_addr, "clean-start", false, expiring);
    c.sub("clean-start/t", 1);
    c.disconnect();
    let mut p = Client::v5(&s.mqtt_addr, "clean-start-pub", true);
    p.publish("clean-start/t", 1, false, b"while away");
    let mut c = Client::v5_with(&s.mqtt_addr, "clean-start", true, expiring);
    assert!(!c.present, "Clean Start 1: no session present");
    p.publish("clean-start/t", 1, false, b"after");
    assert!(
        c.recv(Duration::from_millis(500)).is_none(),
        "neither the queued message nor the subscription survived"
    );
}

/// 3.1.1 [MQTT-3.1.2-7]: retained messages are not part of the session: they stay when the
/// session that published them ends.
#[test]
fn mqtt_3_1_2_7_retained_messages_outlive_the_session_that_published_them() {
    let s = server();
    let mut p = Client::v4(&s.mqtt_addr, "kept-pub4", true);
    p.publish("kept/4", 1, true, b"from 3.1.1");
    p.disconnect();
    let mut p = Client::v5(&s.mqtt_addr, "kept-pub5", true);
    p.publish("kept/5", 1, true, b"from 5.0");
    p.disconnect();
    let mut c = Client::v4(&s.mqtt_addr, "kept-sub", true);
    c.sub("kept/+", 1);
    let mut got: Vec<String> = (0..2).map(|_| c.expect().text()).collect();
    got.sort();
    assert_eq!(got, vec!["from 3.1.1", "from 5.0"]);
}

/// The will is stored with the connection, published when it is lost, and then removed: a
/// second loss without a will publishes nothing, and neither does a DISCONNECT (3.1.1
/// [MQTT-3.1.2-8], [MQTT-3.1.2-10], [MQTT-3.1.2-12]; 5.0 [MQTT-3.1.2-7], [MQTT-3.1.2-8],
/// [MQTT-3.1.2-10]).
#[test]
fn the_will_is_published_once_when_the_connection_is_lost() {
    let s = server();
    let mut watcher = Watcher::on(&s, "will-watch", "will1/#");
    for level in LEVELS {
        let id = format!("will1-{level}");
        let topic = format!("will1/{level}");
        let will = Some((topic.as_str(), &b"gone"[..], 1, false));
        let persistent = |will: Option<pkt::Will>| match level {
            4 => pkt::connect(4, &id, false, 30, will),
            _ => pkt::connect5(
                &id,
                false,
                30,
                &pkt::prop32(0x11, 60),
                will.map(|w| (w, &[][..])),
            ),
        };
        let (r, _) = accepted(&s, &persistent(will));
        drop(r);
        let m = watcher.c.expect();
        assert_eq!(
            (m.topic.as_str(), m.text().as_str()),
            (topic.as_str(), "gone")
        );
        let (r, ack) = accepted(&s, &persistent(None));
        assert_eq!(ack[2], 1, "session present");
        drop(r);
        let (mut polite, _) = accepted(&s, &persistent(will));
        polite.send(&pkt::disconnect());
        polite.until_closed(WAIT);
    }
    watcher.assert_quiet(
        &s,
        "no will after it was published once, or after DISCONNECT",
    );
}

/// The Will Retain flag decides whether the will is published as a retained message (3.1.1
/// [MQTT-3.1.2-16], [MQTT-3.1.2-17]; 5.0 [MQTT-3.1.2-14], [MQTT-3.1.2-15]).
#[test]
fn will_retain_decides_whether_the_will_is_retained() {
    let s = server();
    let mut watcher = Client::v4(&s.mqtt_addr, "wr-watch", true);
    watcher.sub("wr/#", 1);
    for level in LEVELS {
        for (retain, name) in [(true, "kept"), (false, "plain")] {
            let topic = format!("wr/{level}/{name}");
            let will = Some((topic.as_str(), &b"bye"[..], 1, retain));
            let (r, _) = accepted(&s, &pkt::connect(level, &topic, true, 30, will));
            drop(r);
            assert_eq!(watcher.expect().topic, topic, "published");
        }
    }
    let mut late = Client::v4(&s.mqtt_addr, "wr-late", true);
    late.sub("wr/#", 1);
    let mut got: Vec<(String, bool)> = (0..2)
        .map(|_| late.expect())
        .map(|m| (m.topic, m.retain))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("wr/4/kept".into(), true), ("wr/5/kept".into(), true)],
        "only the wills with Will Retain 1 were retained"
    );
    assert!(late.recv(Duration::from_millis(300)).is_none());
}

/// 5.0 [MQTT-3.1.3-10]: the will's User Properties are published in their order.
#[test]
fn the_wills_user_properties_keep_their_order() {
    let s = server();
    let mut watcher = Client::v5(&s.mqtt_addr, "wp-watch", true);
    watcher.sub("wp/#", 1);
    let pairs = [("k", "1"), ("a", "2"), ("k", "3")];
    let mut props = Vec::new();
    for (k, v) in pairs {
        props.push(0x26);
        pkt::s(k, &mut props);
        pkt::s(v, &mut props);
    }
    let will = (("wp/gone", &b"bye"[..], 1, false), &props[..]);
    let (r, _) = accepted(&s, &pkt::connect5("wp", true, 30, &[], Some(will)));
    drop(r);
    let m = watcher.expect();
    let want: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(m.user_properties, want);
}

/// 5.0 [MQTT-3.1.2-28] and [MQTT-3.1.2-29]: a client that sets Request Response Information
/// and Request Problem Information to 0 gets no Response Information, and no Reason String or
/// User Property on a SUBACK, UNSUBACK or PUBACK (the server sends those on no packet).
#[test]
fn request_flags_of_0_get_no_response_information_or_reason_strings() {
    let s = server();
    let props = [0x17, 0, 0x19, 0];
    let (mut r, ack) = accepted(&s, &pkt::connect5("quiet-acks", true, 30, &props, None));
    assert!(
        pkt::connack_strings(&ack).iter().all(|(id, _)| *id != 0x1A),
        "no Response Information: {ack:?}"
    );
    r.send(&pkt::subscribe(5, 1, "a/#/b", 1));
    assert_eq!(r.packet(WAIT).unwrap(), vec![0x90, 4, 0, 1, 0, 0x8F]);
    r.send(&pkt::unsubscribe(5, 2, &["never/subscribed"]));
    assert_eq!(r.packet(WAIT).unwrap(), vec![0xB0, 4, 0, 2, 0, 0x11]);
    r.send(&pkt::publish(5, "quiet/t", 1, 3, b"x", false, false));
    let puback = r.packet(WAIT).unwrap();
    assert_eq!((puback[0], pkt::packet_id(&puback)), (0x40, 3));
    assert!(
        puback.len() <= 5 || puback[5] == 0,
        "no properties: {puback:?}"
    );
}

/// A session that ends with its connection (3.1.1 CleanSession 1, 5.0 Session Expiry 0) is
/// not resumed by a CONNECT that takes its connection over: closing the old connection ended
/// it (3.1.1 [MQTT-3.1.2-6]: its state is not reused; 5.0 [MQTT-3.1.4-3] then
/// [MQTT-3.1.4-4]: the old connection is closed before Clean Start is processed).
#[test]
fn taking_over_a_connection_whose_session_ends_with_it_starts_a_new_session() {
    let s = server();
    for level in LEVELS {
        let id = format!("short-lived-{level}");
        let topic = format!("short-lived/{level}");
        let (mut old, _) = accepted(&s, &pkt::connect(level, &id, true, 30, None));
        old.send(&pkt::subscribe(level, 1, &topic, 1));
        old.packet_of(9, WAIT).expect("a SUBACK");
        let (mut new, ack) = accepted(&s, &pkt::connect(level, &id, false, 30, None));
        assert_eq!(ack[2], 0, "level {level}: no session present");
        old.until_closed(WAIT);
        let mut p = Client::v4(&s.mqtt_addr, &format!("short-lived-pub-{level}"), true);
        p.publish(&topic, 1, false, b"to the old subscription");
        new.send(&pkt::pingreq());
        assert_eq!(
            new.packet(WAIT),
            Some(vec![0xD0, 0]),
            "level {level}: the old subscription is gone"
        );
    }
}

/// The will of a connection that is taken over: published when its session ends there, and
/// for a 3.1.1 connection always (3.1.1 [MQTT-3.1.2-8]: a will is published whenever its
/// connection closes without DISCONNECT); a 5.0 will is not published when the session goes
/// on, since the new connection came before any Will Delay ran out (5.0 [MQTT-3.1.2-8]).
#[test]
fn the_will_of_a_taken_over_connection_follows_its_session() {
    let s = server();
    let mut watcher = Watcher::on(&s, "tw-watch", "tw/#");
    let cases: [(&str, u8, u32, bool); 4] = [
        ("v4-persistent", 4, 60, true),
        ("v4-clean", 4, 0, true),
        ("v5-persistent", 5, 60, false),
        ("v5-ending", 5, 0, true),
    ];
    for (name, level, expiry, published) in cases {
        let topic = format!("tw/{name}");
        let will = Some((topic.as_str(), &b"gone"[..], 1, false));
        let connect = |will: Option<pkt::Will>| match level {
            4 => pkt::connect(4, name, expiry == 0, 30, will),
            _ => pkt::connect5(
                name,
                false,
                30,
                &pkt::prop32(0x11, expiry),
                will.map(|w| (w, &[][..])),
            ),
        };
        let (_old, _) = accepted(&s, &connect(will));
        let (_new, _) = accepted(&s, &connect(None));
        if published {
            assert_eq!(watcher.c.expect().topic, topic, "{name}: will published");
        }
    }
    watcher.assert_quiet(&s, "no will when a 5.0 session goes on");
}
