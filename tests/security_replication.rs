//! Users, roles and the token key replicate like any table: a user created on one node
//! authenticates on the other (which starts requiring credentials as soon as it has it), a
//! token issued by one node works on the other, and a role change made on one node applies on
//! the other without a restart.

mod common;
use common::auth::*;
use common::cluster::{Cluster, Opts};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Polls `f` until it is true or 20 s pass.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "not within 20 s: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn users_roles_and_tokens_made_on_one_node_work_on_the_other() {
    let c = Cluster::start(Opts::nodes(&[2, 2]));
    let (one, two) = (c.nodes[0].s(), c.nodes[1].s());
    let a = agent();
    assert_eq!(put(&a, &one.url("/Product/1"), "{}").status, 201);
    create_admin(&a, one);
    put_role(
        &a,
        one,
        "reader",
        json!({ "Product": { "read": true } }),
        json!([]),
    );
    create_user(&a, one, "ann", "ann-password", &["reader"]);

    let url = two.url("/Product/1");
    eventually("node 2 requires credentials", || {
        get(&a, &url).status == 401
    });
    eventually("ann reads on node 2", || {
        as_user(&a, ("ann", "ann-password"), "GET", &url, None).status == 200
    });
    assert_eq!(
        as_user(&a, ("ann", "ann-password"), "DELETE", &url, None).status,
        403
    );

    let body = json!({ "username": "ann", "password": "ann-password" }).to_string();
    let r = send(&a, "POST", &one.url("/auth/login"), Some(&body), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let token = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    eventually("node 1's token works on node 2", || {
        call(&a, "GET", &url, None, Some(&token)).status == 200
    });

    put_role(
        &a,
        one,
        "reader",
        json!({ "Product": { "delete": true } }),
        json!([]),
    );
    eventually("the role change reaches node 2", || {
        as_user(&a, ("ann", "ann-password"), "GET", &url, None).status == 403
    });
    assert_eq!(call(&a, "GET", &url, None, Some(&token)).status, 403);
    assert_eq!(
        as_user(&a, ("ann", "ann-password"), "DELETE", &url, None).status,
        200
    );
}
