//! A subscriber that stops reading while large messages arrive pins no more memory than its
//! byte budget (`mqtt.max_queued_bytes`): the server's resident memory, read from
//! /proc/PID/status, stays under a bound derived from the config while 150 MiB of QoS 0
//! messages go to it, and the drops are counted.

mod common;
use common::mqtt::{pkt, Raw, WAIT};
use common::*;
use std::time::Duration;

/// The resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

fn small_receive_buffer(r: &Raw) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: a valid socket and a pointer to an int of the size given.
    unsafe {
        libc::setsockopt(
            r.s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[test]
fn a_stalled_subscriber_of_large_messages_pins_at_most_its_byte_budget() {
    let s = Server::start("[shards]\ncount = 1\n[mqtt]\nmax_queued_bytes = 8388608\n");
    let before = rss_mib(s.pid());
    let mut stalled = Raw::connect(&s.mqtt_addr);
    small_receive_buffer(&stalled);
    stalled.send(&pkt::connect(4, "stalled", true, 0, None));
    stalled.packet(WAIT).unwrap();
    stalled.send(&pkt::subscribe(4, 1, "big/t", 0));
    stalled.packet_of(9, WAIT).unwrap();
    // It never reads again. 300 messages of 512 KiB: 150 MiB.
    let mut publisher = Raw::connect(&s.mqtt_addr);
    publisher.send(&pkt::connect(4, "pub", true, 0, None));
    publisher.packet(WAIT).unwrap();
    let payload = vec![b'x'; 512 * 1024];
    let mut peak = before;
    for i in 0..300 {
        publisher.send(&pkt::publish(4, "big/t", 0, 0, &payload, false, false));
        if i % 20 == 0 {
            peak = peak.max(rss_mib(s.pid()));
        }
    }
    // A ping answered means every publish before it was routed.
    publisher.send(&pkt::pingreq());
    publisher
        .packet_of(13, Duration::from_secs(30))
        .expect("PINGRESP");
    peak = peak.max(rss_mib(s.pid()));
    let dropped = get(&agent(), &s.url("/status")).json()["mqtt"]["qos0_dropped"]
        .as_u64()
        .unwrap();
    assert!(
        dropped > 200,
        "most of the 300 messages were dropped, not queued: {dropped}"
    );
    // The budget (8 MiB), what the kernel could not take yet, and the publisher's buffers:
    // far below the 150 MiB a count-only bound (1000 messages) would have queued.
    assert!(
        peak < before + 64,
        "resident memory went from {before} MiB to {peak} MiB"
    );
}

#[test]
fn an_offline_session_keeps_at_most_its_byte_budget_and_delivers_what_it_kept() {
    let s = Server::start("[shards]\ncount = 1\n[mqtt]\nmax_offline_bytes = 1048576\n");
    let mut sub = Raw::connect(&s.mqtt_addr);
    sub.send(&pkt::connect(4, "away", false, 0, None));
    sub.packet(WAIT).unwrap();
    sub.send(&pkt::subscribe(4, 1, "off/t", 1));
    sub.packet_of(9, WAIT).unwrap();
    sub.send(&pkt::disconnect());
    drop(sub);
    std::thread::sleep(Duration::from_millis(200));
    let mut publisher = Raw::connect(&s.mqtt_addr);
    publisher.send(&pkt::connect(4, "pub", true, 0, None));
    publisher.packet(WAIT).unwrap();
    let payload = vec![b'y'; 64 * 1024];
    for i in 1..=100u16 {
        publisher.send(&pkt::publish(4, "off/t", 1, i, &payload, false, false));
        publisher.packet_of(4, WAIT).expect("PUBACK");
    }
    let st = get(&agent(), &s.url("/status")).json()["mqtt"].clone();
    let dropped = st["offline_dropped"].as_u64().unwrap();
    // 1 MiB holds 15 messages of 64 KiB (each counts its topic and a fixed overhead too).
    assert!((84..=90).contains(&dropped), "{st}");
    let mut back = Raw::connect(&s.mqtt_addr);
    back.send(&pkt::connect(4, "away", false, 0, None));
    back.packet(WAIT).unwrap();
    let mut got = 0;
    while let Some(p) = back.packet_of(3, Duration::from_secs(2)) {
        let (_, _, _, _, pkid) = pkt::parse_publish(&p, 4);
        back.send(&pkt::ack(4, pkid));
        got += 1;
    }
    assert_eq!(got as u64, 100 - dropped, "every kept message is delivered");
}
