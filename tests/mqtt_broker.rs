//! MQTT broker scenarios, one per protocol feature, against the real binary with two shards
//! and independent clients (rumqttc 3.1.1 and 5.0, and a raw byte-level client).

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::time::Duration;

const TWO_SHARDS: &str = "[shards]\ncount = 2\n";

fn server() -> Server {
    Server::start(TWO_SHARDS)
}

#[test]
fn mqtt_connect_clean_session_v4() {
    let s = server();
    let mut c = Client::v4(&s.mqtt_addr, "keep-1", false);
    assert!(!c.present, "first connect has no session");
    c.sub("cs/+", 1);
    c.disconnect();
    let c = Client::v4(&s.mqtt_addr, "keep-1", false);
    assert!(c.present, "a persistent session is resumed");
    c.disconnect();
    let c = Client::v4(&s.mqtt_addr, "keep-1", true);
    assert!(!c.present, "clean session discards it");
    c.disconnect();
    let c = Client::v4(&s.mqtt_addr, "keep-1", false);
    assert!(!c.present, "and nothing was left behind");
}

#[test]
fn mqtt_clean_start_and_session_expiry_v5() {
    let s = server();
    let expiring = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_session_expiry_interval(Some(60));
    };
    let mut c = Client::v5_with(&s.mqtt_addr, "exp-1", false, expiring);
    c.sub("exp/t", 1);
    c.disconnect();
    let mut p = Client::v5(&s.mqtt_addr, "exp-pub", true);
    p.publish("exp/t", 1, false, b"while away");
    let mut c = Client::v5_with(&s.mqtt_addr, "exp-1", false, expiring);
    assert!(c.present);
    assert_eq!(c.expect().text(), "while away", "queued while offline");
    c.disconnect();
    // Expiry 0: the session ends with the connection.
    let c = Client::v5(&s.mqtt_addr, "exp-2", false);
    c.disconnect();
    let c = Client::v5(&s.mqtt_addr, "exp-2", false);
    assert!(!c.present);
}

#[test]
fn mqtt_client_id_takeover() {
    let s = server();
    let mut first = Client::v5(&s.mqtt_addr, "twin", true);
    let mut second = Client::v5(&s.mqtt_addr, "twin", true);
    match first.next_where(WAIT, |g| {
        matches!(
            g,
            common::mqtt::Got::Disconnect(_) | common::mqtt::Got::Error(_)
        )
    }) {
        Some(common::mqtt::Got::Disconnect(code)) => assert_eq!(code, 0x8E),
        // rumqttc reports the server's DISCONNECT as the end of its event loop.
        Some(common::mqtt::Got::Error(e)) if e.contains("SessionTakenOver") => {}
        other => panic!("first connection not taken over: {other:?}"),
    }
    second.sub("twin/t", 0);
    let mut p = Client::v4(&s.mqtt_addr, "twin-pub", true);
    p.publish("twin/t", 0, false, b"x");
    assert_eq!(second.expect().text(), "x", "the new connection works");
}

#[test]
fn mqtt_empty_client_id() {
    let s = server();
    // 3.1.1 with a clean session: accepted.
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "", true, 30, None));
    assert_eq!(r.packet(WAIT).unwrap(), vec![0x20, 2, 0, 0]);
    // 3.1.1 persistent with an empty id: identifier rejected.
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "", false, 30, None));
    assert_eq!(r.packet(WAIT).unwrap(), vec![0x20, 2, 0, 2]);
    // 5.0: the server assigns one and says which (property 0x12).
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(5, "", true, 30, None));
    let ack = r.packet(WAIT).unwrap();
    assert_eq!(ack[0], 0x20);
    assert_eq!(ack[3], 0, "accepted");
    assert!(
        ack.windows(1).any(|w| w[0] == 0x12),
        "assigned client id: {ack:?}"
    );
}

#[test]
fn mqtt_keep_alive_enforced() {
    let s = server();
    let mut quiet = Raw::connect(&s.mqtt_addr);
    quiet.send(&pkt::connect(4, "quiet", true, 1, None));
    assert_eq!(quiet.packet(WAIT).unwrap()[0], 0x20);
    // Silent past 1.5 × keep-alive: the server closes the connection.
    quiet.until_closed(Duration::from_secs(15));
    // A client that pings is answered and kept.
    let mut pinger = Raw::connect(&s.mqtt_addr);
    pinger.send(&pkt::connect(4, "pinger", true, 1, None));
    assert_eq!(pinger.packet(WAIT).unwrap()[0], 0x20);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        pinger.send(&pkt::pingreq());
        assert_eq!(pinger.packet(WAIT).unwrap(), vec![0xD0, 0]);
    }
}

