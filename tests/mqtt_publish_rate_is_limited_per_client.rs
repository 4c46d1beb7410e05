//! The publish rate of one MQTT connection: past its burst, QoS 0 publishes are dropped
//! (counted), a 5.0 client's QoS 1 publishes are answered 0x97 (quota exceeded) and not
//! delivered, and a 3.1.1 client's QoS 1 publishes are held back until the rate allows, then
//! delivered and acknowledged (nothing lost). Another client keeps its own rate.

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::time::Duration;

fn server(rate: u32, burst: u32) -> Server {
    Server::start(&format!(
        "[shards]\ncount = 1\n[limits]\nexempt = []\nmqtt_publishes_per_sec = {rate}\nmqtt_publish_burst = {burst}\n"
    ))
}

fn limits_status(s: &Server) -> serde_json::Value {
    get(&agent(), &s.url("/status")).json()["limits"].clone()
}

/// Everything `sub` receives until it has been quiet for a second.
fn drain(sub: &mut Client) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(m) = sub.recv(Duration::from_secs(1)) {
        got.push(m.text());
    }
    got
}

/// Sends `pkts` in one write, then a PINGREQ, and returns what came back up to its PINGRESP
/// (every packet before it has been handled).
fn send_all(r: &mut Raw, pkts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut bytes: Vec<u8> = pkts.concat();
    bytes.extend_from_slice(&pkt::pingreq());
    r.send(&bytes);
    let mut got = Vec::new();
    loop {
        let p = r.packet(Duration::from_secs(30)).expect("PINGRESP");
        if p[0] == 0xD0 {
            return got;
        }
        got.push(p);
    }
}

#[test]
fn qos0_publishes_past_the_rate_are_dropped_and_counted() {
    let s = server(1, 5);
    let mut sub = Client::v4(&s.mqtt_addr, "sub", true);
    sub.sub("rate/#", 0);
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "fast", true, 30, None));
    assert_eq!(r.packet(WAIT).unwrap()[0], 0x20);
    let pubs: Vec<_> = (0..20)
        .map(|i| pkt::publish(4, "rate/0", 0, 0, format!("m{i}").as_bytes(), false, false))
        .collect();
    send_all(&mut r, &pubs);
    let got = drain(&mut sub);
    assert!(
        got.len() >= 5 && got.len() < 20,
        "the burst went through, not all: {got:?}"
    );
    assert_eq!(
        got[..5],
        ["m0", "m1", "m2", "m3", "m4"],
        "the first ones are the burst"
    );
    let st = limits_status(&s);
    assert_eq!(st["mqtt_publishes_dropped"], 20 - got.len(), "{st}");
    // Another client has its own rate.
    let mut other = Client::v4(&s.mqtt_addr, "other", true);
    other.publish("rate/1", 0, false, b"other");
    assert_eq!(sub.expect().text(), "other");
}

/// (packet id, reason code) of a 5.0 PUBACK.
fn puback5(p: &[u8]) -> (u16, u8) {
    assert_eq!(p[0], 0x40, "PUBACK: {p:?}");
    let pkid = u16::from_be_bytes([p[2], p[3]]);
    (pkid, if p[1] > 2 { p[4] } else { 0 })
}

#[test]
fn qos1_past_the_rate_on_mqtt5_is_answered_0x97_and_not_delivered() {
    let s = server(1, 2);
    let mut sub = Client::v5(&s.mqtt_addr, "sub5", true);
    sub.sub("rate5/#", 1);
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("fast5", true, 30, &[], None));
    assert_eq!(r.packet(WAIT).unwrap()[0], 0x20);
    let pubs: Vec<_> = (1..=4u16)
        .map(|i| pkt::publish5("rate5/t", 1, i, format!("m{i}").as_bytes(), &[]))
        .collect();
    let acks: Vec<_> = send_all(&mut r, &pubs).iter().map(|p| puback5(p)).collect();
    assert_eq!(acks.len(), 4, "every publish is answered: {acks:?}");
    assert_eq!(&acks[..2], &[(1, 0), (2, 0)], "the burst is accepted");
    let quota: Vec<_> = acks[2..].iter().filter(|a| a.1 == 0x97).collect();
    assert!(
        !quota.is_empty(),
        "past the burst: quota exceeded: {acks:?}"
    );
    let got = drain(&mut sub);
    assert_eq!(
        got.len(),
        4 - quota.len(),
        "refused publishes are not delivered: {got:?}"
    );
    assert_eq!(limits_status(&s)["mqtt_publishes_refused"], quota.len());
}

#[test]
fn qos1_past_the_rate_on_mqtt311_is_held_back_then_delivered() {
    let s = server(2, 1);
    let mut sub = Client::v4(&s.mqtt_addr, "sub4", true);
    sub.sub("rate4/#", 1);
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "fast4", true, 30, None));
    assert_eq!(r.packet(WAIT).unwrap()[0], 0x20);
    let pubs: Vec<_> = (1..=4u16)
        .map(|i| pkt::publish(4, "rate4/t", 1, i, format!("m{i}").as_bytes(), false, false))
        .collect();
    let acks = send_all(&mut r, &pubs);
    let ids: Vec<_> = acks
        .iter()
        .map(|p| {
            assert_eq!(p[0], 0x40, "PUBACK: {p:?}");
            u16::from_be_bytes([p[2], p[3]])
        })
        .collect();
    assert_eq!(ids, [1, 2, 3, 4], "every publish is acknowledged, in order");
    let got = drain(&mut sub);
    assert_eq!(got, ["m1", "m2", "m3", "m4"], "nothing is lost");
    let st = limits_status(&s);
    assert!(st["mqtt_publishes_delayed"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(st["mqtt_publishes_dropped"], 0, "{st}");
}
