//! Across a three-node cluster, with independent clients (rumqttc, a raw SSE reader, ureq):
//! plain MQTT messages published on node A reach subscribers on every node exactly once (QoS 0
//! and 1, several subscribers per node spread over shards, the publisher itself once), a
//! retained message published on A is what a new subscriber on C receives, and a REST write on
//! A reaches an SSE stream on C and an MQTT subscriber of the table topic on B once. A message
//! no subscriber on another node wants stays on A. `/status` counts exactly what was forwarded
//! and received.

mod common;
use common::cluster::*;
use common::mqtt::{Client, Msg};
use common::sse::Sse;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Messages published on node A to `sensors/...`.
const N: usize = 50;

/// Every message `c` receives until `want` of them came (or 10 s passed), then whatever else
/// arrives in the next second (duplicates would).
fn collect(c: &mut Client, want: usize) -> Vec<Msg> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < want {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match c.recv(left) {
            Some(m) => got.push(m),
            None => break,
        }
    }
    while let Some(m) = c.recv(Duration::from_secs(1)) {
        got.push(m);
    }
    got
}

/// payload → how many times it came.
fn counts(msgs: &[Msg]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for x in msgs {
        *m.entry(x.text()).or_insert(0) += 1;
    }
    m
}

fn peer_publishes(c: &Cluster, node: usize, peer_id: u64) -> serde_json::Value {
    let st = fetch(&c.nodes[node].url("/status")).json();
    st["cluster"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node_id"] == peer_id)
        .unwrap_or_else(|| panic!("node {} knows no peer {peer_id}: {st}", node + 1))["publishes"]
        .clone()
}

#[test]
fn mqtt_messages_and_record_changes_reach_every_node_once() {
    let c = Cluster::start(Opts::nodes(&[1, 2, 2]));
    c.wait_linked(Duration::from_secs(20));
    let mqtt = |i: usize| c.nodes[i].s().mqtt_addr.clone();

    // Subscribers: four on B and two on C (both protocol versions; their homes spread over
    // the shards), the publisher itself on A, a table-topic subscriber on B, an SSE stream on C.
    let mut subs: Vec<(String, Client)> = Vec::new();
    for k in 0..4 {
        let id = format!("sub-b-{k}");
        let mut cl = if k % 2 == 0 {
            Client::v4(&mqtt(1), &id, true)
        } else {
            Client::v5(&mqtt(1), &id, true)
        };
        assert_eq!(cl.sub("sensors/#", 1), vec![1]);
        subs.push((id, cl));
    }
    for k in 0..2 {
        let id = format!("sub-c-{k}");
        let mut cl = Client::v4(&mqtt(2), &id, true);
        assert_eq!(cl.sub("sensors/#", 1), vec![1]);
        subs.push((id, cl));
    }
    let mut publisher = Client::v4(&mqtt(0), "pub-a", true);
    assert_eq!(publisher.sub("sensors/#", 1), vec![1]);
    let mut table_sub = Client::v4(&mqtt(1), "table-b", true);
    assert_eq!(table_sub.sub("Product/#", 1), vec![1]);
    let mut sse = Sse::open(&c.nodes[2].s().addr, "/Product/", None);
    // A message goes only to nodes whose subscribers want it: wait until A has heard what B
    // and C want (`sensors/#` on both, `Product/#` and the SSE stream's filter too).
    wait_for(
        "A to know what B and C subscribe to",
        Duration::from_secs(10),
        || {
            peer_publishes(&c, 0, 2)["filters"].as_u64() >= Some(2)
                && peer_publishes(&c, 0, 3)["filters"].as_u64() >= Some(2)
        },
    );
    // Nobody on B or C wants this one: it stays on A (not counted below).
    publisher.publish("private/a-only", 1, false, b"local");

    // N messages at QoS 1 on five topics, one at QoS 0, one retained.
    let mut sent = BTreeMap::new();
    for i in 0..N {
        let payload = format!("m{i}");
        publisher.publish(&format!("sensors/t{}", i % 5), 1, false, payload.as_bytes());
        sent.insert(payload, 1);
    }
    publisher.publish("sensors/q0", 0, false, b"zero");
    sent.insert("zero".to_string(), 1);
    publisher.publish("sensors/state", 1, true, b"on");
    sent.insert("on".to_string(), 1);

    for (id, cl) in subs.iter_mut() {
        let got = collect(cl, sent.len());
        assert_eq!(counts(&got), sent, "{id}: every message exactly once");
        // Per topic, in the order published.
        let t0: Vec<String> = got
            .iter()
            .filter(|m| m.topic == "sensors/t0")
            .map(|m| m.text())
            .collect();
        let want: Vec<String> = (0..N).step_by(5).map(|i| format!("m{i}")).collect();
        assert_eq!(t0, want, "{id}: one topic's messages in order");
        assert!(
            got.iter().all(|m| !m.retain),
            "{id}: a live message is not flagged retained"
        );
    }
    let own = collect(&mut publisher, sent.len());
    assert_eq!(
        counts(&own),
        sent,
        "the publisher gets its own messages once"
    );

    // The retained message is stored on C: a new subscriber there gets it (once) on subscribe.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut late = Client::v4(&mqtt(2), &format!("late-c-{attempt}"), true);
        late.sub("sensors/state", 1);
        let got = collect(&mut late, 1);
        if !got.is_empty() {
            assert_eq!(got.len(), 1, "one retained message: {got:?}");
            assert_eq!((got[0].text(), got[0].retain), ("on".to_string(), true));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retained message never reached node C"
        );
    }

    // A REST write on A: once to the table-topic subscriber on B and to the SSE stream on C.
    let r = cput(
        &c.nodes[0].url("/Product/fw1"),
        r#"{"name":"lamp","price":7}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let etag = r.etag.unwrap().trim_matches('"').to_string();
    let got = collect(&mut table_sub, 1);
    assert_eq!(got.len(), 1, "the record change once on B: {got:?}");
    assert_eq!(got[0].topic, "Product/fw1");
    let v: serde_json::Value = serde_json::from_slice(&got[0].payload).unwrap();
    assert_eq!(
        (v["name"].as_str(), v["price"].as_i64()),
        (Some("lamp"), Some(7))
    );
    let (id, event, data) = sse
        .next_within(Duration::from_secs(10))
        .expect("the REST write on A reaches the SSE stream on C");
    assert_eq!(
        (id.as_deref(), event.as_str()),
        (Some(etag.as_str()), "put")
    );
    assert_eq!(
        (data["id"].as_str(), data["value"]["name"].as_str()),
        (Some("fw1"), Some("lamp"))
    );
    assert!(
        sse.next_within(Duration::from_secs(1)).is_none(),
        "the SSE stream gets the change once"
    );
    // Nothing of the REST write reached the plain-topic subscribers.
    for (id, cl) in subs.iter_mut() {
        assert!(cl.recv(Duration::from_millis(100)).is_none(), "{id}");
    }

    // `/status`: A forwarded each message once to each peer; each peer received them all.
    let total = sent.len() as u64;
    for (peer_node, peer_id) in [(1usize, 2u64), (2, 3)] {
        let out = peer_publishes(&c, 0, peer_id);
        assert_eq!(
            (out["forwarded"].as_u64(), out["dropped"].as_u64()),
            (Some(total), Some(0)),
            "node 1 → node {peer_id}: {out}"
        );
        let inb = peer_publishes(&c, peer_node, 1);
        assert_eq!(
            inb["received"].as_u64(),
            Some(total),
            "node {peer_id} ← node 1: {inb}"
        );
        assert_eq!(
            inb["forwarded"].as_u64(),
            Some(0),
            "node {peer_id} forwards nothing back"
        );
    }
}