#[test]
fn mqtt_wildcard_subscriptions() {
    let s = server();
    let mut c = Client::v4(&s.mqtt_addr, "wild", true);
    assert_eq!(c.sub("w/+/c", 1), vec![1]);
    assert_eq!(c.sub("x/#", 1), vec![1]);
    let mut p = Client::v4(&s.mqtt_addr, "wild-pub", true);
    for t in ["w/b/c", "w/b/d", "w/b/c/d", "x", "x/y/z", "y/x"] {
        p.publish(t, 1, false, t.as_bytes());
    }
    let mut got: Vec<String> = (0..3).map(|_| c.expect().topic).collect();
    got.sort();
    assert_eq!(got, vec!["w/b/c", "x", "x/y/z"]);
    assert!(c.recv(Duration::from_millis(500)).is_none());
}

#[test]
fn mqtt_invalid_filters_get_suback_failure() {
    let s = server();
    // rumqttc refuses to send bad filters, so these go raw.
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "bad-filter-4", true, 30, None));
    r.packet(WAIT).unwrap();
    for (pkid, f) in [(1u16, "a/#/b"), (2, "a+/b"), (3, "#/x")] {
        r.send(&pkt::subscribe(4, pkid, f, 1));
        let ack = r.packet(WAIT).unwrap();
        assert_eq!(ack, vec![0x90, 3, 0, pkid as u8, 0x80], "{f}");
    }
    r.send(&pkt::subscribe(4, 4, "ok/+", 2));
    assert_eq!(
        r.packet(WAIT).unwrap(),
        vec![0x90, 3, 0, 4, 2],
        "still fine"
    );
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(5, "bad-filter-5", true, 30, None));
    r.packet(WAIT).unwrap();
    r.send(&pkt::subscribe(5, 1, "a/b#", 1));
    assert_eq!(r.packet(WAIT).unwrap(), vec![0x90, 4, 0, 1, 0, 0x8F]);
    // A shared subscription without a filter after its group.
    r.send(&pkt::subscribe(5, 2, "$share/g", 1));
    assert_eq!(r.packet(WAIT).unwrap(), vec![0x90, 4, 0, 2, 0, 0x8F]);
}

#[test]
fn mqtt_unsubscribe_stops_delivery() {
    let s = server();
    let mut c = Client::v4(&s.mqtt_addr, "unsub", true);
    c.sub("u/t", 1);
    let mut p = Client::v4(&s.mqtt_addr, "unsub-pub", true);
    p.publish("u/t", 1, false, b"1");
    assert_eq!(c.expect().text(), "1");
    c.unsub("u/t");
    p.publish("u/t", 1, false, b"2");
    c.sub("u/other", 1);
    p.publish("u/other", 1, false, b"3");
    assert_eq!(c.expect().text(), "3", "nothing from u/t arrived before");
}

#[test]
fn mqtt_qos0_qos1_qos2_delivery() {
    let s = server();
    let mut c = Client::v4(&s.mqtt_addr, "qos-sub", true);
    c.sub("q/2", 2);
    c.sub("q/1", 1);
    let mut p = Client::v4(&s.mqtt_addr, "qos-pub", true);
    for qos in 0..=2u8 {
        p.publish("q/2", qos, false, format!("at {qos}").as_bytes());
        let m = c.expect();
        assert_eq!((m.text(), m.qos), (format!("at {qos}"), qos));
    }
    p.publish("q/1", 2, false, b"down");
    assert_eq!(c.expect().qos, 1, "delivered at the subscription's QoS");
}

#[test]
fn mqtt_qos2_exactly_once_on_resend() {
    let s = server();
    let mut sub = Client::v4(&s.mqtt_addr, "eo-sub", true);
    sub.sub("eo/t", 2);
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "eo-pub", false, 30, None));
    r.packet(WAIT).unwrap();
    r.send(&pkt::publish(4, "eo/t", 2, 9, b"once", false, false));
    assert_eq!(r.packet(WAIT).unwrap(), pkt::ack(pkt::PUBREC, 9));
    // The PUBREC was "lost": the client sends the PUBLISH again.
    r.send(&pkt::publish(4, "eo/t", 2, 9, b"once", false, true));
    assert_eq!(r.packet(WAIT).unwrap(), pkt::ack(pkt::PUBREC, 9));
    r.send(&pkt::ack(pkt::PUBREL, 9));
    assert_eq!(r.packet(WAIT).unwrap(), pkt::ack(pkt::PUBCOMP, 9));
    assert_eq!(sub.expect().text(), "once");
    // A marker after it proves nothing else was queued in between.
    r.send(&pkt::publish(4, "eo/t", 1, 10, b"marker", false, false));
    assert_eq!(
        sub.expect().text(),
        "marker",
        "the resend was not delivered twice"
    );
}

#[test]
fn mqtt_redelivery_with_dup_on_reconnect() {
    let s = server();
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "dup-sub", false, 30, None));
    r.packet(WAIT).unwrap();
    r.send(&pkt::subscribe(4, 1, "dup/t", 1));
    r.packet_of(9, WAIT).unwrap();
    let mut p = Client::v4(&s.mqtt_addr, "dup-pub", true);
    p.publish("dup/t", 1, false, b"unacked");
    let first = r.packet_of(3, WAIT).unwrap();
    let (_, payload, qos, dup, pkid) = pkt::parse_publish(&first, 4);
    assert_eq!((payload.as_slice(), qos, dup), (&b"unacked"[..], 1, false));
    drop(r); // no PUBACK
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "dup-sub", false, 30, None));
    assert_eq!(
        r.packet(WAIT).unwrap(),
        vec![0x20, 2, 1, 0],
        "session present"
    );
    let again = r.packet_of(3, WAIT).unwrap();
    let (_, payload2, _, dup2, pkid2) = pkt::parse_publish(&again, 4);
    assert_eq!((payload2, dup2, pkid2), (payload, true, pkid));
    r.send(&pkt::ack(pkt::PUBACK, pkid));
}

