//! One node of three is cut off for 5 s (`MICROLITH_TEST_PARTITION_SECS` lengthens it for a
//! soak; long and repeated partitions are the simulator's, `tests/replication_sim`) while both sides keep writing the same keys; before the cut heals, each side
//! writes one key last, so both sides hold winners. After healing, every node holds the same
//! winner for every key: the write with the highest HLC version among all that were
//! acknowledged anywhere.

mod common;
use common::cluster::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEYS: usize = 20;

/// Key → every acknowledged (version, stored body; empty for a delete).
type Acked = BTreeMap<String, Vec<((u64, u16), String)>>;

#[test]
fn partitioned_writers_converge_to_the_highest_version() {
    let c = Cluster::start(Opts::nodes(&[2, 1, 1]));
    c.wait_linked(Duration::from_secs(20));
    c.isolate(2);
    // (key → every acknowledged (version, body)).
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let ws: Vec<_> = (0..3)
        .map(|n| {
            let (base, acked, stop) = (c.nodes[n].url("/Product/"), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let a = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(5))
                    .build();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let k = format!("k{}", i as usize % KEYS);
                    let body = format!(r#"{{"by":{n},"i":{i},"id":"{k}"}}"#);
                    let r = if i % 11 == 5 {
                        a.delete(&format!("{base}{k}")).call()
                    } else {
                        a.put(&format!("{base}{k}"))
                            .set("Content-Type", "application/json")
                            .send_string(&body)
                    };
                    if let Ok(r) = r {
                        if let Some(etag) = r.header("etag") {
                            let stored = if i % 11 == 5 { String::new() } else { body };
                            acked
                                .lock()
                                .unwrap()
                                .entry(k)
                                .or_default()
                                .push((version(etag), stored));
                        }
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    let cut = std::env::var("MICROLITH_TEST_PARTITION_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    std::thread::sleep(Duration::from_secs(cut));
    stop.store(true, Ordering::Relaxed);
    for w in ws {
        w.join().unwrap();
    }
    // The cut-off node did not see the others' writes, nor they its.
    assert_ne!(c.digest(0), c.digest(2), "the cut node must have diverged");
    let st = fetch(&c.nodes[2].url("/status")).json();
    assert!(
        st["cluster"]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["inbound"]["state"] != "connected"),
        "the cut node's links are down: {st}"
    );
    // Still cut, each side writes one key last: the cut node k0, node 1 k1, each time until
    // its write's version is above every acknowledged one of that key. So whatever the
    // timing, both sides of the partition hold winners, which the other side must take.
    let mut acked = std::mem::take(&mut *acked.lock().unwrap());
    for (n, k) in [(2, "k0"), (0, "k1")] {
        let newest = acked
            .get(k)
            .and_then(|w| w.iter().map(|(v, _)| *v).max())
            .unwrap_or_default();
        let body = format!(r#"{{"by":{n},"i":"last","id":"{k}"}}"#);
        let url = c.nodes[n].url(&format!("/Product/{k}"));
        let mut tries = 0;
        loop {
            let r = cput(&url, &body);
            let etag = r
                .etag
                .unwrap_or_else(|| panic!("PUT {url}: {} {}", r.status, r.body));
            let v = version(&etag);
            acked
                .entry(k.to_string())
                .or_default()
                .push((v, body.clone()));
            if v > newest {
                break;
            }
            tries += 1;
            assert!(
                tries < 100,
                "node {}: no write to {k} above {newest:?}",
                n + 1
            );
        }
    }
    c.heal();
    c.wait_converged(Duration::from_secs(30));
    assert_eq!(acked.len(), KEYS, "every key was written");
    // The winners come from both sides (k0 from the cut node, k1 from the others at least),
    // so one side taking everything cannot pass the checks below.
    let won_by_cut_node: Vec<&str> = acked
        .iter()
        .filter(|(_, w)| w.iter().map(|(v, _)| v).max().unwrap().1 == 3)
        .map(|(k, _)| k.as_str())
        .collect();
    assert!(
        won_by_cut_node.contains(&"k0") && !won_by_cut_node.contains(&"k1"),
        "winners from both sides expected; the cut node won {won_by_cut_node:?}"
    );
    for (k, writes) in acked.iter() {
        let (winner, body) = writes.iter().max_by_key(|(v, _)| *v).unwrap();
        for (node, (status, etag, got)) in c
            .read_everywhere(&format!("/Product/{k}"))
            .into_iter()
            .enumerate()
        {
            if body.is_empty() {
                assert_eq!(
                    status,
                    404,
                    "node {}: {k} should be deleted (winner {winner:?})",
                    node + 1
                );
            } else {
                assert_eq!(status, 200, "node {}: {k}", node + 1);
                assert_eq!(version(&etag.unwrap()), *winner, "node {}: {k}", node + 1);
                assert_eq!(&got, body, "node {}: {k}", node + 1);
            }
        }
    }
}
