//! MQTT 5.0 features clients rely on: properties passed through, topic aliases, receive
//! maximum, message expiry, session expiry, will delay, the client's maximum packet size,
//! subscription identifiers, the Server Keep Alive and topic aliases from the server.

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use std::time::Duration;

fn server() -> Server {
    Server::start("[shards]\ncount = 2\n")
}

/// A raw 5.0 client with CONNECT properties `props`, subscribed to `filter` at `qos`.
fn raw_subscriber(s: &Server, id: &str, props: &[u8], filter: &str, qos: u8) -> Raw {
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5(id, true, 30, props, None));
    r.packet(WAIT).expect("a CONNACK");
    r.send(&pkt::subscribe(5, 1, filter, qos));
    r.packet_of(9, WAIT).expect("a SUBACK");
    r
}

#[test]
fn mqtt_v5_properties_pass_through() {
    let s = server();
    let mut sub = Client::v5(&s.mqtt_addr, "props-sub", true);
    sub.sub("props/t", 1);
    let mut p = Client::v5(&s.mqtt_addr, "props-pub", true);
    let props = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(600),
        response_topic: Some("props/reply".into()),
        correlation_data: Some(bytes::Bytes::from_static(b"corr-1")),
        user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
        content_type: Some("application/json".into()),
        ..PublishProperties::default()
    };
    p.publish5("props/t", 1, false, b"{}", props);
    let m = sub.expect();
    assert_eq!(m.response_topic.as_deref(), Some("props/reply"));
    assert_eq!(m.correlation_data.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(
        m.user_properties,
        vec![("k".to_string(), "v".to_string()), ("k".into(), "w".into())]
    );
    assert_eq!(m.content_type.as_deref(), Some("application/json"));
    let left = m.expiry.expect("message expiry is forwarded");
    assert!(left > 0 && left <= 600, "remaining expiry {left}");
}

#[test]
fn mqtt_v5_topic_alias() {
    let s = server();
    let mut sub = Client::v5(&s.mqtt_addr, "alias-sub", true);
    sub.sub("alias/#", 0);
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("alias-pub", true, 30, &[], None));
    let ack = r.packet(WAIT).unwrap();
    assert_eq!(ack[3], 0);
    let alias = pkt::prop16(0x23, 3);
    r.send(&pkt::publish5("alias/long/topic", 0, 0, b"1", &alias));
    r.send(&pkt::publish5("", 0, 0, b"2", &alias));
    assert_eq!(sub.expect().topic, "alias/long/topic");
    let second = sub.expect();
    assert_eq!(
        (second.topic.as_str(), second.text().as_str()),
        ("alias/long/topic", "2")
    );
    // An alias never set is a protocol error.
    r.send(&pkt::publish5("", 0, 0, b"3", &pkt::prop16(0x23, 7)));
    let got = r.until_closed(WAIT);
    assert_eq!(
        got.last().map(|p| p[2]),
        Some(0x82),
        "DISCONNECT protocol error"
    );
}

#[test]
fn mqtt_v5_receive_maximum() {
    let s = server();
    let mut r = raw_subscriber(&s, "rmax", &pkt::prop16(0x21, 1), "rmax/t", 1);
    let mut p = Client::v5(&s.mqtt_addr, "rmax-pub", true);
    for i in 0..3 {
        p.publish("rmax/t", 1, false, i.to_string().as_bytes());
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let first = r.packet_of(3, WAIT).expect("next message");
        let (_, payload, _, _, pkid) = pkt::parse_publish(&first, 5);
        // With one message in flight, nothing else comes until it is acknowledged.
        assert!(
            r.packet(Duration::from_millis(300)).is_none(),
            "window of 1 exceeded"
        );
        seen.push(String::from_utf8(payload).unwrap());
        r.send(&pkt::ack(pkt::PUBACK, pkid));
    }
    assert_eq!(seen, vec!["0", "1", "2"]);
}

