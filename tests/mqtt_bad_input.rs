//! Bad MQTT input gets the spec's reaction — DISCONNECT with a reason code (5.0) or a closed
//! connection (3.1.1), SUBACK failures for bad filters — and leaves the server and its other
//! clients unharmed.

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;

fn server() -> Server {
    Server::start(
        "[shards]\ncount = 2\n[mqtt]\nmax_packet_bytes = 2048\nmax_retained_bytes = 1024\n",
    )
}

/// A connected raw client of the given level.
fn connected(s: &Server, level: u8, id: &str) -> Raw {
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(level, id, true, 30, None));
    assert_eq!(r.packet(WAIT).unwrap()[0], 0x20);
    r
}

/// The reason code of the DISCONNECT that preceded the close (5.0).
fn disconnect_reason(r: &mut Raw) -> Option<u8> {
    let got = r.until_closed(WAIT);
    got.iter().find(|p| p[0] == 0xE0).map(|p| p[2])
}

/// A bystander that keeps working through all of it.
fn still_serving(s: &Server, sub: &mut Client) {
    let mut p = Client::v4(&s.mqtt_addr, "checker", true);
    p.publish("by/t", 1, false, b"alive");
    assert_eq!(sub.expect().text(), "alive");
    let a = agent();
    assert_eq!(get(&a, &s.url("/health")).status, 200);
}

#[test]
fn mqtt_malformed_packets_disconnect_with_reason() {
    let s = server();
    let mut bystander = Client::v5(&s.mqtt_addr, "bystander", true);
    bystander.sub("by/t", 1);
    // A topic length running past the packet.
    let mut r = connected(&s, 5, "m1");
    r.send(&[0x30, 0x03, 0x00, 0x05, b'a']);
    assert_eq!(disconnect_reason(&mut r), Some(0x81));
    // Reserved fixed-header flags on SUBSCRIBE.
    let mut r = connected(&s, 5, "m2");
    r.send(&[0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00]);
    assert_eq!(disconnect_reason(&mut r), Some(0x81));
    // A remaining length of five bytes.
    let mut r = connected(&s, 4, "m3");
    r.send(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    r.until_closed(WAIT);
    // A 3.1.1 client just loses its connection.
    let mut r = connected(&s, 4, "m4");
    r.send(&[0x30, 0x03, 0x00, 0x05, b'a']);
    assert!(r.until_closed(WAIT).is_empty());
    still_serving(&s, &mut bystander);
}

#[test]
fn mqtt_packet_over_max_size_disconnects() {
    let s = server();
    let mut bystander = Client::v4(&s.mqtt_addr, "bystander", true);
    bystander.sub("by/t", 1);
    let mut r = connected(&s, 5, "big5");
    r.send(&pkt::publish(5, "big", 0, 0, &[0u8; 4096], false, false));
    assert_eq!(disconnect_reason(&mut r), Some(0x95));
    let mut r = connected(&s, 4, "big4");
    r.send(&pkt::publish(4, "big", 0, 0, &[0u8; 4096], false, false));
    assert!(r.until_closed(WAIT).is_empty());
    still_serving(&s, &mut bystander);
}

#[test]
fn mqtt_invalid_utf8_topic_disconnects() {
    let s = server();
    let mut bystander = Client::v4(&s.mqtt_addr, "bystander", true);
    bystander.sub("by/t", 1);
    let mut r = connected(&s, 5, "utf");
    r.send(&pkt::frame(0x30, &[0x00, 0x02, 0xff, 0xfe, 0x00, b'x']));
    assert_eq!(disconnect_reason(&mut r), Some(0x81));
    still_serving(&s, &mut bystander);
}

#[test]
fn mqtt_publish_before_connect_closes() {
    let s = server();
    let mut bystander = Client::v4(&s.mqtt_addr, "bystander", true);
    bystander.sub("by/t", 1);
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::publish(4, "by/t", 0, 0, b"sneaky", false, false));
    assert!(r.until_closed(WAIT).is_empty(), "no CONNACK, nothing");
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(b"GET / HTTP/1.1\r\n\r\n");
    assert!(r.until_closed(WAIT).is_empty());
    assert!(bystander
        .recv(std::time::Duration::from_millis(300))
        .is_none());
    still_serving(&s, &mut bystander);
}

#[test]
fn mqtt_second_connect_is_a_protocol_error() {
    let s = server();
    let mut bystander = Client::v4(&s.mqtt_addr, "bystander", true);
    bystander.sub("by/t", 1);
    let mut r = connected(&s, 5, "twice");
    r.send(&pkt::connect(5, "twice", true, 30, None));
    assert_eq!(disconnect_reason(&mut r), Some(0x82));
    let mut r = connected(&s, 4, "twice4");
    r.send(&pkt::connect(4, "twice4", true, 30, None));
    assert!(r.until_closed(WAIT).is_empty());
    still_serving(&s, &mut bystander);
}

#[test]
fn mqtt_wildcard_in_publish_topic_disconnects() {
    let s = server();
    let mut bystander = Client::v4(&s.mqtt_addr, "bystander", true);
    bystander.sub("by/t", 1);
    let mut r = connected(&s, 5, "wpub");
    r.send(&pkt::publish(5, "by/+", 0, 0, b"x", false, false));
    assert_eq!(disconnect_reason(&mut r), Some(0x90));
    assert!(bystander
        .recv(std::time::Duration::from_millis(300))
        .is_none());
    still_serving(&s, &mut bystander);
}

#[test]
fn mqtt_unsupported_protocol_level_is_refused() {
    let s = server();
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect(3, "old", true, 30, None));
    assert_eq!(r.until_closed(WAIT), vec![vec![0x20, 2, 0, 1]]);
}

#[test]
fn mqtt_random_garbage_never_harms_the_server() {
    let s = server();
    let mut bystander = Client::v4(&s.mqtt_addr, "bystander", true);
    bystander.sub("by/t", 1);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..100 {
        let mut r = if i % 2 == 0 {
            connected(&s, 4 + (i % 4 == 0) as u8, &format!("g{i}"))
        } else {
            Raw::connect(&s.mqtt_addr)
        };
        let len = (next() % 64) as usize + 1;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        r.send(&bytes);
    }
    still_serving(&s, &mut bystander);
}
