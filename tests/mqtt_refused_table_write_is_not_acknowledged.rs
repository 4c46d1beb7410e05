//! A retained QoS 1 publish to a table topic that the owner's writer refuses (its queue is
//! full) must not be acknowledged to a 3.1.1 client: its PUBACK has no reason code, so a
//! PUBACK says the record is written. (A 5.0 client is told with reason 0x97.) HTTP writers
//! keep a one-shard server's small write queue full (they get 503s) while a 3.1.1 client
//! publishes; every record it got a PUBACK for must exist.

mod common;
use common::mqtt::{pkt, Raw};
use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HTTP_WRITERS: usize = 48;

#[test]
fn a_refused_table_write_gets_no_puback_on_3_1_1() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("microlith.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\ndata_dir = {:?}\nwrite_queue_depth = 16\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[shards]\ncount = 1\n\n{PRODUCT_TABLE}",
            data.display().to_string()
        ),
    )
    .unwrap();
    let s = Server::start_with_config(tmp.path(), &cfg, &data).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..HTTP_WRITERS)
        .map(|w| {
            let (base, stop, refused) = (s.url("/Product/"), stop.clone(), refused.clone());
            std::thread::spawn(move || {
                let a = agent();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = send(&a, "PUT", &format!("{base}h{w}-{n}"), Some("{}"), &[]);
                    if r.status == 503 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            })
        })
        .collect();

    let mut c = Raw::connect(&s.mqtt_addr);
    c.send(&pkt::connect(4, "busy-pub", true, 60, None));
    assert_eq!(
        c.packet(Duration::from_secs(10)).unwrap(),
        vec![0x20, 2, 0, 0]
    );
    let mut acked = Vec::new();
    let mut closed_unacknowledged = false;
    let started = Instant::now();
    let mut n = 0u16;
    while started.elapsed() < Duration::from_secs(3) {
        n += 1;
        let id = format!("q{n}");
        c.send(&pkt::publish(
            4,
            &format!("Product/{id}"),
            1,
            n,
            br#"{"v":1}"#,
            true,
            false,
        ));
        match c.packet_of(pkt::PUBACK, Duration::from_secs(10)) {
            Some(p) => {
                assert_eq!(u16::from_be_bytes([p[2], p[3]]), n);
                acked.push(id);
            }
            None => {
                // Disconnected unacknowledged (the queue was full): it may be sent again.
                closed_unacknowledged = true;
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let refused = refused.load(Ordering::Relaxed);
    // The queue was full at some point: an HTTP write got 503, or the publish itself was
    // refused (which can happen before any HTTP writer sees a 503).
    assert!(
        refused > 0 || closed_unacknowledged,
        "the write queue never filled: no HTTP write got 503 and every publish was acknowledged"
    );
    let a = agent();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| get(&a, &s.url(&format!("/Product/{id}"))).status != 200)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} PUBACK'd table writes are not stored (HTTP got {refused} 503s meanwhile): {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
}