#[test]
fn mqtt_v5_message_expiry() {
    let s = server();
    let expiring = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_session_expiry_interval(Some(60));
    };
    let mut c = Client::v5_with(&s.mqtt_addr, "mexp", false, expiring);
    c.sub("mexp/t", 1);
    c.disconnect();
    let mut p = Client::v5(&s.mqtt_addr, "mexp-pub", true);
    let short = PublishProperties {
        message_expiry_interval: Some(1),
        ..PublishProperties::default()
    };
    let long = PublishProperties {
        message_expiry_interval: Some(60),
        ..PublishProperties::default()
    };
    p.publish5("mexp/t", 1, false, b"stale", short.clone());
    p.publish5("mexp/t", 1, false, b"fresh", long);
    p.publish5("mexp/r", 1, true, b"retained", short);
    p.publish("mexp/t", 1, false, b"forever");
    std::thread::sleep(Duration::from_millis(2200));
    let mut c = Client::v5_with(&s.mqtt_addr, "mexp", false, expiring);
    let m = c.expect();
    assert_eq!(m.text(), "fresh", "the expired message was not delivered");
    // What it waited is taken off the interval it is forwarded with (MQTT 5.0 §3.3.2.3.3).
    let left = m.expiry.expect("the remaining expiry interval");
    assert!((1..=58).contains(&left), "remaining expiry {left}");
    let m = c.expect();
    assert_eq!((m.text().as_str(), m.expiry), ("forever", None));
    // An expired retained message is not sent to a new subscription: the first message it
    // gets is one published after it subscribed.
    let mut late = Client::v5(&s.mqtt_addr, "mexp-late", true);
    late.sub("mexp/r", 1);
    p.publish("mexp/r", 1, false, b"after");
    assert_eq!(late.expect().text(), "after");
}

#[test]
fn mqtt_v5_session_expiry_ends_session() {
    let s = server();
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5(
        "sexp",
        false,
        30,
        &pkt::prop32(0x11, 1),
        None,
    ));
    assert_eq!(r.packet(WAIT).unwrap()[2], 0, "no session yet");
    r.send(&pkt::disconnect());
    r.until_closed(WAIT);
    std::thread::sleep(Duration::from_millis(2500));
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5(
        "sexp",
        false,
        30,
        &pkt::prop32(0x11, 60),
        None,
    ));
    assert_eq!(r.packet(WAIT).unwrap()[2], 0, "the session expired");
}

#[test]
fn mqtt_v5_will_delay() {
    let s = server();
    let mut watcher = Client::v5(&s.mqtt_addr, "wd-watch", true);
    watcher.sub("wd/#", 1);
    let props = pkt::prop32(0x11, 60);
    let will = (
        ("wd/gone", &b"late"[..], 1u8, false),
        &pkt::prop32(0x18, 2)[..],
    );
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("wd", false, 30, &props, Some(will)));
    r.packet(WAIT).unwrap();
    drop(r);
    // Back within the delay: no will.
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("wd", false, 30, &props, Some(will)));
    assert_eq!(r.packet(WAIT).unwrap()[2], 1, "session present");
    assert!(
        watcher.recv(Duration::from_secs(3)).is_none(),
        "reconnect cancels the will"
    );
    drop(r);
    let m = watcher.expect();
    assert_eq!((m.topic.as_str(), m.text().as_str()), ("wd/gone", "late"));
}

#[test]
fn mqtt_v5_client_maximum_packet_size() {
    let s = server();
    // A window of one: the message not sent must not hold it (it is not in flight).
    let props = [pkt::prop32(0x27, 128), pkt::prop16(0x21, 1)].concat();
    let mut r = raw_subscriber(&s, "small", &props, "small/t", 1);
    let mut p = Client::v5(&s.mqtt_addr, "small-pub", true);
    p.publish("small/t", 1, false, &[b'x'; 500]);
    p.publish("small/t", 1, false, b"fits");
    let got = r.packet_of(3, WAIT).unwrap();
    assert_eq!(
        pkt::parse_publish(&got, 5).1,
        b"fits",
        "the large one was not sent"
    );
    let a = agent();
    let stats = get(&a, &s.url("/status")).json()["mqtt"].clone();
    assert_eq!(stats["oversize_dropped"], 1);
}

