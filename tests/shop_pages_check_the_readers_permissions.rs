//! Once the node has users, the shop's pages need one (401 without credentials), and the
//! shop reads tables on the reader's behalf only where the reader may read them: a product
//! page shows reviews, so a role without read on `Review` gets 403 there while the listings
//! and home, which show none, are served.

mod common;
use common::auth::{as_admin, as_user, create_admin, create_user, put_role};
use common::{agent, get, shop};
use serde_json::json;

#[test]
fn pages_need_a_user_who_may_read_every_table_they_show() {
    let s = shop::start("");
    let a = agent();
    create_admin(&a, &s);
    let read = json!({ "read": true });
    let tables = json!({ "Product": read, "Category": read, "Price": read, "Inventory": read });
    put_role(&a, &s, "browser", tables, json!([]));
    create_user(&a, &s, "browser", "browser-password", &["browser"]);
    let browser = ("browser", "browser-password");

    assert_eq!(get(&a, &s.url("/shop/api/home")).status, 401);
    for path in ["/shop/api/home", "/shop/c/cat-3", "/shop/api/c/cat-3"] {
        let r = as_user(&a, browser, "GET", &s.url(path), None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let r = as_user(&a, browser, "GET", &s.url("/shop/api/p/p-0042"), None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("Review"), "{}", r.body);
    let r = as_admin(&a, "GET", &s.url("/shop/api/p/p-0042"), None);
    assert_eq!(r.json()["price_cents"], 33991);
}
