//! When a peer's change log no longer reaches a node's cursor (here: 1 s of retention and a
//! partition longer than that), the nodes repair by anti-entropy: digests are compared, only
//! differing partitions are exchanged, the newer version of each key wins on both sides, and a
//! record that only the lagging node holds survives and spreads. A new, empty node joins the
//! same way.

mod common;
use common::cluster::*;
use common::*;
use std::time::Duration;

fn repairs(st: &serde_json::Value) -> u64 {
    st["cluster"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["repairs"].as_u64().unwrap())
        .sum()
}

#[test]
fn trimmed_log_is_repaired_by_anti_entropy() {
    let mut o = Opts::nodes(&[2, 1, 1]);
    o.storage = vec!["changelog_retention_secs = 1".to_string(); 3];
    // Few partitions and the smallest frames, so that a differing partition takes several
    // repair pages (`Range` ... `more`) while others are in flight.
    o.cluster = vec!["partitions = 4\nmax_frame_bytes = 1114112".to_string(); 3];
    let c = Cluster::start(o);
    c.wait_linked(Duration::from_secs(20));
    for k in ["x", "y"] {
        assert_eq!(
            cput(
                &c.nodes[0].url(&format!("/Product/shared-{k}")),
                r#"{"v":"old"}"#
            )
            .status
                / 100,
            2
        );
    }
    c.wait_converged(Duration::from_secs(10));
    c.isolate(2);
    // The lagging node: a record only it has, and the newer version of shared-x.
    assert_eq!(
        cput(&c.nodes[2].url("/Product/only-c"), r#"{"v":"c"}"#).status / 100,
        2
    );
    let x = cput(&c.nodes[2].url("/Product/shared-x"), r#"{"v":"from-c"}"#);
    // The others: many writes (8 KiB each), and the newer version of shared-y.
    let pad = format!(r#"{{"v":"ab","pad":"{}"}}"#, "x".repeat(8192));
    for i in 0..300 {
        assert_eq!(
            cput(&c.nodes[i % 2].url(&format!("/Product/ab-{i}")), &pad).status / 100,
            2
        );
    }
    let y = cput(&c.nodes[1].url("/Product/shared-y"), r#"{"v":"from-b"}"#);
    // Let every log trim past the other side's cursors (a log keeps its last entry).
    wait_for(
        "the change logs to be trimmed",
        Duration::from_secs(20),
        || {
            (0..3).all(|i| {
                let st = fetch(&c.nodes[i].url("/status")).json();
                st["shards"].as_array().unwrap().iter().all(|s| {
                    let first = s["changelog_first"].as_u64().unwrap();
                    first + 1 >= s["changelog_next"].as_u64().unwrap()
                })
            })
        },
    );
    let before: Vec<u64> = (0..3)
        .map(|i| repairs(&fetch(&c.nodes[i].url("/status")).json()))
        .collect();
    c.heal();
    c.wait_converged(Duration::from_secs(30));
    for (path, etag, want) in [
        ("/Product/only-c", None, "\"c\""),
        ("/Product/shared-x", x.etag.clone(), "from-c"),
        ("/Product/shared-y", y.etag.clone(), "from-b"),
        ("/Product/ab-299", None, "ab"),
    ] {
        for (n, (status, got_etag, body)) in c.read_everywhere(path).into_iter().enumerate() {
            assert_eq!(status, 200, "node {}: {path}", n + 1);
            assert!(body.contains(want), "node {}: {path} is {body}", n + 1);
            if let Some(e) = &etag {
                assert_eq!(got_etag.as_ref(), Some(e), "node {}: {path}", n + 1);
            }
        }
    }
    // Both sides needed repair: the lagging node from both others, each other from it. The
    // digests can agree before the last repair is counted (one peer's repair brings what
    // the other's would), so wait for the counts rather than read them once.
    for (i, need) in [(0, 1), (1, 1), (2, 2)] {
        wait_for(
            &format!("node {} to count {need} repairs after healing", i + 1),
            Duration::from_secs(10),
            || repairs(&fetch(&c.nodes[i].url("/status")).json()) >= before[i] + need,
        );
    }

    // A new, empty node joins: it repairs from every peer and ends with the same digest.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = tmp.path().join("m.toml");
    let peers: Vec<String> = c.nodes.iter().map(|n| n.peer_addr.clone()).collect();
    let text = node_config(3, &data, 1, &peers, SECRET, "", "").replace(
        "reconnect_max_ms = 300\n",
        "reconnect_max_ms = 300\npartitions = 4\nmax_frame_bytes = 1114112\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let newcomer = Server::start_with_config(tmp.path(), &cfg, &data).unwrap();
    let want = c.digest(0);
    wait_for("the new node to converge", Duration::from_secs(30), || {
        fetch(&newcomer.url("/cluster/digest")).json()["tables"] == want
    });
    assert_eq!(fetch(&newcomer.url("/Product/only-c")).status, 200);
}
