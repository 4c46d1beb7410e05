//! Open connections per client address, per shard, on each listener: past the bound a new
//! connection is closed at once (counted), other addresses still connect, and a closed
//! connection gives its place back.

mod common;
use common::mqtt::{pkt, Raw, WAIT};
use common::raw_http::{connect_from, Http};
use common::*;
use std::time::{Duration, Instant};

const CONFIG: &str = "[shards]\ncount = 1\n[limits]\nexempt = [\"127.0.0.9\"]\nhttp_connections_per_ip = 2\nmqtt_connections_per_ip = 2\n";

fn limits_status(s: &Server) -> serde_json::Value {
    Http::connect_from("127.0.0.9", &s.addr)
        .get("/status")
        .unwrap()
        .json()["limits"]
        .clone()
}

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn http_connections_past_the_per_address_bound_are_closed_at_once() {
    let s = Server::start(&format!("{PRODUCT_TABLE}\n{CONFIG}"));
    let mut first = Http::connect_from("127.0.0.1", &s.addr);
    let mut second = Http::connect_from("127.0.0.1", &s.addr);
    assert_eq!(first.get("/Product/1").unwrap().status, 404);
    assert_eq!(second.get("/Product/1").unwrap().status, 404);
    let mut third = Http::connect_from("127.0.0.1", &s.addr);
    assert!(
        third.closed_within(Duration::from_secs(10)),
        "the third is closed"
    );
    let mut elsewhere = Http::connect_from("127.0.0.2", &s.addr);
    assert_eq!(elsewhere.get("/Product/1").unwrap().status, 404);
    assert_eq!(limits_status(&s)["http_connections_refused"], 1);
    // The first one gives its place back once the server has seen it close.
    drop(first);
    eventually("a closed connection gives its place back", || {
        Http::connect_from("127.0.0.1", &s.addr)
            .get("/Product/1")
            .is_some_and(|a| a.status == 404)
    });
    assert_eq!(second.get("/Product/1").unwrap().status, 404);
}

fn mqtt_from(src: &str, s: &Server, id: &str) -> Raw {
    let mut r = Raw::from_stream(connect_from(src, &s.mqtt_addr));
    r.send(&pkt::connect(4, id, true, 30, None));
    r
}

#[test]
fn mqtt_connections_past_the_per_address_bound_are_closed_at_once() {
    let s = Server::start(CONFIG);
    let mut a = mqtt_from("127.0.0.1", &s, "a");
    let mut b = mqtt_from("127.0.0.1", &s, "b");
    assert_eq!(a.packet(WAIT).unwrap()[0], 0x20, "CONNACK");
    assert_eq!(b.packet(WAIT).unwrap()[0], 0x20, "CONNACK");
    let mut c = mqtt_from("127.0.0.1", &s, "c");
    assert!(c.until_closed(WAIT).is_empty(), "closed without a CONNACK");
    let mut d = mqtt_from("127.0.0.2", &s, "d");
    assert_eq!(d.packet(WAIT).unwrap()[0], 0x20, "another address connects");
    assert_eq!(limits_status(&s)["mqtt_connections_refused"], 1);
    a.send(&pkt::disconnect());
    drop(a);
    eventually("a closed MQTT connection gives its place back", || {
        let mut e = mqtt_from("127.0.0.1", &s, "e");
        e.packet(Duration::from_secs(2))
            .is_some_and(|p| p[0] == 0x20)
    });
}
