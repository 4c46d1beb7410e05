//! The shop seeds its tables only when they are empty, and only records that are absent:
//! a restart on the same data rewrites nothing (every version stays) and brings back no
//! deleted record; with `seed = false` nothing is written and the pages serve what is there.

mod common;
use common::shop::{json, stats, wait_until};
use common::{agent, get, send, Server};
use std::time::Duration;

fn start_shop(dir: &std::path::Path, extra: &str) -> Server {
    let s = Server::start_at(
        dir,
        &dir.join("data"),
        &format!("[components.shop]\n{extra}\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    wait_until("the shop is ready", Duration::from_secs(60), || {
        stats(&s)["phase"] == "ready"
    });
    s
}

#[test]
fn a_restart_rewrites_nothing_and_brings_back_no_deleted_record() {
    let tmp = tempfile::tempdir().unwrap();
    let a = agent();
    let mut s = start_shop(tmp.path(), "");
    let etags: Vec<_> = ["/Price/p-0042", "/Product/p-0042", "/Review/r-0042-1"]
        .map(|p| get(&a, &s.url(p)).etag.expect("an etag"))
        .to_vec();
    assert_eq!(
        send(&a, "DELETE", &s.url("/Product/p-0999"), None, &[]).status,
        200
    );
    assert!(s.stop().success());

    let s = start_shop(tmp.path(), "");
    let again: Vec<_> = ["/Price/p-0042", "/Product/p-0042", "/Review/r-0042-1"]
        .map(|p| get(&a, &s.url(p)).etag.expect("an etag"))
        .to_vec();
    assert_eq!(again, etags, "no seed record was written again");
    assert_eq!(get(&a, &s.url("/Product/p-0999")).status, 404);
    assert_eq!(get(&a, &s.url("/shop/api/p/p-0999")).status, 404);
    assert_eq!(json(&s, "/shop/api/home")["categories"][7]["count"], 124);
}

#[test]
fn with_seeding_off_the_shop_serves_its_empty_tables() {
    let s = common::shop::start("seed = false");
    let a = agent();
    let home = json(&s, "/shop/api/home");
    assert_eq!(home, serde_json::json!({"categories": [], "featured": []}));
    assert_eq!(get(&a, &s.url("/shop/api/p/p-0042")).status, 404);
    assert_eq!(get(&a, &s.url("/Product/p-0042")).status, 404);
}
