//! One node of three is cut off for 30 s (`MICROLITH_TEST_PARTITION_SECS` shortens it while
//! iterating) while both sides keep writing the same keys. After healing, every node holds
//! the same winner for every key: the write with the highest HLC version among all that were
//! acknowledged anywhere.

mod common;
use common::cluster::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEYS: usize = 20;

/// Key → every acknowledged (version, stored body; empty for a delete).
type Acked = HashMap<String, Vec<((u64, u16), String)>>;

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
        .unwrap_or(30);
    std::thread::sleep(Duration::from_secs(cut));
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
    c.heal();
    stop.store(true, Ordering::Relaxed);
    for w in ws {
        w.join().unwrap();
    }
    c.wait_converged(Duration::from_secs(30));
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), KEYS, "every key was written");
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
    // Both sides wrote during the cut, so the winners come from both sides.
    let winners_from_cut_node = acked
        .values()
        .filter(|w| w.iter().max_by_key(|(v, _)| *v).unwrap().0 .1 == 3)
        .count();
    eprintln!("{winners_from_cut_node} of {KEYS} keys won by the node that was cut off");
}
