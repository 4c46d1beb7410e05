//! Links refuse what they cannot trust: a node with the wrong secret is refused and logged and
//! gets nothing; garbage and an oversized frame sent to the peer port close the connection;
//! a corrupted, a garbage (valid checksum, invalid archive), a truncated and an oversized frame
//! on an authenticated link close it, are logged and are never applied; the node keeps serving
//! and the link recovers once the fault is gone.

mod common;
use common::cluster::*;
use common::proxy::Fault;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn healthy(url: &str) -> bool {
    fetch(url).status == 200
}

/// Writes raw bytes to a peer port and tells whether the node closed the connection.
fn closes_after(addr: &str, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a Refuse frame may come first
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn wrong_secret_is_refused_and_gets_nothing() {
    let c = Cluster::start(Opts::nodes(&[1, 1]));
    c.wait_linked(Duration::from_secs(20));
    // An intruder that knows the address but not the secret.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("m.toml");
    std::fs::write(
        &cfg,
        node_config(
            2,
            &data,
            1,
            &[c.nodes[0].peer_addr.clone()],
            "not-the-cluster-secret!!",
            "",
            "",
        ),
    )
    .unwrap();
    let intruder = Server::start_with_config(tmp.path(), &cfg, &data).unwrap();
    assert_eq!(
        cput(&c.nodes[0].url("/Product/secret-1"), r#"{"x":1}"#).status / 100,
        2
    );
    wait_for(
        "the refusal in node 1's log",
        Duration::from_secs(10),
        || c.log(0).contains("wrong secret"),
    );
    wait_for(
        "the intruder to report the refusal",
        Duration::from_secs(10),
        || {
            let st = fetch(&intruder.url("/status")).json();
            st["cluster"]["peers"][0]["inbound"]["state"] == "refused"
        },
    );
    let st = fetch(&c.nodes[0].url("/status")).json();
    assert!(
        st["cluster"]["refused_links"].as_u64().unwrap() >= 1,
        "{st}"
    );
    // The cluster itself still replicates; the intruder never got the record.
    wait_for(
        "replication between the real nodes",
        Duration::from_secs(10),
        || fetch(&c.nodes[1].url("/Product/secret-1")).status == 200,
    );
    assert_eq!(fetch(&intruder.url("/Product/secret-1")).status, 404);
    assert!(healthy(&c.nodes[0].url("/health")));
}

#[test]
fn unauthenticated_garbage_and_oversized_frames_are_dropped() {
    let c = Cluster::start(Opts::nodes(&[1, 1]));
    let peer = c.nodes[0].peer_addr.clone();
    // Random bytes, a frame announcing 1 GiB, a valid header with a garbage payload.
    assert!(closes_after(&peer, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    let mut huge = (1u32 << 30).to_be_bytes().to_vec();
    huge.extend_from_slice(&[0; 4]);
    assert!(closes_after(&peer, &huge));
    let garbage = vec![0xffu8; 64];
    let mut frame = (garbage.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&common::proxy::crc32(&garbage).to_be_bytes());
    frame.extend_from_slice(&garbage);
    assert!(closes_after(&peer, &frame));
    assert!(healthy(&c.nodes[0].url("/health")));
    c.wait_linked(Duration::from_secs(20));
}

#[test]
fn damaged_frames_close_the_link_and_are_never_applied() {
    let c = Cluster::start(Opts::nodes(&[1, 2]));
    c.wait_linked(Duration::from_secs(20));
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(600));
    for (n, fault) in [
        Fault::Corrupt,
        Fault::Garbage,
        Fault::Truncate,
        Fault::Oversize,
    ]
    .into_iter()
    .enumerate()
    {
        // Node 1 pulls node 2's changes through this proxy.
        let p = c.proxy(0, 1);
        let done = p.faults_done();
        p.arm(fault);
        let id = format!("fault-{n}");
        assert_eq!(
            cput(&c.nodes[1].url(&format!("/Product/{id}")), &body).status / 100,
            2
        );
        wait_for(
            &format!("the proxy to inject {fault:?}"),
            Duration::from_secs(10),
            || p.faults_done() > done,
        );
        // The link is cut now: what node 1 holds is what it applied from the damaged frame.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            fetch(&c.nodes[0].url(&format!("/Product/{id}"))).status,
            404,
            "{fault:?}: the damaged frame was applied"
        );
        assert!(
            healthy(&c.nodes[0].url("/health")),
            "{fault:?}: node 1 stopped serving"
        );
        p.resume();
        wait_for(
            &format!("{id} after the link recovers from {fault:?}"),
            Duration::from_secs(15),
            || fetch(&c.nodes[0].url(&format!("/Product/{id}"))).status == 200,
        );
    }
    let log = c.log(0);
    for what in [
        "checksum mismatch",
        "archive does not validate",
        "connection ended inside a frame",
        "over the frame limit",
    ] {
        assert!(
            log.contains(what),
            "node 1's log does not say {what:?}:\n{log}"
        );
    }
    let st = fetch(&c.nodes[0].url("/status")).json();
    let bad = st["cluster"]["peers"][0]["inbound"]["bad_frames"]
        .as_u64()
        .unwrap();
    assert!(bad >= 4, "bad frames counted: {st}");
    c.wait_converged(Duration::from_secs(10));
}
