//! MQTT 3.1.1 and 5.0 §3.10 (UNSUBSCRIBE): the normative statements that bind a server — the
//! packet's form, how filters are compared, what stops and what is completed, and the UNSUBACK
//! — each proven against the real binary with a raw byte-level client and rumqttc, for both
//! protocol versions (the statements are numbered alike in both). docs/mqtt.md, "Normative
//! statements", maps every statement to its test.

mod common;
use common::conformance::*;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;

/// 5.0 UNSUBACK reason codes.
const SUCCESS: u8 = 0x00;
const NO_SUBSCRIPTION: u8 = 0x11;

/// Subscribes a raw connection to `filter` at `qos`.
fn subscribe(r: &mut Raw, level: u8, filter: &str, qos: u8) {
    r.send(&pkt::subscribe(level, 1, filter, qos));
    let ack = r.packet_of(9, WAIT).expect("a SUBACK");
    assert_eq!(pkt::ack_codes(&ack, level), vec![qos], "{filter}");
}

/// Unsubscribes `filters` with packet identifier `pkid`; returns the UNSUBACK's reason codes
/// (5.0; none for 3.1.1) after checking that it is one UNSUBACK with that identifier.
fn unsubscribe(r: &mut Raw, level: u8, pkid: u16, filters: &[&str]) -> Vec<u8> {
    r.send(&pkt::unsubscribe(level, pkid, filters));
    let ack = r.packet(WAIT).expect("an UNSUBACK");
    assert_eq!((ack[0], pkt::packet_id(&ack)), (0xB0, pkid), "{ack:?}");
    pkt::ack_codes(&ack, level)
}

/// The 5.0 reason codes `codes`, or none for a 3.1.1 UNSUBACK.
fn reasons(level: u8, codes: &[u8]) -> Vec<u8> {
    match level {
        4 => Vec::new(),
        _ => codes.to_vec(),
    }
}

/// Publishes `payload` to `topic` at QoS 1 from a rumqttc client.
fn publish(s: &Server, topic: &str, payload: &[u8]) {
    let mut p = Client::v5(&s.mqtt_addr, &format!("pub-{topic}"), true);
    p.publish(topic, 1, false, payload);
    p.disconnect();
}

/// The payload of the next message on `r`, acknowledged.
fn next_message(r: &mut Raw, level: u8) -> String {
    let got = r.packet_of(3, WAIT).expect("a message");
    let (_, payload, _, _, pkid) = pkt::parse_publish(&got, level);
    r.send(&pkt::ack(pkt::PUBACK, pkid));
    String::from_utf8_lossy(&payload).to_string()
}

/// [MQTT-3.10.1-1]: an UNSUBSCRIBE whose fixed header flags are not 0010 is malformed and
/// closes the connection (5.0: DISCONNECT 0x81).
#[test]
fn mqtt_3_10_1_1_wrong_fixed_header_flags_close_the_connection() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("unsub-flags-{level}"));
        let mut p = pkt::unsubscribe(level, 1, &["flags/t"]);
        p[0] = 0xA0;
        r.send(&p);
        let want = (level == 5).then_some(0x81);
        assert_eq!(closed_with(&mut r, level), want, "level {level}");
    }
}

/// [MQTT-3.10.3-1]: a topic filter that is not UTF-8 is malformed and closes the connection
/// (5.0: DISCONNECT 0x81).
#[test]
fn mqtt_3_10_3_1_a_topic_filter_that_is_not_utf8_closes_the_connection() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("unsub-utf8-{level}"));
        let mut p = pkt::unsubscribe(level, 1, &["fx"]);
        let at = p.len() - 2;
        p[at..].copy_from_slice(&[0xff, 0xfe]);
        r.send(&p);
        let want = (level == 5).then_some(0x81);
        assert_eq!(closed_with(&mut r, level), want, "level {level}");
    }
}

/// [MQTT-3.10.3-2]: an UNSUBSCRIBE without a topic filter is a protocol error (5.0:
/// DISCONNECT 0x82).
#[test]
fn mqtt_3_10_3_2_an_unsubscribe_without_filters_is_a_protocol_error() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("unsub-empty-{level}"));
        r.send(&pkt::unsubscribe(level, 1, &[]));
        let want = (level == 5).then_some(0x82);
        assert_eq!(closed_with(&mut r, level), want, "level {level}");
    }
}

