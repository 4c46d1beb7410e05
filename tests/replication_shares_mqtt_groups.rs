//! Shared subscriptions across a two-node cluster: members of one group on both nodes, a
//! publisher on one; every message reaches exactly one member of the group in the whole
//! cluster, members on both nodes take a share, and a plain subscriber on the other node
//! still gets every message.

mod common;
use common::cluster::*;
use common::mqtt::Client;
use std::collections::BTreeMap;
use std::time::Duration;

/// Everything a client receives until it has been quiet for a second.
fn drain(c: &mut Client) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(m) = c.recv(Duration::from_secs(1)) {
        got.push(m.text());
    }
    got
}

/// Members of `filter`: two on each node, in that order.
fn members(c: &Cluster, filter: &str) -> Vec<Client> {
    [(0, "a-0"), (0, "a-1"), (1, "b-0"), (1, "b-1")]
        .into_iter()
        .map(|(node, id)| {
            let mut m = Client::v5(&c.nodes[node].s().mqtt_addr, id, true);
            assert_eq!(m.sub(filter, 1), vec![1]);
            m
        })
        .collect()
}

/// What the members got: how often each payload came, and how many went to each node's pair.
fn shares(members: &mut [Client]) -> (BTreeMap<String, usize>, [usize; 2]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_node = [0usize; 2];
    for (i, m) in members.iter_mut().enumerate() {
        for g in drain(m) {
            per_node[i / 2] += 1;
            *seen.entry(g).or_default() += 1;
        }
    }
    (seen, per_node)
}

fn peer_filters(c: &Cluster, node: usize) -> u64 {
    let st = fetch(&c.nodes[node].url("/status")).json();
    st["cluster"]["peers"][0]["publishes"]["filters"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn each_message_reaches_one_member_of_a_group_spread_over_nodes() {
    let c = Cluster::start(Opts::nodes(&[2, 2]));
    c.wait_linked(Duration::from_secs(20));
    let mqtt = |i: usize| c.nodes[i].s().mqtt_addr.clone();
    let mut members = members(&c, "$share/workers/jobs/#");
    let mut plain = Client::v5(&mqtt(1), "plain-b", true);
    plain.sub("jobs/#", 1);
    // Node A must have heard that B has members and a plain subscriber.
    wait_for(
        "A to know what B subscribes to",
        Duration::from_secs(10),
        || peer_filters(&c, 0) >= 2,
    );
    let mut publisher = Client::v5(&mqtt(0), "pub-a", true);
    for i in 0..100 {
        publisher.publish("jobs/x", 1, false, format!("m{i}").as_bytes());
    }
    let (seen, per_node) = shares(&mut members);
    assert_eq!(seen.len(), 100, "every message reached the group");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "reached two members: {twice:?}");
    assert!(
        per_node.iter().all(|n| *n > 0),
        "both nodes' members took a share: {per_node:?}"
    );
    assert_eq!(
        drain(&mut plain).len(),
        100,
        "the plain subscriber on B got everything"
    );
}

#[test]
fn each_record_change_reaches_one_member_of_a_group_spread_over_nodes() {
    let c = Cluster::start(Opts::nodes(&[2, 2]));
    c.wait_linked(Duration::from_secs(20));
    let mut members = members(&c, "$share/fulfil/Product/+");
    // Both nodes must know of the other's members to agree on who serves each change.
    wait_for(
        "each node to know the other's group",
        Duration::from_secs(10),
        || peer_filters(&c, 0) >= 1 && peer_filters(&c, 1) >= 1,
    );
    // Changes made on both nodes.
    for i in 0..80 {
        let r = cput(&c.nodes[i % 2].url(&format!("/Product/o{i}")), r#"{"v":1}"#);
        assert_eq!(r.status / 100, 2);
    }
    let (seen, per_node) = shares(&mut members);
    assert_eq!(
        seen.len(),
        80,
        "every change reached the group: {per_node:?}"
    );
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "reached two members: {twice:?}");
    assert!(per_node.iter().all(|n| *n > 0), "{per_node:?}");
}
