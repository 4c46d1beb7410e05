//! A clean stop (SIGTERM) exits 0 and a restarted server serves every acknowledged write,
//! including tables created at run time.

mod common;
use common::*;

#[test]
fn sigterm_then_restart_keeps_records_and_runtime_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::start_at(tmp.path(), &data, PRODUCT_TABLE).unwrap();
    let a = agent();
    let r = send(
        &a,
        "POST",
        &s.url("/admin/tables"),
        Some(r#"{"name":"Order","primary_key":"oid","indexes":["status"]}"#),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let mut versions = Vec::new();
    for i in 0..300 {
        let r = put(
            &a,
            &s.url(&format!("/Product/{i}")),
            &format!(r#"{{"price":{i},"category":"c{}"}}"#, i % 3),
        );
        versions.push(r.etag.unwrap());
        assert_eq!(
            put(
                &a,
                &s.url(&format!("/Order/o{i}")),
                &format!(r#"{{"status":"s{}"}}"#, i % 2)
            )
            .status,
            201
        );
    }
    assert_eq!(
        send(&a, "DELETE", &s.url("/Product/7"), None, &[]).status,
        200
    );
    let status = s.stop();
    assert!(
        status.success(),
        "clean stop exits 0, got {status:?}\n{}",
        s.log()
    );

    let s = Server::start_at(tmp.path(), &data, PRODUCT_TABLE).unwrap();
    for i in 0..300 {
        let r = get(&a, &s.url(&format!("/Product/{i}")));
        if i == 7 {
            assert_eq!(r.status, 404, "a delete survives the restart");
            continue;
        }
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["price"], i);
        assert_eq!(r.etag.as_deref(), Some(versions[i as usize].as_str()));
    }
    // Run-time table and its index survive.
    let q = get(&a, &s.url("/Order/?status=s1&select(oid)&limit(0,1000)"));
    assert_eq!(q.json().as_array().unwrap().len(), 150);
    assert_eq!(
        get(&a, &s.url("/admin/tables/Order")).json()["primary_key"],
        "oid"
    );
    // Index queries work after restart.
    assert_eq!(
        get(&a, &s.url("/Product/?category=c0&price=lt=30"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        10
    );
    // Dropping a table removes it and its data.
    assert_eq!(
        send(&a, "DELETE", &s.url("/admin/tables/Order"), None, &[]).status,
        204
    );
    assert_eq!(get(&a, &s.url("/Order/o1")).status, 404);
    assert_eq!(shard_records(&a, &s).iter().sum::<i64>(), 299);
}
