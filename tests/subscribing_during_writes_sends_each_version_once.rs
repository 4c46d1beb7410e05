//! A subscription made while its record is being written gets the current value and then
//! each later change exactly once, in order: its first batch never repeats a live change it
//! raced with, nor a live change the first batch already held. Checked over MQTT, SSE and
//! WebSocket while a writer changes the record as fast as it can.

mod common;
use common::mqtt::Client;
use common::sse::Sse;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Keeps PUTting `{"n": i}` with rising `i` until stopped.
fn writer(s: &Server, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let url = s.url("/Product/hot");
    std::thread::spawn(move || {
        let a = agent();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            put(&a, &url, &format!(r#"{{"n":{n}}}"#));
        }
    })
}

/// The `n`s a subscriber saw rise strictly: no repeat, no step back.
fn strictly_rising(seen: &[u64], how: &str) {
    assert!(seen.len() >= 2, "{how}: too few events: {seen:?}");
    for w in seen.windows(2) {
        assert!(w[0] < w[1], "{how}: {} then {} in {seen:?}", w[0], w[1]);
    }
}

#[test]
fn subscribers_racing_a_writer_see_each_version_once_in_order() {
    let s = Server::start(&format!("[shards]\ncount = 2\n{PRODUCT_TABLE}"));
    put(&agent(), &s.url("/Product/hot"), r#"{"n":0}"#);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&s, stop.clone());
    for round in 0..10 {
        let mut c = Client::v4(&s.mqtt_addr, &format!("racer-{round}"), true);
        c.sub("Product/hot", 1);
        let mut seen = Vec::new();
        while seen.len() < 30 {
            let m = c
                .recv(Duration::from_secs(10))
                .expect("a change within 10 s");
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            seen.push(v["n"].as_u64().unwrap());
        }
        strictly_rising(&seen, &format!("mqtt round {round}"));
        c.disconnect();

        let mut sse = Sse::open(&s.addr, "/Product/hot", None);
        let seen: Vec<u64> = (0..30)
            .map(|_| sse.next().2["value"]["n"].as_u64().unwrap())
            .collect();
        strictly_rising(&seen, &format!("sse round {round}"));
    }
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
}
