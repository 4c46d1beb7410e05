//! MQTT state that must survive a restart of the server: retained messages, persistent
//! sessions with their subscriptions and offline queues, and QoS 2 in-flight state on both
//! sides of the broker (exactly once across the restart), 5.0 subscription identifiers; and the
//! offline queue's bound.

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;

const TWO_SHARDS: &str = "[shards]\ncount = 2\n";

#[test]
fn mqtt_retained_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::start_at(tmp.path(), &data, TWO_SHARDS).unwrap();
    let mut p = Client::v4(&s.mqtt_addr, "rr-pub", true);
    for i in 0..10 {
        p.publish(&format!("rr/{i}"), 1, true, format!("v{i}").as_bytes());
    }
    p.publish("rr/3", 1, true, b"");
    assert!(s.stop().success());
    let s = Server::start_at(tmp.path(), &data, TWO_SHARDS).unwrap();
    let mut c = Client::v4(&s.mqtt_addr, "rr-sub", true);
    c.sub("rr/#", 1);
    let mut got: Vec<String> = (0..9).map(|_| c.expect()).map(|m| m.text()).collect();
    got.sort();
    let mut want: Vec<String> = (0..10)
        .filter(|i| *i != 3)
        .map(|i| format!("v{i}"))
        .collect();
    want.sort();
    assert_eq!(got, want);
    let a = agent();
    assert_eq!(get(&a, &s.url("/status")).json()["mqtt"]["retained"], 9);
}

#[test]
fn mqtt_persistent_session_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::start_at(tmp.path(), &data, TWO_SHARDS).unwrap();
    let mut c = Client::v4(&s.mqtt_addr, "ps-sub", false);
    c.sub("ps/#", 1);
    c.disconnect();
    let mut p = Client::v4(&s.mqtt_addr, "ps-pub", true);
    for i in 0..5 {
        p.publish(&format!("ps/{i}"), 1, false, i.to_string().as_bytes());
    }
    assert!(s.stop().success());
    let s = Server::start_at(tmp.path(), &data, TWO_SHARDS).unwrap();
    let mut c = Client::v4(&s.mqtt_addr, "ps-sub", false);
    assert!(c.present, "the session survived");
    let got: Vec<String> = (0..5).map(|_| c.expect().text()).collect();
    assert_eq!(
        got,
        vec!["0", "1", "2", "3", "4"],
        "the offline queue, in order"
    );
    let mut p = Client::v4(&s.mqtt_addr, "ps-pub", true);
    p.publish("ps/after", 1, false, b"after");
    assert_eq!(c.expect().text(), "after", "and its subscription");
}

#[test]
fn mqtt_qos2_exactly_once_across_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::start_at(tmp.path(), &data, TWO_SHARDS).unwrap();
    // Subscriber: persistent, QoS 2.
    let mut sub = Raw::connect(&s.mqtt_addr);
    sub.send(&pkt::connect(4, "x2-sub", false, 60, None));
    sub.packet(WAIT).unwrap();
    sub.send(&pkt::subscribe(4, 1, "x2/t", 2));
    sub.packet_of(9, WAIT).unwrap();
    // Publisher: persistent; PUBLISH, PUBREC received, PUBREL not sent yet.
    let mut publ = Raw::connect(&s.mqtt_addr);
    publ.send(&pkt::connect(4, "x2-pub", false, 60, None));
    publ.packet(WAIT).unwrap();
    publ.send(&pkt::publish(4, "x2/t", 2, 5, b"exactly", false, false));
    assert_eq!(publ.packet(WAIT).unwrap(), pkt::ack(pkt::PUBREC, 5));
    // The subscriber gets it, answers PUBREC, gets PUBREL, and does not complete.
    let got = sub.packet_of(3, WAIT).unwrap();
    let (_, payload, qos, _, pkid) = pkt::parse_publish(&got, 4);
    assert_eq!((payload.as_slice(), qos), (&b"exactly"[..], 2));
    sub.send(&pkt::ack(pkt::PUBREC, pkid));
    assert_eq!(sub.packet(WAIT).unwrap(), pkt::ack(pkt::PUBREL, pkid));
    drop((sub, publ));
    assert!(s.stop().success());

    let s = Server::start_at(tmp.path(), &data, TWO_SHARDS).unwrap();
    // The publisher resends its PUBLISH (DUP): acknowledged, not delivered again.
    let mut publ = Raw::connect(&s.mqtt_addr);
    publ.send(&pkt::connect(4, "x2-pub", false, 60, None));
    assert_eq!(publ.packet(WAIT).unwrap(), vec![0x20, 2, 1, 0]);
    publ.send(&pkt::publish(4, "x2/t", 2, 5, b"exactly", false, true));
    assert_eq!(publ.packet(WAIT).unwrap(), pkt::ack(pkt::PUBREC, 5));
    publ.send(&pkt::ack(pkt::PUBREL, 5));
    assert_eq!(publ.packet(WAIT).unwrap(), pkt::ack(pkt::PUBCOMP, 5));
    // The subscriber gets the PUBREL again, not the message.
    let mut sub = Raw::connect(&s.mqtt_addr);
    sub.send(&pkt::connect(4, "x2-sub", false, 60, None));
    assert_eq!(sub.packet(WAIT).unwrap(), vec![0x20, 2, 1, 0]);
    assert_eq!(sub.packet(WAIT).unwrap(), pkt::ack(pkt::PUBREL, pkid));
    sub.send(&pkt::ack(pkt::PUBCOMP, pkid));
    publ.send(&pkt::publish(4, "x2/t", 1, 6, b"marker", false, false));
    let next = sub.packet_of(3, WAIT).unwrap();
    assert_eq!(pkt::parse_publish(&next, 4).1, b"marker", "no second copy");
}