#[test]
fn mqtt_v5_subscription_options() {
    let s = server();
    // No local: a client does not get its own messages back.
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("nl", true, 30, &[], None));
    r.packet(WAIT).unwrap();
    r.send(&pkt::subscribe(5, 1, "nl/t", 1 | 0x04));
    r.packet_of(9, WAIT).unwrap();
    r.send(&pkt::publish(5, "nl/t", 1, 2, b"mine", false, false));
    r.packet_of(4, WAIT).unwrap();
    let mut other = Client::v5(&s.mqtt_addr, "nl-other", true);
    other.publish("nl/t", 1, false, b"theirs");
    let got = r.packet_of(3, WAIT).unwrap();
    assert_eq!(
        pkt::parse_publish(&got, 5).1,
        b"theirs",
        "own message not echoed"
    );
    // Retain handling: 2 = never, 1 = only for a new subscription.
    other.publish("rh/t", 1, true, b"kept");
    r.send(&pkt::subscribe(5, 3, "rh/t", 1 | 0x20));
    assert_eq!(r.packet(WAIT).unwrap()[0], 0x90);
    r.send(&pkt::pingreq());
    assert_eq!(
        r.packet(WAIT).unwrap(),
        vec![0xD0, 0],
        "retain handling 2: nothing sent"
    );
    r.send(&pkt::subscribe(5, 4, "rh/+", 1 | 0x10));
    r.packet_of(9, WAIT).unwrap();
    let first = r.packet_of(3, WAIT).unwrap();
    assert_eq!(
        pkt::parse_publish(&first, 5).1,
        b"kept",
        "new subscription: retained sent"
    );
    r.send(&pkt::ack(pkt::PUBACK, pkt::parse_publish(&first, 5).4));
    r.send(&pkt::subscribe(5, 5, "rh/+", 1 | 0x10));
    assert_eq!(r.packet(WAIT).unwrap()[0], 0x90);
    other.publish("rh/t", 1, false, b"live");
    let next = r.packet_of(3, WAIT).unwrap();
    assert_eq!(
        pkt::parse_publish(&next, 5).1,
        b"live",
        "no retained copy for a renewed subscription"
    );
}

#[test]
fn mqtt_v5_subscription_identifiers_are_sent_back() {
    let s = server();
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("sid-raw", true, 30, &[], None));
    let ack = r.packet(WAIT).unwrap();
    assert!(
        pkt::connack_props(&ack).contains(&(0x29, 1)),
        "Subscription Identifiers Available"
    );
    r.send(&pkt::subscribe5(
        1,
        "sid/+",
        0,
        &pkt::prop_var(0x0B, 200_000),
    ));
    r.packet_of(9, WAIT).unwrap();
    let mut sub = Client::v5(&s.mqtt_addr, "sid-sub", true);
    sub.sub_with_id("sid/+", 1, 7);
    sub.sub_with_id("sid/#", 1, 9);
    sub.sub("sid/a", 1);
    let mut p = Client::v5(&s.mqtt_addr, "sid-pub", true);
    p.publish("sid/a", 1, false, b"one");
    let mut m = sub.expect();
    m.sub_ids.sort_unstable();
    assert_eq!(
        m.sub_ids,
        vec![7, 9],
        "one identifier per matching subscription that has one"
    );
    let raw = r.packet_of(3, WAIT).unwrap();
    assert_eq!(pkt::publish_props(&raw), vec![(0x0B, 200_000)]);
    p.publish("sid/a/b", 1, false, b"two");
    assert_eq!(sub.expect().sub_ids, vec![9]);
    // Subscribing again without an identifier replaces the subscription and its identifier.
    sub.sub("sid/#", 1);
    p.publish("sid/a/b", 1, false, b"three");
    let m = sub.expect();
    assert_eq!((m.text().as_str(), m.sub_ids.len()), ("three", 0));
    // An identifier of 0 is a protocol error (MQTT 5.0 §3.8.2.1.2).
    r.send(&pkt::subscribe5(2, "sid/z", 0, &pkt::prop_var(0x0B, 0)));
    let got = r.until_closed(WAIT);
    assert_eq!(
        got.last().map(|p| p[2]),
        Some(0x82),
        "DISCONNECT protocol error"
    );
}

#[test]
fn mqtt_v5_server_keep_alive() {
    let s = Server::start("[shards]\ncount = 2\n[mqtt]\nmax_keep_alive_secs = 1\n");
    let connack = |keep_alive: u16| {
        let mut r = Raw::connect(&s.mqtt_addr);
        r.send(&pkt::connect5("ska", true, keep_alive, &[], None));
        let ack = r.packet(WAIT).unwrap();
        assert_eq!(ack[3], 0, "accepted");
        (r, pkt::connack_props(&ack))
    };
    let (_, props) = connack(1);
    assert!(
        props.iter().all(|(id, _)| *id != 0x13),
        "a keep-alive within the maximum is kept: {props:?}"
    );
    let (_, props) = connack(600);
    assert!(
        props.contains(&(0x13, 1)),
        "too long: Server Keep Alive {props:?}"
    );
    let (mut r, props) = connack(0);
    assert!(
        props.contains(&(0x13, 1)),
        "none: Server Keep Alive {props:?}"
    );
    // The server holds the client to what it told it: silence ends the connection.
    let got = r.until_closed(WAIT);
    assert_eq!(
        got.last().map(|p| p[2]),
        Some(0x8D),
        "DISCONNECT keep alive timeout"
    );
}

