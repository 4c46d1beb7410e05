//! Restarting with another shard count moves partitions to their new owners: every record is
//! still served, and every shard owns some.

mod common;
use common::*;

#[test]
fn one_shard_then_two_keeps_every_record() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::start_at(
        tmp.path(),
        &data,
        &format!("[shards]\ncount = 1\n\n{PRODUCT_TABLE}"),
    )
    .unwrap();
    let a = agent();
    for i in 0..200 {
        assert_eq!(
            put(
                &a,
                &s.url(&format!("/Product/{i}")),
                &format!(r#"{{"price":{i},"category":"c{}"}}"#, i % 4)
            )
            .status,
            201
        );
    }
    assert_eq!(shard_records(&a, &s), vec![200]);
    assert!(s.stop().success());

    let mut s = Server::start_at(
        tmp.path(),
        &data,
        &format!("[shards]\ncount = 2\n\n{PRODUCT_TABLE}"),
    )
    .unwrap();
    let counts = shard_records(&a, &s);
    assert_eq!(counts.iter().sum::<i64>(), 200, "{counts:?}");
    assert!(counts.iter().all(|c| *c > 0), "{counts:?}");
    for i in 0..200 {
        assert_eq!(get(&a, &s.url(&format!("/Product/{i}"))).json()["price"], i);
    }
    // Indexes moved with their records.
    assert_eq!(
        get(&a, &s.url("/Product/?category=c2&limit(0,1000)"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        50
    );
    // Writes continue on the new layout, and it survives another restart.
    assert_eq!(
        put(&a, &s.url("/Product/new"), r#"{"price":1}"#).status,
        201
    );
    assert!(s.stop().success());
    let s = Server::start_at(
        tmp.path(),
        &data,
        &format!("[shards]\ncount = 1\n\n{PRODUCT_TABLE}"),
    )
    .unwrap();
    assert_eq!(shard_records(&a, &s), vec![201]);
    assert_eq!(get(&a, &s.url("/Product/new")).status, 200);
}
