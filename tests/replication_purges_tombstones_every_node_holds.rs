//! Deletes are tombstones, purged only once every node is known to hold every change older
//! than them: a tombstone disappears everywhere after a delete has spread, but while one node
//! is cut off (and still holds the live record) nobody purges it, so healing deletes the record
//! there instead of resurrecting it elsewhere.

mod common;
use common::cluster::*;
use std::time::Duration;

fn tombstones(c: &Cluster, node: usize) -> u64 {
    c.digest(node)["Product"]["tombstones"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn tombstones_go_only_when_every_node_has_them() {
    let mut o = Opts::nodes(&[1, 2, 1]);
    o.cluster = vec!["tombstone_grace_ms = 200".to_string(); 3];
    let c = Cluster::start(o);
    c.wait_linked(Duration::from_secs(20));
    // A delete that every node sees: its tombstone is purged everywhere.
    assert_eq!(
        cput(&c.nodes[0].url("/Product/gone"), r#"{"v":1}"#).status / 100,
        2
    );
    c.wait_converged(Duration::from_secs(10));
    assert_eq!(
        call("DELETE", &c.nodes[1].url("/Product/gone"), None, &[]).status,
        200
    );
    wait_for(
        "the tombstone to be purged on every node",
        Duration::from_secs(30),
        || (0..3).all(|i| tombstones(&c, i) == 0),
    );
    for (status, _, _) in c.read_everywhere("/Product/gone") {
        assert_eq!(status, 404);
    }
    let st = fetch(&c.nodes[0].url("/status")).json();
    assert!(
        st["cluster"]["tombstones_purged"].as_u64().unwrap() >= 1,
        "{st}"
    );

    // Node 3 holds a live record and is cut off; node 1 deletes it.
    assert_eq!(
        cput(&c.nodes[0].url("/Product/kept"), r#"{"v":1}"#).status / 100,
        2
    );
    c.wait_converged(Duration::from_secs(10));
    c.isolate(2);
    assert_eq!(
        call("DELETE", &c.nodes[0].url("/Product/kept"), None, &[]).status,
        200
    );
    wait_for(
        "the delete to reach node 2",
        Duration::from_secs(10),
        || fetch(&c.nodes[1].url("/Product/kept")).status == 404,
    );
    // Many purge rounds (grace 200 ms): nobody may drop the tombstone node 3 has not seen.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        tombstones(&c, 0) >= 1 && tombstones(&c, 1) >= 1,
        "tombstone purged while a node had not seen it"
    );
    assert_eq!(
        fetch(&c.nodes[2].url("/Product/kept")).status,
        200,
        "node 3 is cut off"
    );
    c.heal();
    wait_for(
        "the delete to win on node 3 and every tombstone to go",
        Duration::from_secs(30),
        || {
            (0..3).all(|i| tombstones(&c, i) == 0)
                && c.read_everywhere("/Product/kept")
                    .iter()
                    .all(|r| r.0 == 404)
        },
    );
    c.wait_converged(Duration::from_secs(10));
}
