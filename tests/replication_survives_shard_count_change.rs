//! A node restarted with another shard count renumbers its change logs (a new layout
//! generation). Its peers' cursors on it are then void: they repair by anti-entropy instead of
//! trusting old sequence numbers, and replication goes on both ways.

mod common;
use common::cluster::*;
use std::time::Duration;

fn repairs(c: &Cluster, node: usize) -> u64 {
    fetch(&c.nodes[node].url("/status")).json()["cluster"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["repairs"].as_u64().unwrap())
        .sum()
}

#[test]
fn peers_repair_after_a_node_changes_its_shard_count() {
    let mut c = Cluster::start(Opts::nodes(&[1, 1]));
    c.wait_linked(Duration::from_secs(20));
    for i in 0..50 {
        assert_eq!(
            cput(
                &c.nodes[1].url(&format!("/Product/before-{i}")),
                r#"{"v":1}"#
            )
            .status
                / 100,
            2
        );
    }
    c.wait_converged(Duration::from_secs(20));
    let before = repairs(&c, 0);
    // Node 2 stops, is reconfigured with two shards, and comes back.
    c.kill9(1);
    let cfg = std::fs::read_to_string(&c.nodes[1].config).unwrap();
    std::fs::write(&c.nodes[1].config, cfg.replace("count = 1", "count = 2")).unwrap();
    c.boot(1);
    let ready = &c.nodes[1].s().ready;
    assert!(ready.contains("shards=2"), "{ready}");
    for i in 0..50 {
        assert_eq!(
            cput(
                &c.nodes[1].url(&format!("/Product/after-{i}")),
                r#"{"v":2}"#
            )
            .status
                / 100,
            2
        );
        assert_eq!(
            cput(
                &c.nodes[0].url(&format!("/Product/other-{i}")),
                r#"{"v":3}"#
            )
            .status
                / 100,
            2
        );
    }
    let d = c.wait_converged(Duration::from_secs(30));
    assert_eq!(d["Product"]["records"], 150, "{d}");
    assert!(
        repairs(&c, 0) > before,
        "node 1 must not trust its old cursors on node 2's renumbered logs"
    );
}