#[test]
fn mqtt_offline_queue_bound_drops_new_and_counts() {
    let s = Server::start(&format!("{TWO_SHARDS}[mqtt]\nmax_offline_messages = 3\n"));
    let mut c = Client::v4(&s.mqtt_addr, "bound-sub", false);
    c.sub("bound/t", 1);
    c.disconnect();
    let mut p = Client::v4(&s.mqtt_addr, "bound-pub", true);
    for i in 0..5 {
        p.publish("bound/t", 1, false, i.to_string().as_bytes());
    }
    let mut c = Client::v4(&s.mqtt_addr, "bound-sub", false);
    let got: Vec<String> = (0..3).map(|_| c.expect().text()).collect();
    assert_eq!(
        got,
        vec!["0", "1", "2"],
        "the oldest are kept, new ones dropped"
    );
    p.publish("bound/t", 1, false, b"live");
    assert_eq!(c.expect().text(), "live");
    let a = agent();
    assert_eq!(
        get(&a, &s.url("/status")).json()["mqtt"]["offline_dropped"],
        2
    );
}

#[test]
fn mqtt_shutdown_tells_clients() {
    let mut s = Server::start(TWO_SHARDS);
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(5, "bye", true, 30, None));
    r.packet(WAIT).unwrap();
    assert!(s.stop().success());
    let got = r.until_closed(WAIT);
    assert_eq!(
        got.last().map(|p| (p[0], p[2])),
        Some((0xE0, 0x8B)),
        "server shutting down"
    );
}

#[test]
fn mqtt_state_moves_with_a_shard_count_change() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let one = "[shards]\ncount = 1\n";
    let mut s = Server::start_at(tmp.path(), &data, one).unwrap();
    let mut p = Client::v4(&s.mqtt_addr, "mv-pub", true);
    for i in 0..20 {
        p.publish(&format!("mv/{i}"), 1, true, format!("v{i}").as_bytes());
    }
    // A persistent session with a subscription and a message queued while it is away.
    let mut c = Client::v4(&s.mqtt_addr, "mv-sub", false);
    c.sub("away/#", 1);
    c.disconnect();
    p.publish("away/x", 1, false, b"queued");
    assert!(s.stop().success());

    let s = Server::start_at(tmp.path(), &data, TWO_SHARDS).unwrap();
    let mut r = Client::v4(&s.mqtt_addr, "mv-reader", true);
    r.sub("mv/#", 1);
    let mut got: Vec<String> = (0..20).map(|_| r.expect().text()).collect();
    got.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(got, want, "retained messages moved to their new shards");
    let mut c = Client::v4(&s.mqtt_addr, "mv-sub", false);
    assert_eq!(
        c.expect().text(),
        "queued",
        "the session and its queue moved with it"
    );
}

#[test]
fn mqtt_subscription_identifiers_survive_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::start_at(tmp.path(), &data, TWO_SHARDS).unwrap();
    let persistent = |o: &mut rumqttc::v5::MqttOptions| {
        o.set_session_expiry_interval(Some(600));
    };
    let mut c = Client::v5_with(&s.mqtt_addr, "sidr-sub", false, persistent);
    c.sub_with_id("sidr/#", 1, 42);
    c.disconnect();
    let mut p = Client::v5(&s.mqtt_addr, "sidr-pub", true);
    p.publish("sidr/queued", 1, false, b"queued");
    assert!(s.stop().success());
    let s = Server::start_at(tmp.path(), &data, TWO_SHARDS).unwrap();
    let mut c = Client::v5_with(&s.mqtt_addr, "sidr-sub", false, persistent);
    assert!(c.present, "the session survived");
    let m = c.expect();
    assert_eq!((m.text().as_str(), m.sub_ids), ("queued", vec![42]));
    let mut p = Client::v5(&s.mqtt_addr, "sidr-pub", true);
    p.publish("sidr/live", 1, false, b"live");
    let m = c.expect();
    assert_eq!((m.text().as_str(), m.sub_ids), ("live", vec![42]));
}
