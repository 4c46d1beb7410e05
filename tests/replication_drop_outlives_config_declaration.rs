//! A table declared in a node's config and dropped at run time before the node has declared
//! it to its peers (here: one configured peer never answers, so the node waits
//! `DECLARE_AFTER`, 10 s, before it declares) is dropped for good: the drop is recorded,
//! reaches the other node, and a restart whose config still declares the table does not
//! bring it back, neither at start nor once the restarted node has declared its tables.

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
    // Restarted with Temp still in its config, and one table more: Later, which no node has
    // declared yet, so its arrival at node 2 shows that node 1 has run its declaration step
    // (which it does only after `DECLARE_AFTER`, as the dead peer never answers).
    c.kill9(0);
    let config = std::fs::read_to_string(&c.nodes[0].config).unwrap();
    assert!(config.contains("name = \"Temp\""), "{config}");
    std::fs::write(
        &c.nodes[0].config,
        format!("{config}\n[[tables]]\nname = \"Later\"\n"),
    )
    .unwrap();
    c.boot(0);
    // Node 1 takes the cluster's word over its config at start...
    wait_for("node 1 to drop Temp again", Duration::from_secs(30), || {
        !has_table(&c, 0, "Temp")
    });
    // ...and after it has declared its tables.
    wait_for(
        "node 1 to declare its tables (Later reaching node 2)",
        Duration::from_secs(60),
        || has_table(&c, 1, "Later"),
    );
    let digest = c.wait_converged(Duration::from_secs(30));
    assert_eq!(digest["_schema"]["tombstones"], 1, "{digest}");
    for node in 0..2 {
        assert!(
            !has_table(&c, node, "Temp"),
            "node {}: Temp came back with the declaration; _schema: {}",
            node + 1,
            digest["_schema"]
        );
    }
}
