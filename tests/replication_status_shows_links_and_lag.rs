//! `/status` shows, per peer, the state of both directions of the link, the last contact, and
//! lag in entries and milliseconds; a slowed link shows lag on both ends, and the lag drains to
//! zero once the link is fast again. `/cluster/digest` answers per table.

mod common;
use common::cluster::*;
use serde_json::Value;
use std::time::Duration;

fn peer(c: &Cluster, node: usize) -> Value {
    fetch(&c.nodes[node].url("/status")).json()["cluster"]["peers"][0].clone()
}

#[test]
fn status_reports_link_state_and_lag_per_direction() {
    let c = Cluster::start(Opts::nodes(&[1, 1]));
    c.wait_linked(Duration::from_secs(20));
    let p = peer(&c, 0);
    assert_eq!(p["node_id"], 2, "{p}");
    assert_eq!(p["name"], "n2", "{p}");
    assert!(p["last_contact_ms"].as_u64().unwrap() > 0, "{p}");
    for dir in ["inbound", "outbound"] {
        assert_eq!(p[dir]["state"], "connected", "{p}");
        for field in ["lag_entries", "lag_ms", "changes", "bad_frames", "since_ms"] {
            assert!(p[dir][field].is_u64(), "{dir}.{field} missing: {p}");
        }
    }
    // Slow the link on which node 1 pulls node 2's changes, then write on node 2.
    c.proxy(0, 1).delay(300);
    let writer = {
        let url = c.nodes[1].url("/Product/");
        std::thread::spawn(move || {
            for i in 0..400 {
                cput(
                    &format!("{url}lag-{i}"),
                    r#"{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
                );
            }
        })
    };
    let (mut saw_in, mut saw_out) = (false, false);
    wait_for(
        "lag on both ends of the slowed link",
        Duration::from_secs(30),
        || {
            let (i, o) = (peer(&c, 0), peer(&c, 1));
            saw_in |= i["inbound"]["lag_entries"].as_u64().unwrap() > 0;
            saw_out |= o["outbound"]["lag_entries"].as_u64().unwrap() > 0
                && o["outbound"]["lag_ms"].as_u64().unwrap() > 0;
            saw_in && saw_out
        },
    );
    writer.join().unwrap();
    c.proxy(0, 1).delay(0);
    wait_for("the lag to drain", Duration::from_secs(30), || {
        let (i, o) = (peer(&c, 0), peer(&c, 1));
        i["inbound"]["lag_entries"] == 0
            && o["outbound"]["lag_entries"] == 0
            && o["outbound"]["lag_ms"] == 0
    });
    let d = c.wait_converged(Duration::from_secs(10));
    assert_eq!(d["Product"]["records"], 400, "{d}");
    assert_eq!(d["Product"]["digest"].as_str().unwrap().len(), 64, "{d}");
    let p = peer(&c, 0);
    assert!(p["inbound"]["changes"].as_u64().unwrap() >= 400, "{p}");
    // Applied changes are timed; the 300 ms delay shows in the recent distribution.
    let lag = &p["inbound"]["apply_lag"];
    assert!(lag["count"].as_u64().unwrap() > 0, "{p}");
    assert!(lag["max_ms"].as_u64().unwrap() >= 300, "{p}");
    assert!(
        lag["p50_ms"].as_u64().unwrap() <= lag["p99_ms"].as_u64().unwrap(),
        "{p}"
    );
    assert!(p["outbound"].get("apply_lag").is_none(), "{p}");
}