#[test]
fn mqtt_retained_messages() {
    let s = server();
    let mut p = Client::v4(&s.mqtt_addr, "ret-pub", true);
    p.publish("ret/a", 1, true, b"kept");
    p.publish("ret/b", 1, true, b"also");
    let mut c = Client::v4(&s.mqtt_addr, "ret-sub", true);
    c.sub("ret/+", 1);
    let mut got: Vec<(String, bool)> = (0..2)
        .map(|_| c.expect())
        .map(|m| (m.text(), m.retain))
        .collect();
    got.sort();
    assert_eq!(got, vec![("also".into(), true), ("kept".into(), true)]);
    p.publish("ret/a", 1, false, b"live");
    let live = c.expect();
    assert_eq!((live.text().as_str(), live.retain), ("live", false));
    // An empty retained payload deletes.
    p.publish("ret/a", 1, true, b"");
    assert_eq!(c.expect().payload, b"");
    let mut c2 = Client::v4(&s.mqtt_addr, "ret-sub2", true);
    c2.sub("ret/a", 1);
    assert!(c2.recv(Duration::from_millis(500)).is_none(), "deleted");
}

#[test]
fn mqtt_will_on_abnormal_disconnect() {
    let s = server();
    let mut watcher = Client::v4(&s.mqtt_addr, "will-watch", true);
    watcher.sub("will/#", 1);
    // A normal DISCONNECT discards the will.
    let mut polite = Raw::connect(&s.mqtt_addr);
    polite.send(&pkt::connect(
        4,
        "polite",
        true,
        30,
        Some(("will/polite", b"bye", 1, false)),
    ));
    polite.packet(WAIT).unwrap();
    polite.send(&pkt::disconnect());
    polite.until_closed(WAIT);
    // A dropped connection publishes it.
    let mut rude = Raw::connect(&s.mqtt_addr);
    rude.send(&pkt::connect(
        4,
        "rude",
        true,
        30,
        Some(("will/rude", b"gone", 1, false)),
    ));
    rude.packet(WAIT).unwrap();
    drop(rude);
    let m = watcher.expect();
    assert_eq!((m.topic.as_str(), m.text().as_str()), ("will/rude", "gone"));
}

#[test]
fn mqtt_overlapping_subscriptions_deliver_once_at_highest_qos() {
    let s = server();
    let mut c = Client::v4(&s.mqtt_addr, "overlap", true);
    c.sub("o/#", 0);
    c.sub("o/+", 1);
    c.sub("o/t", 2);
    let mut p = Client::v4(&s.mqtt_addr, "overlap-pub", true);
    p.publish("o/t", 2, false, b"one");
    p.publish("o/end", 0, false, b"end");
    let m = c.expect();
    assert_eq!((m.text().as_str(), m.qos), ("one", 2));
    assert_eq!(
        c.expect().text(),
        "end",
        "no second copy of the first message"
    );
}

#[test]
fn mqtt_dollar_topics_not_matched_by_leading_wildcards() {
    let s = server();
    let mut all = Client::v4(&s.mqtt_addr, "all", true);
    all.sub("#", 0);
    all.sub("+/x", 0);
    let mut sys = Client::v4(&s.mqtt_addr, "sys", true);
    sys.sub("$app/#", 0);
    let mut p = Client::v4(&s.mqtt_addr, "dollar-pub", true);
    p.publish("$app/x", 1, false, b"d");
    p.publish("plain/x", 1, false, b"p");
    assert_eq!(sys.expect().text(), "d");
    let first = all.expect();
    assert_eq!(
        first.topic, "plain/x",
        "$app/x was not delivered to # or +/x"
    );
}

#[test]
fn mqtt_cross_shard_delivery() {
    let s = server();
    let mut subs: Vec<Client> = (0..8)
        .map(|i| {
            let mut c = Client::v4(&s.mqtt_addr, &format!("x-sub-{i}"), true);
            c.sub("xs/#", 1);
            c
        })
        .collect();
    let a = agent();
    let conns = get(&a, &s.url("/status")).json()["mqtt"]["connections"].clone();
    let per: Vec<u64> = conns
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        per.iter().all(|n| *n > 0),
        "sessions on every shard: {per:?}"
    );
    let mut p = Client::v4(&s.mqtt_addr, "x-pub", true);
    for i in 0..20 {
        p.publish(&format!("xs/{i}"), 1, false, i.to_string().as_bytes());
    }
    for c in subs.iter_mut() {
        let got: Vec<String> = (0..20).map(|_| c.expect().text()).collect();
        assert_eq!(got, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
    }
}
