//! MQTT 3.1.1 and 5.0 §4.7 (Topic Names and Topic Filters): wildcards only in filters and only
//! as whole levels (`#` last), `$` topics out of reach of leading wildcards, no empty names or
//! filters, no NUL, bounded length, and matching without normalization — each proven against
//! the real binary with a raw byte-level client and rumqttc, for both protocol versions.
//! docs/mqtt.md, "Normative statements", maps every statement to its test.

mod common;
use common::conformance::*;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Publishes to `topic` at QoS 0 on a fresh raw connection; returns how it was closed (see
/// `closed_with`).
fn publish_closes(s: &Server, level: u8, topic: &str) -> Option<u8> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let id = format!("bad-topic-{}", N.fetch_add(1, Ordering::Relaxed));
    let mut r = connected(s, level, &id);
    r.send(&pkt::publish(level, topic, 0, 0, b"x", false, false));
    closed_with(&mut r, level)
}

/// The SUBACK code a raw subscription to `filter` gets.
fn suback_code(r: &mut Raw, level: u8, filter: &str) -> u8 {
    r.send(&pkt::subscribe(level, 1, filter, 1));
    let ack = r.packet_of(9, WAIT).expect("a SUBACK");
    pkt::ack_codes(&ack, level)[0]
}

/// The code a SUBACK gives a refused filter: 0x80 (3.1.1), 0x8F Topic Filter invalid (5.0).
fn refused(level: u8) -> u8 {
    match level {
        4 => 0x80,
        _ => 0x8F,
    }
}

/// The topics of the messages `c` gets until one on `last`, in order of arrival.
fn topics_until(c: &mut Client, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let topic = c.expect().topic;
        if topic == last {
            return got;
        }
        got.push(topic);
    }
}

/// Wildcards are for filters only (3.1.1 [MQTT-4.7.1-1], [MQTT-3.3.2-2]; 5.0
/// [MQTT-4.7.0-1], [MQTT-3.3.2-2]): a PUBLISH to a topic with `+` or `#` closes the
/// connection (5.0: DISCONNECT 0x90, Topic Name invalid), and a will topic with one refuses
/// the CONNECT (5.0: CONNACK 0x90; 3.1.1, which has no return code for it: closed without a
/// CONNACK).
#[test]
fn wildcards_in_a_topic_name_are_refused() {
    let s = server();
    for level in LEVELS {
        for topic in ["wild/+", "wild/#", "+", "wild+/x"] {
            let want = (level == 5).then_some(0x90);
            assert_eq!(
                publish_closes(&s, level, topic),
                want,
                "level {level}: {topic}"
            );
        }
    }
    let will = Some(("wild/#", &b"bye"[..], 0, false));
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "wild-will-4", true, 30, will));
    assert!(
        r.until_closed(WAIT).is_empty(),
        "3.1.1: closed without a CONNACK"
    );
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(5, "wild-will-5", true, 30, will));
    let got = r.until_closed(WAIT);
    assert_eq!(got.len(), 1, "one CONNACK: {got:?}");
    assert_eq!(
        (got[0][0], got[0][3]),
        (0x20, 0x90),
        "5.0: Topic Name invalid"
    );
}

/// The multi-level wildcard `#` is a whole level and the last one (3.1.1 [MQTT-4.7.1-2]; 5.0
/// [MQTT-4.7.1-1]): other filters are refused; `x/#` matches `x` and everything below it.
#[test]
fn a_multi_level_wildcard_is_the_whole_last_level() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("mlw-raw-{level}"));
        for bad in ["mlw/#/x", "mlw#", "mlw/x#", "#/", "##"] {
            assert_eq!(suback_code(&mut r, level, bad), refused(level), "{bad}");
        }
        let mut c = client(&s, level, &format!("mlw-sub-{level}"));
        let root = format!("mlw{level}");
        assert_eq!(c.sub(&format!("{root}/#"), 1), vec![1]);
        let mut p = client(&s, level, &format!("mlw-pub-{level}"));
        let topics = [
            &root,
            &format!("{root}/a"),
            &format!("{root}/a/b/c"),
            &format!("{root}x"),
        ];
        for t in topics {
            p.publish(t, 1, false, b"x");
        }
        let end = format!("{root}/end");
        p.publish(&end, 1, false, b"x");
        let want = vec![root.clone(), format!("{root}/a"), format!("{root}/a/b/c")];
        assert_eq!(topics_until(&mut c, &end), want, "level {level}");
    }
}

/// The single-level wildcard `+` fills a whole level, at any level (3.1.1 [MQTT-4.7.1-3]; 5.0
/// [MQTT-4.7.1-2]): other filters are refused; `x/+` matches `x/a` and `x/` but not `x` or
/// `x/a/b`, `+/x` matches `a/x`.
#[test]
fn a_single_level_wildcard_fills_a_whole_level() {
    let s = server();
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("slw-raw-{level}"));
        for bad in ["slw+", "+slw", "slw/a+", "slw/+a/b"] {
            assert_eq!(suback_code(&mut r, level, bad), refused(level), "{bad}");
        }
        let root = format!("slw{level}");
        let mut c = client(&s, level, &format!("slw-sub-{level}"));
        for filter in [
            format!("{root}/+"),
            format!("+/{root}"),
            format!("{root}/+/c"),
        ] {
            assert_eq!(c.sub(&filter, 1), vec![1], "{filter}");
        }
        let mut p = client(&s, level, &format!("slw-pub-{level}"));
        let published = ["/a", "/", "", "/a/b", "/a/c"].map(|rest| format!("{root}{rest}"));
        for t in published.iter().chain([&format!("x/{root}")]) {
            p.publish(t, 1, false, b"x");
        }
        let end = format!("{root}/end");
        p.publish(&end, 1, false, b"x");
        let mut got = topics_until(&mut c, &end);
        got.sort();
        let mut want = vec![
            format!("{root}/"),
            format!("{root}/a"),
            format!("{root}/a/c"),
            format!("x/{root}"),
        ];
        want.sort();
        assert_eq!(got, want, "level {level}");
    }
}

