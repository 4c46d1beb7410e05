//! A QoS 1/2 publish that the broker acknowledged (PUBACK / PUBREC) is on disk for every
//! persistent session it was queued for: kill -9 right after the last acknowledgement loses
//! none of them. Subscribers are 3.1.1 (clean session 0) and 5.0 (session expiry) sessions
//! whose client ids spread them over both shards, so copies are queued on the publisher's
//! shard and on the other one. The publisher pipelines its messages, so acknowledgements
//! leave the broker while copies of earlier messages may still be waiting to be written.

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Persistent subscribers (client ids spread them over the two shards).
const SUBSCRIBERS: usize = 12;
/// Messages published, all acknowledged before the kill.
const MESSAGES: u16 = 200;
/// Payload size: larger copies make every write slower, so a missing wait shows.
const PAYLOAD: usize = 4096;

fn config(data: &std::path::Path, durability: &str) -> String {
    // `max_inflight` lets the publisher pipeline every QoS 2 message without a PUBREL.
    format!(
        "[storage]\ndata_dir = {:?}\ndurability = \"{durability}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[shards]\ncount = 2\n\n[mqtt]\nlisten = \"127.0.0.1:0\"\nmax_inflight = 1000\n",
        data.display().to_string()
    )
}

fn sub_id(qos: u8, i: usize) -> String {
    format!("durable-sub-q{qos}-{i}")
}

/// A subscriber's connection: even ones 3.1.1 with clean session 0, odd ones 5.0 with a
/// session expiry.
fn subscriber(addr: &str, qos: u8, i: usize) -> Client {
    let id = sub_id(qos, i);
    if i.is_multiple_of(2) {
        Client::v4(addr, &id, false)
    } else {
        Client::v5_with(addr, &id, false, |o| {
            o.set_session_expiry_interval(Some(3600));
        })
    }
}

fn payload(n: u16) -> Vec<u8> {
    let mut p = format!("m{n}:").into_bytes();
    p.resize(PAYLOAD, b'x');
    p
}

fn number_of(payload: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(payload).ok()?;
    text.strip_prefix('m')?.split_once(':')?.0.parse().ok()
}

fn trial(qos: u8, durability: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg_path = tmp.path().join("microlith.toml");
    std::fs::write(&cfg_path, config(&data, durability)).unwrap();
    let mut s = Server::start_with_config(tmp.path(), &cfg_path, &data).unwrap();
    for i in 0..SUBSCRIBERS {
        let mut c = subscriber(&s.mqtt_addr, qos, i);
        assert_eq!(c.sub("durable/t", qos), vec![qos]);
        c.disconnect();
    }

    // The publisher (clean session, so nothing of its own state is written): every message
    // in one write, then every acknowledgement; kill -9 as soon as the last one is read.
    let mut publ = Raw::connect(&s.mqtt_addr);
    publ.send(&pkt::connect(4, "durable-pub", true, 60, None));
    assert_eq!(publ.packet(WAIT).unwrap(), vec![0x20, 2, 0, 0]);
    let mut burst = Vec::new();
    for n in 1..=MESSAGES {
        burst.extend(pkt::publish(
            4,
            "durable/t",
            qos,
            n,
            &payload(n),
            false,
            false,
        ));
    }
    let started = Instant::now();
    publ.send(&burst);
    let ack = if qos == 1 { pkt::PUBACK } else { pkt::PUBREC };
    let mut acked = BTreeSet::new();
    while acked.len() < MESSAGES as usize {
        let p = publ
            .packet_of(ack, WAIT)
            .unwrap_or_else(|| panic!("only {} acknowledgements", acked.len()));
        acked.insert(u16::from_be_bytes([p[2], p[3]]));
    }
    s.kill9();
    eprintln!(
        "QoS {qos}, {durability}: {} messages acknowledged in {:?}, then kill -9",
        acked.len(),
        started.elapsed()
    );
    drop(publ);

    let s = Server::start_with_config(tmp.path(), &cfg_path, &data).unwrap();
    let mut lost = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut c = subscriber(&s.mqtt_addr, qos, i);
        assert!(c.present, "{} kept its session", sub_id(qos, i));
        let mut got = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < MESSAGES as usize && Instant::now() < deadline {
            match c.recv(Duration::from_secs(3)) {
                Some(m) => {
                    assert_eq!(m.payload.len(), PAYLOAD, "a whole payload");
                    got.extend(number_of(&m.payload));
                }
                None => break,
            }
        }
        let missing: Vec<u16> = (1..=MESSAGES).filter(|n| !got.contains(n)).collect();
        if !missing.is_empty() {
            lost.push(format!(
                "{}: {} missing (first {:?})",
                sub_id(qos, i),
                missing.len(),
                &missing[..missing.len().min(5)]
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "QoS {qos}, {durability}: acknowledged messages lost after kill -9:\n{}",
        lost.join("\n")
    );
}

#[test]
fn acknowledged_qos1_copies_survive_kill9() {
    trial(1, "buffered");
}

#[test]
fn acknowledged_qos2_copies_survive_kill9() {
    trial(2, "buffered");
}

#[test]
fn acknowledged_qos1_copies_survive_kill9_sync_durability() {
    trial(1, "sync");
}
