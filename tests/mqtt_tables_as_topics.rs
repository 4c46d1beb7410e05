//! Tables as topics: `{Table}/{id}` is the record. Subscribers get the current value as a
//! retained message, then every change from any source; a retained publish writes the record;
//! a plain publish is only delivered; `{Table}/#` follows the whole table, on every shard.

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::time::Duration;

fn server() -> Server {
    Server::start(&format!("[shards]\ncount = 2\n{PRODUCT_TABLE}"))
}

fn json(m: &common::mqtt::Msg) -> serde_json::Value {
    serde_json::from_slice(&m.payload).unwrap_or_else(|e| panic!("{e}: {}", m.text()))
}

#[test]
fn rest_writes_reach_mqtt_subscribers_of_the_record() {
    let s = server();
    let a = agent();
    assert_eq!(
        put(&a, &s.url("/Product/1"), r#"{"name":"lamp","price":10}"#).status,
        201
    );
    let mut c = Client::v4(&s.mqtt_addr, "rec-sub", true);
    c.sub("Product/1", 1);
    let first = c.expect();
    assert!(
        first.retain,
        "the current value comes as a retained message"
    );
    assert_eq!(json(&first)["price"], 10);
    let r = send(
        &a,
        "PATCH",
        &s.url("/Product/1"),
        Some(r#"{"price":12}"#),
        &[],
    );
    assert_eq!(r.status, 204);
    let changed = c.expect();
    assert_eq!(
        (json(&changed)["price"].clone(), changed.retain),
        (12.into(), false)
    );
    assert_eq!(json(&changed)["name"], "lamp");
    assert_eq!(
        send(&a, "DELETE", &s.url("/Product/1"), None, &[]).status,
        200
    );
    assert_eq!(
        c.expect().payload,
        b"",
        "a delete arrives as an empty payload"
    );
}

#[test]
fn mqtt_retained_publish_writes_the_record() {
    let s = server();
    let a = agent();
    let mut p = Client::v4(&s.mqtt_addr, "rec-pub", true);
    p.publish("Product/7", 1, true, br#"{"name":"chair","price":5}"#);
    let r = get(&a, &s.url("/Product/7"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["price"], 5);
    assert_eq!(r.json()["id"], "7", "the primary key comes from the topic");
    p.publish("Product/7", 1, true, b"");
    assert_eq!(
        get(&a, &s.url("/Product/7")).status,
        404,
        "an empty payload deletes"
    );
}

#[test]
fn mqtt_plain_publish_to_a_record_topic_only_delivers() {
    let s = server();
    let a = agent();
    let mut c = Client::v4(&s.mqtt_addr, "plain-sub", true);
    c.sub("Product/9", 1);
    let mut p = Client::v4(&s.mqtt_addr, "plain-pub", true);
    p.publish("Product/9", 1, false, br#"{"price":1}"#);
    assert_eq!(json(&c.expect())["price"], 1);
    assert_eq!(get(&a, &s.url("/Product/9")).status, 404, "not written");
}

#[test]
fn mqtt_invalid_json_retained_publish_is_refused() {
    let s = server();
    let a = agent();
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(5, "bad-json", true, 30, None));
    r.packet(WAIT).unwrap();
    r.send(&pkt::publish(
        5,
        "Product/3",
        1,
        1,
        b"not json",
        true,
        false,
    ));
    let ack = r.packet(WAIT).unwrap();
    assert_eq!(
        ack,
        vec![0x40, 3, 0, 1, 0x99],
        "PUBACK payload format invalid"
    );
    r.send(&pkt::publish(
        5,
        "Product/3",
        1,
        2,
        br#"{"id":"4"}"#,
        true,
        false,
    ));
    assert_eq!(
        r.packet(WAIT).unwrap()[4],
        0x99,
        "a primary key naming another record"
    );
    assert_eq!(get(&a, &s.url("/Product/3")).status, 404);
    // 3.1.1 has no reason code to say so: the connection closes without a PUBACK.
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(4, "bad-json-311", true, 30, None));
    r.packet(WAIT).unwrap();
    r.send(&pkt::publish(
        4,
        "Product/5",
        1,
        1,
        b"not json",
        true,
        false,
    ));
    let got = r.until_closed(WAIT);
    assert!(
        got.iter().all(|p| p[0] >> 4 != 4),
        "no PUBACK for a write that did not happen: {got:?}"
    );
    assert_eq!(get(&a, &s.url("/Product/5")).status, 404);
}

#[test]
fn mqtt_table_wildcard_follows_the_whole_table_on_every_shard() {
    let s = server();
    let a = agent();
    for i in 0..5 {
        put(&a, &s.url(&format!("/Product/old{i}")), r#"{"v":0}"#);
    }
    let mut subs: Vec<Client> = (0..6)
        .map(|i| {
            let mut c = Client::v4(&s.mqtt_addr, &format!("tbl-{i}"), true);
            c.sub("Product/#", 1);
            c
        })
        .collect();
    let conns = get(&a, &s.url("/status")).json()["mqtt"]["connections"].clone();
    assert!(
        conns
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.as_u64().unwrap() > 0),
        "{conns}"
    );
    for c in subs.iter_mut() {
        let mut snap: Vec<String> = (0..5).map(|_| c.expect()).map(|m| m.topic).collect();
        snap.sort();
        let want: Vec<String> = (0..5).map(|i| format!("Product/old{i}")).collect();
        assert_eq!(snap, want, "the table's records first");
    }
    for i in 0..20 {
        put(
            &a,
            &s.url(&format!("/Product/n{i}")),
            &format!(r#"{{"v":{i}}}"#),
        );
    }
    for c in subs.iter_mut() {
        let mut got: Vec<i64> = (0..20)
            .map(|_| json(&c.expect())["v"].as_i64().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        assert!(c.recv(Duration::from_millis(100)).is_none());
    }
}
