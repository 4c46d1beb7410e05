//! A table declared in a node's config and dropped at run time before the node has declared
//! it to its peers (here: one configured peer never answers, so the node waits before it
//! declares) is dropped for good: the drop is recorded, reaches the other node, and a restart
//! with the same config does not bring the table back.

mod common;
use common::cluster::*;
use std::time::Duration;

fn has_table(c: &Cluster, node: usize, table: &str) -> bool {
    fetch(&c.nodes[node].url(&format!("/admin/tables/{table}"))).status == 200
}

#[test]
fn a_dropped_config_table_stays_dropped_across_restarts() {
    let mut o = Opts::nodes(&[1, 1]);
    // Node 1 also lists a peer that never answers: it declares its tables only after 10 s.
    o.cluster[0] = "[[cluster.peers]]\naddr = \"127.0.0.1:9\"\n".into();
    o.extra[0] = "[[tables]]\nname = \"Temp\"\n".into();
    let mut c = Cluster::start(o);
    assert!(has_table(&c, 0, "Temp"));
    let r = call("DELETE", &c.nodes[0].url("/admin/tables/Temp"), None, &[]);
    assert_eq!(r.status, 204, "{}", r.body);
    // The drop went out although nothing had declared the table: node 2 holds its tombstone.
    wait_for("the drop to reach node 2", Duration::from_secs(10), || {
        c.digest(1)["_schema"]["tombstones"].as_u64() == Some(1)
    });
    // Restarted with the same config, node 1 takes the cluster's word over its declaration.
    c.kill9(0);
    c.boot(0);
    wait_for("node 1 to drop Temp again", Duration::from_secs(10), || {
        !has_table(&c, 0, "Temp")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(!has_table(&c, 0, "Temp") && !has_table(&c, 1, "Temp"));
}
