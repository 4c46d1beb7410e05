//! Table definitions replicate: a table created at run time on one node appears, with its
//! indexes, on every node, and records written anywhere are queryable by index everywhere; a
//! drop on another node removes it everywhere; a re-create with other indexes wins everywhere;
//! a node that was down while a table was created gets it when it comes back; a table only one
//! node's config declares reaches the others.

mod common;
use common::cluster::*;
use serde_json::Value;
use std::time::Duration;

fn definition(c: &Cluster, node: usize, table: &str) -> Option<Value> {
    let r = fetch(&c.nodes[node].url(&format!("/admin/tables/{table}")));
    (r.status == 200).then(|| r.json())
}

fn create(c: &Cluster, node: usize, body: &str) {
    let r = call("POST", &c.nodes[node].url("/admin/tables"), Some(body), &[]);
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn tables_created_and_dropped_on_one_node_follow_on_every_node() {
    let mut o = Opts::nodes(&[1, 2, 1]);
    o.extra[1] = "[[tables]]\nname = \"Customer\"\nindexes = [\"city\"]\n".into();
    let mut c = Cluster::start(o);
    c.wait_linked(Duration::from_secs(20));

    // Declared in node 2's config only: every node serves it once the nodes have talked.
    wait_for("Customer on every node", Duration::from_secs(15), || {
        (0..3).all(|n| {
            definition(&c, n, "Customer")
                .is_some_and(|d| d["indexes"] == serde_json::json!(["city"]))
        })
    });

    // The schema table itself is out of reach, and its name is reserved.
    let r = call(
        "POST",
        &c.nodes[0].url("/admin/tables"),
        Some(r#"{"name":"_schema"}"#),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("reserved"), "{}", r.body);
    assert_eq!(fetch(&c.nodes[0].url("/_schema/Customer")).status, 404);

    // Created on node 1: every node gets the same definition.
    create(&c, 0, r#"{"name":"Order","indexes":["status"]}"#);
    wait_for("Order on every node", Duration::from_secs(10), || {
        (0..3).all(|n| definition(&c, n, "Order").is_some())
    });
    for n in 0..3 {
        let d = definition(&c, n, "Order").unwrap();
        assert_eq!(d["primary_key"], "id", "node {}", n + 1);
        assert_eq!(
            d["indexes"],
            serde_json::json!(["status"]),
            "node {}",
            n + 1
        );
    }

    // Written on node 2 and 3, found by the index on every node.
    for i in 0..20 {
        let node = 1 + i % 2;
        let status = if i % 4 == 0 { "open" } else { "closed" };
        let r = cput(
            &c.nodes[node].url(&format!("/Order/o{i}")),
            &format!(r#"{{"status":"{status}","n":{i}}}"#),
        );
        assert_eq!(r.status / 100, 2, "{}", r.body);
    }
    c.wait_converged(Duration::from_secs(20));
    for n in 0..3 {
        let r = fetch(&c.nodes[n].url("/Order/?status=open"));
        assert_eq!(r.status, 200, "{}", r.body);
        let mut ids: Vec<String> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, ["o0", "o12", "o16", "o4", "o8"], "node {}", n + 1);
    }

    // Dropped on node 3: gone everywhere, data included.
    let r = call("DELETE", &c.nodes[2].url("/admin/tables/Order"), None, &[]);
    assert_eq!(r.status, 204, "{}", r.body);
    wait_for(
        "Order dropped on every node",
        Duration::from_secs(10),
        || (0..3).all(|n| definition(&c, n, "Order").is_none()),
    );
    for n in 0..3 {
        assert_eq!(fetch(&c.nodes[n].url("/Order/o1")).status, 404);
    }

    // Re-created on node 2 with another index: that definition wins everywhere, empty.
    create(&c, 1, r#"{"name":"Order","indexes":["customer"]}"#);
    wait_for(
        "the new Order on every node",
        Duration::from_secs(10),
        || {
            (0..3).all(|n| {
                definition(&c, n, "Order")
                    .is_some_and(|d| d["indexes"] == serde_json::json!(["customer"]))
            })
        },
    );
    for n in 0..3 {
        let r = fetch(&c.nodes[n].url("/Order/"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json().as_array().unwrap().len(), 0, "node {}", n + 1);
    }

    // A node that was down while a table was created gets it when it is back.
    c.kill9(2);
    create(&c, 0, r#"{"name":"Invoice","indexes":["due"]}"#);
    let r = cput(&c.nodes[0].url("/Invoice/i1"), r#"{"due":"2026-12-01"}"#);
    assert_eq!(r.status / 100, 2, "{}", r.body);
    c.boot(2);
    wait_for(
        "Invoice on the restarted node",
        Duration::from_secs(20),
        || definition(&c, 2, "Invoice").is_some(),
    );
    wait_for(
        "Invoice's record found by index on node 3",
        Duration::from_secs(20),
        || {
            let r = fetch(&c.nodes[2].url("/Invoice/?due=2026-12-01"));
            r.status == 200 && r.json().as_array().is_some_and(|a| a.len() == 1)
        },
    );
    c.wait_converged(Duration::from_secs(20));
}