#[test]
fn mqtt_v5_server_topic_aliases() {
    let s = server();
    let mut r = raw_subscriber(&s, "ta-raw", &pkt::prop16(0x22, 2), "ta/#", 0);
    let mut plain = raw_subscriber(&s, "ta-plain", &[], "ta/#", 0);
    let mut resolved = Client::v5_with(&s.mqtt_addr, "ta-rumqttc", true, |o| {
        o.set_topic_alias_max(Some(8));
    });
    resolved.sub("ta/#", 0);
    let mut p = Client::v5(&s.mqtt_addr, "ta-pub", true);
    let topics = ["ta/a", "ta/a", "ta/b", "ta/c", "ta/a", "ta/c"];
    for t in topics {
        p.publish(t, 1, false, t.as_bytes());
    }
    // Within the client's Topic Alias Maximum (2): the first two topics get an alias, sent
    // with the topic once and then instead of it; a third topic goes out in full.
    let want: [(&str, Option<u32>); 6] = [
        ("ta/a", Some(1)),
        ("", Some(1)),
        ("ta/b", Some(2)),
        ("ta/c", None),
        ("", Some(1)),
        ("ta/c", None),
    ];
    for (i, (topic, alias)) in want.into_iter().enumerate() {
        let got = r.packet_of(3, WAIT).expect("a message");
        let (t, payload, ..) = pkt::parse_publish(&got, 5);
        let a = pkt::publish_props(&got)
            .into_iter()
            .find(|(id, _)| *id == 0x23)
            .map(|(_, v)| v);
        assert_eq!((t.as_str(), a), (topic, alias), "message {i}");
        assert_eq!(payload, topics[i].as_bytes());
    }
    // A client that did not ask for aliases gets none.
    for t in topics {
        let got = plain.packet_of(3, WAIT).expect("a message");
        assert_eq!(pkt::parse_publish(&got, 5).0, t);
        assert!(pkt::publish_props(&got).iter().all(|(id, _)| *id != 0x23));
    }
    // An independent client takes them: rumqttc checks each alias against those it was
    // given (an unknown one would end the connection) and hands on the packets as sent.
    let got: Vec<String> = topics.iter().map(|_| resolved.expect().topic).collect();
    assert_eq!(got, ["ta/a", "", "ta/b", "ta/c", "", ""]);
    resolved.sub("ta/more", 0);
}

#[test]
fn mqtt_v5_enhanced_authentication_is_refused_cleanly() {
    let s = server();
    let mut r = Raw::connect(&s.mqtt_addr);
    let method = b"SCRAM-SHA-1";
    let mut props = vec![0x15, 0, method.len() as u8];
    props.extend_from_slice(method);
    r.send(&pkt::connect5("scram", true, 30, &props, None));
    let connack = r.packet(WAIT).expect("a CONNACK");
    assert_eq!(connack[0], 0x20, "{connack:?}");
    assert_eq!(connack[3], 0x8C, "Bad authentication method: {connack:?}");
    r.until_closed(WAIT);
    // The same client without the method connects.
    let mut ok = Raw::connect(&s.mqtt_addr);
    ok.send(&pkt::connect5("scram", true, 30, &[], None));
    assert_eq!(ok.packet(WAIT).unwrap()[3], 0);
}

#[test]
fn mqtt_v5_request_response_information() {
    let s = server();
    let has = |ack: &[u8], text: &[u8]| ack.windows(text.len()).any(|w| w == text);
    // Request Response Information (0x19) = 1: CONNACK carries Response Information (0x1A).
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("rr-client", true, 30, &[0x19, 1], None));
    let ack = r.packet(WAIT).expect("a CONNACK");
    assert_eq!(ack[3], 0);
    assert!(has(&ack, b"\x1a\x00\x13response/rr-client/"), "{ack:?}");
    // Not asked: none.
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("rr-quiet", true, 30, &[], None));
    let ack = r.packet(WAIT).expect("a CONNACK");
    assert!(!has(&ack, b"response/"), "{ack:?}");
    // The base works as a response topic: a requester subscribed under it gets the answer.
    let mut requester = Client::v5(&s.mqtt_addr, "rr-requester", true);
    requester.sub("response/rr-requester/#", 1);
    let mut responder = Client::v5(&s.mqtt_addr, "rr-responder", true);
    responder.publish("response/rr-requester/42", 1, false, b"answer");
    assert_eq!(requester.expect().text(), "answer");
}
