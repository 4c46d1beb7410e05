//! The bounds on MQTT state that grows with clients: the number of persistent sessions kept
//! on disk, and the bytes of MQTT state waiting for the writers (publishers wait at the
//! bound, nothing is lost).

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::time::Duration;

fn stats(s: &Server) -> serde_json::Value {
    get(&agent(), &s.url("/status")).json()["mqtt"].clone()
}

/// The CONNACK return code (3.1.1) or reason code (5.0) of a CONNECT sent on a new socket.
fn connack_code(s: &Server, connect: &[u8]) -> (Raw, u8) {
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(connect);
    let ack = r.packet_of(2, WAIT).expect("CONNACK");
    let code = ack[3];
    (r, code)
}

#[test]
fn persistent_sessions_past_the_bound_are_refused_and_clean_ones_still_connect() {
    let s = Server::start("[shards]\ncount = 2\n[mqtt]\nmax_persistent_sessions = 2\n");
    let (_a, code) = connack_code(&s, &pkt::connect(4, "keep-a", false, 30, None));
    assert_eq!(code, 0);
    let (_b, code) = connack_code(&s, &pkt::connect5_expiry("keep-b", true, 3600));
    assert_eq!(code, 0);
    // A third persistent session: 3.1.1 "server unavailable", 5.0 "quota exceeded".
    let (_c, code) = connack_code(&s, &pkt::connect(4, "keep-c", false, 30, None));
    assert_eq!(code, 3);
    let (_d, code) = connack_code(&s, &pkt::connect5_expiry("keep-d", true, 3600));
    assert_eq!(code, 0x97);
    // Sessions that end with their connection are not bounded by it.
    let (_e, code) = connack_code(&s, &pkt::connect(4, "clean-e", true, 30, None));
    assert_eq!(code, 0);
    // Taking over a stored session is not a new one.
    let (_a2, code) = connack_code(&s, &pkt::connect(4, "keep-a", false, 30, None));
    assert_eq!(code, 0);
    let st = stats(&s);
    assert_eq!(st["persistent_sessions"], 2, "{st}");
    assert_eq!(st["sessions_refused"], 2, "{st}");
    // Ending a stored session (a clean connect with its id) makes room for a new one.
    let (mut a3, code) = connack_code(&s, &pkt::connect(4, "keep-a", true, 30, None));
    assert_eq!(code, 0);
    a3.send(&pkt::disconnect());
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while stats(&s)["persistent_sessions"] != 1 {
        assert!(std::time::Instant::now() < until, "{}", stats(&s));
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_c2, code) = connack_code(&s, &pkt::connect(4, "keep-c", false, 30, None));
    assert_eq!(code, 0);
}

#[test]
fn publishers_wait_for_the_writers_at_the_persist_backlog_bound_and_nothing_is_lost() {
    // A backlog bound of one byte: every publish that finds MQTT state waiting for a writer
    // waits until the writer has taken it.
    let s = Server::start("[shards]\ncount = 2\n[mqtt]\nmax_persist_backlog_bytes = 1\n");
    // A persistent subscriber that is offline: every message is a stored copy.
    let mut sub = Client::v4(&s.mqtt_addr, "offline-sub", false);
    sub.sub("bl/#", 1);
    sub.disconnect();
    const N: usize = 300;
    let publishers: Vec<_> = (0..3)
        .map(|p| {
            let addr = s.mqtt_addr.clone();
            std::thread::spawn(move || {
                let mut c = Client::v4(&addr, &format!("pub-{p}"), true);
                for i in 0..N / 3 {
                    c.publish(&format!("bl/{p}"), 1, false, format!("{p}-{i}").as_bytes());
                }
                c.disconnect();
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    let st = stats(&s);
    assert!(st["persist_waits"].as_u64().unwrap() > 0, "{st}");
    // Every acknowledged message is queued for the session: it gets all of them.
    let mut sub = Client::v4(&s.mqtt_addr, "offline-sub", false);
    let mut got = std::collections::BTreeSet::new();
    while got.len() < N {
        match sub.recv(Duration::from_secs(10)) {
            Some(m) => {
                got.insert(m.text());
            }
            None => panic!("only {} of {N} messages arrived", got.len()),
        }
    }
    for p in 0..3 {
        for i in 0..N / 3 {
            assert!(got.contains(&format!("{p}-{i}")), "{p}-{i} missing");
        }
    }
}
