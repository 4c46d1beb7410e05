//! Every MQTT bound and what happens at it: a slow subscriber (QoS 0 dropped and counted,
//! QoS 1/2 disconnected) never blocks a publisher or other subscribers; connections per
//! shard; subscriptions per client; retained count and size.

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::time::Duration;

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

fn stats(s: &Server) -> serde_json::Value {
    get(&agent(), &s.url("/status")).json()["mqtt"].clone()
}

#[test]
fn mqtt_slow_subscriber_never_blocks_publishers() {
    let s =
        Server::start("[shards]\ncount = 2\n[mqtt]\nmax_queued_messages = 10\nmax_inflight = 4\n");
    // Two subscribers that never read nor acknowledge. The QoS 0 one gets large messages and
    // has a small receive buffer, so the kernel cannot absorb what the broker sends it.
    let mut slow0 = Raw::connect(&s.mqtt_addr);
    small_receive_buffer(&slow0);
    slow0.send(&pkt::connect(4, "slow0", true, 0, None));
    slow0.packet(WAIT).unwrap();
    slow0.send(&pkt::subscribe(4, 1, "bp/0", 0));
    slow0.packet_of(9, WAIT).unwrap();
    // The QoS 1 one gets small messages: the few its window lets out fit in its socket, so
    // the broker's writes to it never stall and only its queue bound can disconnect it.
    let mut slow1 = Raw::connect(&s.mqtt_addr);
    slow1.send(&pkt::connect(4, "slow1", true, 0, None));
    slow1.packet(WAIT).unwrap();
    slow1.send(&pkt::subscribe(4, 1, "bp/1", 1));
    slow1.packet_of(9, WAIT).unwrap();
    // A healthy subscriber of everything.
    let mut fast = Client::v4(&s.mqtt_addr, "fast", true);
    fast.sub("bp/#", 1);
    let mut p = Client::v4(&s.mqtt_addr, "bp-pub", true);
    // Enough bytes to fill the socket buffers of the QoS 0 laggard many times over.
    let large = vec![b'x'; 32 * 1024];
    for i in 0..600 {
        // Every publish is acknowledged: nothing waits on the slow readers.
        if i % 2 == 0 {
            p.publish("bp/0", 1, false, &large);
        } else {
            p.publish("bp/1", 1, false, format!("m{i}").as_bytes());
        }
        if fast.recv(WAIT).is_none() {
            panic!("message {i} not delivered: {}\n{}", stats(&s), s.log());
        }
    }
    let st = stats(&s);
    assert!(st["qos0_dropped"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st["slow_disconnects"], 1, "{st}");
    // The QoS 1 laggard was really disconnected (3.1.1: the connection is closed), having
    // been sent no more unacknowledged messages than `max_inflight` allows.
    let got = slow1.until_closed(Duration::from_secs(30));
    assert!(
        got.len() <= 4 && got.iter().all(|p| p[0] >> 4 == 3 && p[0] & 0x06 == 0x02),
        "the laggard was sent more than its window of QoS 1 PUBLISHes: {got:?}"
    );
}

#[test]
fn mqtt_connections_per_shard_bound() {
    let s = Server::start("[shards]\ncount = 1\n[mqtt]\nmax_connections_per_shard = 2\n");
    let mut a = Raw::connect(&s.mqtt_addr);
    a.send(&pkt::connect(4, "c-a", true, 30, None));
    a.packet(WAIT).unwrap();
    let mut b = Raw::connect(&s.mqtt_addr);
    b.send(&pkt::connect(4, "c-b", true, 30, None));
    b.packet(WAIT).unwrap();
    let mut c = Raw::connect(&s.mqtt_addr);
    c.send(&pkt::connect(4, "c-c", true, 30, None));
    assert!(
        c.until_closed(WAIT).is_empty(),
        "the third is closed at once"
    );
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    let mut d = Raw::connect(&s.mqtt_addr);
    d.send(&pkt::connect(4, "c-d", true, 30, None));
    assert_eq!(d.packet(WAIT).unwrap(), vec![0x20, 2, 0, 0], "room again");
}

#[test]
fn mqtt_subscriptions_per_client_bound() {
    let s = Server::start("[mqtt]\nmax_subscriptions_per_client = 2\n");
    let mut c = Client::v4(&s.mqtt_addr, "subs4", true);
    assert_eq!(c.sub("a", 0), vec![0]);
    assert_eq!(c.sub("b", 0), vec![0]);
    assert_eq!(c.sub("c", 0), vec![0x80], "3.1.1: failure");
    assert_eq!(c.sub("a", 1), vec![1], "changing an existing one is fine");
    let mut c5 = Client::v5(&s.mqtt_addr, "subs5", true);
    c5.sub("a", 0);
    c5.sub("b", 0);
    assert_eq!(c5.sub("c", 0), vec![0x97], "5.0: quota exceeded");
}

#[test]
fn mqtt_retained_bounds() {
    let s = Server::start("[mqtt]\nmax_retained_messages = 2\nmax_retained_bytes = 16");
    let mut p = Client::v4(&s.mqtt_addr, "rb-pub", true);
    p.publish("rb/1", 1, true, b"one");
    p.publish("rb/2", 1, true, b"two");
    p.publish("rb/3", 1, true, b"three");
    p.publish("rb/1", 1, true, b"one again");
    p.publish("rb/big", 1, true, &[b'x'; 64]);
    let mut c = Client::v4(&s.mqtt_addr, "rb-sub", true);
    c.sub("rb/#", 1);
    let mut got: Vec<String> = (0..2).map(|_| c.expect().text()).collect();
    got.sort();
    assert_eq!(got, vec!["one again", "two"]);
    assert!(c.recv(Duration::from_millis(300)).is_none());
    let st = stats(&s);
    assert_eq!(st["retained"], 2);
    assert_eq!(st["retained_refused"], 2, "{st}");
}