/// [MQTT-4.7.2-1] (both versions): filters that start with a wildcard do not match topics
/// that start with `$`; filters that start with `$` do.
#[test]
fn mqtt_4_7_2_1_leading_wildcards_do_not_match_dollar_topics() {
    let s = server();
    for level in LEVELS {
        let mut all = client(&s, level, &format!("dollar-all-{level}"));
        all.sub("#", 1);
        all.sub(&format!("+/dollar{level}"), 1);
        let mut own = client(&s, level, &format!("dollar-own-{level}"));
        own.sub(&format!("$dollar{level}/#"), 1);
        let mut p = client(&s, level, &format!("dollar-pub-{level}"));
        p.publish(&format!("$dollar{level}/x"), 1, false, b"d");
        p.publish(&format!("$x/dollar{level}"), 1, false, b"d");
        let end = format!("dollar-end-{level}");
        p.publish(&end, 1, false, b"end");
        assert_eq!(own.expect().topic, format!("$dollar{level}/x"));
        let seen: Vec<String> = topics_until(&mut all, &end)
            .into_iter()
            .filter(|t| t.starts_with('$'))
            .collect();
        assert!(seen.is_empty(), "level {level}: {seen:?}");
    }
}

/// [MQTT-4.7.3-1] (both versions): topic names and filters are at least one character: a
/// PUBLISH with an empty topic (and no 5.0 Topic Alias) closes the connection (5.0:
/// DISCONNECT 0x82, as §3.3.2.3.4 calls it a protocol error), an empty filter is refused.
#[test]
fn mqtt_4_7_3_1_empty_topic_names_and_filters_are_refused() {
    let s = server();
    for level in LEVELS {
        let want = (level == 5).then_some(0x82);
        assert_eq!(publish_closes(&s, level, ""), want, "level {level}");
        let mut r = connected(&s, level, &format!("empty-filter-{level}"));
        assert_eq!(
            suback_code(&mut r, level, ""),
            refused(level),
            "level {level}"
        );
    }
}

/// [MQTT-4.7.3-2] (both versions): topic names and filters hold no NUL: a PUBLISH to one
/// closes the connection (5.0: DISCONNECT 0x90), a filter with one is refused.
#[test]
fn mqtt_4_7_3_2_topic_names_and_filters_with_nul_are_refused() {
    let s = server();
    for level in LEVELS {
        let want = (level == 5).then_some(0x90);
        assert_eq!(publish_closes(&s, level, "nul/a\0b"), want, "level {level}");
        let mut r = connected(&s, level, &format!("nul-filter-{level}"));
        assert_eq!(suback_code(&mut r, level, "nul/\0/+"), refused(level));
    }
}

/// [MQTT-4.7.3-3] (both versions): a topic's two-byte length bounds it at 65,535 bytes; the
/// broker bounds topics and filters tighter, at 1,024 bytes (`topic::MAX_TOPIC_BYTES`): a
/// longer topic closes the connection (5.0: DISCONNECT 0x90), a longer filter is refused.
#[test]
fn mqtt_4_7_3_3_topic_names_and_filters_are_bounded() {
    let s = server();
    let longest = "L".repeat(1024);
    let too_long = "L".repeat(1025);
    for level in LEVELS {
        let mut r = connected(&s, level, &format!("long-{level}"));
        r.send(&pkt::publish(level, &longest, 1, 1, b"x", false, false));
        let puback = r.packet(WAIT).expect("a PUBACK");
        assert_eq!((puback[0], pkt::packet_id(&puback)), (0x40, 1));
        assert_eq!(suback_code(&mut r, level, &longest), 1, "level {level}");
        assert_eq!(suback_code(&mut r, level, &too_long), refused(level));
        let want = (level == 5).then_some(0x90);
        assert_eq!(publish_closes(&s, level, &too_long), want, "level {level}");
    }
}

/// [MQTT-4.7.3-4] (both versions): matching compares topics and filters as they are, with no
/// normalization: not of Unicode (composed and decomposed é differ), case, trailing
/// separators or spaces.
#[test]
fn mqtt_4_7_3_4_matching_does_not_normalize() {
    let s = server();
    for level in LEVELS {
        let exact = format!("nz{level}/Caf\u{e9}");
        let mut c = client(&s, level, &format!("nz-sub-{level}"));
        c.sub(&exact, 1);
        let mut p = client(&s, level, &format!("nz-pub-{level}"));
        for near in [
            "Cafe\u{301}",
            "caf\u{e9}",
            "CAF\u{c9}",
            "Caf\u{e9}/",
            "Caf\u{e9} ",
        ] {
            p.publish(&format!("nz{level}/{near}"), 1, false, near.as_bytes());
        }
        p.publish(&exact, 1, false, b"exact");
        let m = c.expect();
        assert_eq!(
            (m.topic.as_str(), m.text().as_str()),
            (exact.as_str(), "exact")
        );
        assert!(
            c.recv(Duration::from_millis(300)).is_none(),
            "level {level}"
        );
    }
}