/// [MQTT-3.10.4-1], [MQTT-3.10.4-2]: filters are compared character by character with the
/// client's filters, wildcards included, and only an equal one is deleted; once it is, no new
/// message is added for it.
#[test]
fn mqtt_3_10_4_1_only_an_identical_filter_is_unsubscribed() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("exact-{level}"));
        let filter = format!("exact{level}/+");
        let topic = format!("exact{level}/x");
        subscribe(&mut r, level, &filter, 1);
        let near: [&str; 3] = [
            &topic,
            &format!("EXACT{level}/+"),
            &format!("exact{level}/#"),
        ];
        let codes = unsubscribe(&mut r, level, 2, &near);
        assert_eq!(
            codes,
            reasons(level, &[NO_SUBSCRIPTION; 3]),
            "level {level}"
        );
        publish(&s, &topic, b"still subscribed");
        assert_eq!(next_message(&mut r, level), "still subscribed");
        let codes = unsubscribe(&mut r, level, 3, &[&filter]);
        assert_eq!(codes, reasons(level, &[SUCCESS]), "level {level}");
        publish(&s, &topic, b"after");
        r.send(&pkt::pingreq());
        assert_eq!(
            r.packet(WAIT),
            Some(vec![0xD0, 0]),
            "level {level}: nothing added"
        );
    }
}

/// [MQTT-3.10.4-3]: a QoS 2 delivery that started before the UNSUBSCRIBE is completed after
/// it: the client's PUBREC gets its PUBREL (not "packet identifier not found").
#[test]
fn mqtt_3_10_4_3_a_delivery_started_before_unsubscribing_is_completed() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("complete-{level}"));
        let topic = format!("complete/{level}");
        subscribe(&mut r, level, &topic, 2);
        let mut p = Client::v5(&s.mqtt_addr, &format!("complete-pub-{level}"), true);
        p.publish(&topic, 2, false, b"in flight");
        let got = r.packet_of(3, WAIT).expect("the message");
        let pkid = pkt::parse_publish(&got, level).4;
        assert_eq!(
            unsubscribe(&mut r, level, 9, &[&topic]),
            reasons(level, &[SUCCESS])
        );
        r.send(&pkt::ack(pkt::PUBREC, pkid));
        let pubrel = r.packet(WAIT).expect("a PUBREL");
        assert_eq!((pubrel[0], pkt::packet_id(&pubrel)), (0x62, pkid));
        assert!(pubrel.len() == 4 || pubrel[4] == 0, "success: {pubrel:?}");
        r.send(&pkt::ack(pkt::PUBCOMP, pkid));
    }
}

/// [MQTT-3.10.4-4], [MQTT-3.10.4-5], [MQTT-3.10.4-6]: an UNSUBSCRIBE of several filters is
/// handled filter by filter and answered by one UNSUBACK with its packet identifier, also
/// when no filter was deleted (5.0: one reason code per filter, in order).
#[test]
fn mqtt_3_10_4_6_several_filters_get_one_unsuback() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("several-{level}"));
        let (a, b) = (format!("several{level}/a"), format!("several{level}/b"));
        subscribe(&mut r, level, &a, 0);
        subscribe(&mut r, level, &b, 0);
        let codes = unsubscribe(&mut r, level, 0x0102, &[&a, "never/subscribed", &b, &a]);
        let want = [SUCCESS, NO_SUBSCRIPTION, SUCCESS, NO_SUBSCRIPTION];
        assert_eq!(codes, reasons(level, &want), "level {level}");
        r.send(&pkt::pingreq());
        assert_eq!(r.packet(WAIT), Some(vec![0xD0, 0]), "one UNSUBACK only");
        let codes = unsubscribe(&mut r, level, 0xFFFF, &["never/subscribed"]);
        assert_eq!(codes, reasons(level, &[NO_SUBSCRIPTION]), "nothing deleted");
    }
}
