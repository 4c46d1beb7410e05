//! Pre-rendered pages follow the records they show: a Product or Review write (REST or
//! MQTT) re-renders exactly the pages that show the record — the product's page, its
//! category's listing, home when the product is featured or changes category — and no
//! other cached page is rendered again (`/shop/api/stats` counts renders per page kind).
//! Pages also expire after `page_ttl_secs`.

mod common;
use common::mqtt::Client;
use common::shop::{self, counter, json, listed, wait_until};
use common::{agent, put, send, Server};
use serde_json::json;
use std::time::Duration;

/// Renders per page kind: [home, plp, pdp].
fn renders(s: &Server) -> [u64; 3] {
    ["home", "plp", "pdp"].map(|k| counter(s, "renders", k))
}

/// Loads home, the listings of cat-2 and cat-3 and the pages of p-0042, p-0043, p-0003.
fn warm(s: &Server) -> [u64; 3] {
    for path in ["/shop/api/home", "/shop/api/c/cat-2", "/shop/api/c/cat-3"] {
        json(s, path);
    }
    for id in ["p-0042", "p-0043", "p-0003"] {
        json(s, &format!("/shop/api/p/{id}"));
    }
    renders(s)
}

/// Waits until the renders reach `want`, then checks that nothing else is rendered.
fn expect_renders(s: &Server, want: [u64; 3]) {
    wait_until("the pages are re-rendered", Duration::from_secs(10), || {
        renders(s) >= want
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(renders(s), want, "[home, plp, pdp] renders");
}

fn add(a: [u64; 3], b: [u64; 3]) -> [u64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

#[test]
fn a_product_write_re_renders_its_page_and_listing_only() {
    let s = shop::start("");
    let before = warm(&s);
    let body =
        json!({"id": "p-0042", "name": "Renamed Desk", "category": "cat-2", "description": "New."});
    let r = put(&agent(), &s.url("/Product/p-0042"), &body.to_string());
    assert!(r.status < 300, "{}", r.body);
    expect_renders(&s, add(before, [0, 1, 1]));
    assert_eq!(json(&s, "/shop/api/p/p-0042")["name"], "Renamed Desk");
    let plp = json(&s, "/shop/api/c/cat-2");
    assert_eq!(listed(&plp["products"], "p-0042")["name"], "Renamed Desk");
    warm(&s);
    assert_eq!(
        renders(&s),
        add(before, [0, 1, 1]),
        "the other pages were served as cached"
    );
    assert_eq!(counter(&s, "refreshes", "pdp"), 1);

    // A featured product also re-renders home.
    let body =
        json!({"id": "p-0003", "name": "Renamed Lamp", "category": "cat-3", "description": "New."});
    put(&agent(), &s.url("/Product/p-0003"), &body.to_string());
    expect_renders(&s, add(before, [1, 2, 2]));
    let home = json(&s, "/shop/api/home");
    assert_eq!(listed(&home["featured"], "p-0003")["name"], "Renamed Lamp");
}

#[test]
fn a_review_write_re_renders_only_its_product_page() {
    let s = shop::start("");
    let before = warm(&s);
    let a = agent();
    let body = json!({"id": "r-0042-0", "product": "p-0042", "rating": 5, "author": "user61", "text": "Great."});
    assert!(put(&a, &s.url("/Review/r-0042-0"), &body.to_string()).status < 300);
    expect_renders(&s, add(before, [0, 0, 1]));
    let p = json(&s, "/shop/api/p/p-0042");
    assert_eq!(p["rating"], json!({"count": 2, "average_tenths": 30}));
    assert_eq!(p["reviews"][0]["text"], "Great.");

    // A deleted review names no product any more: the page that showed it is found.
    assert_eq!(
        send(&a, "DELETE", &s.url("/Review/r-0042-1"), None, &[]).status,
        200
    );
    expect_renders(&s, add(before, [0, 0, 2]));
    let p = json(&s, "/shop/api/p/p-0042");
    assert_eq!(p["rating"], json!({"count": 1, "average_tenths": 50}));
}

#[test]
fn a_product_moved_over_mqtt_leaves_one_listing_and_joins_another() {
    let s = shop::start("");
    let before = warm(&s);
    let mut mqtt = Client::v4(&s.mqtt_addr, "catalog-feed", true);
    let body = json!({"name": "Deluxe Desk 42", "category": "cat-3", "description": "Moved."});
    mqtt.publish("Product/p-0042", 1, true, body.to_string().as_bytes());
    // Its page, both listings, and home (two counts changed).
    expect_renders(&s, add(before, [1, 2, 1]));
    let home = json(&s, "/shop/api/home");
    assert_eq!(home["categories"][2]["count"], 124);
    assert_eq!(home["categories"][3]["count"], 126);
    let p = json(&s, "/shop/api/p/p-0042");
    assert_eq!(p["category"], json!({"id": "cat-3", "name": "Outdoor"}));
    let cat2 = json(&s, "/shop/api/c/cat-2")["products"].to_string();
    assert!(!cat2.contains("p-0042"));
    assert_eq!(
        listed(&json(&s, "/shop/api/c/cat-3")["products"], "p-0042")["price_cents"],
        33991
    );
}

#[test]
fn pages_are_rendered_again_once_their_ttl_passes() {
    let s = shop::start("page_ttl_secs = 1");
    json(&s, "/shop/api/p/p-0042");
    assert_eq!(renders(&s)[2], 1);
    std::thread::sleep(Duration::from_millis(1200));
    wait_until(
        "the stale page is rendered again",
        Duration::from_secs(10),
        || {
            json(&s, "/shop/api/p/p-0042");
            renders(&s)[2] >= 2
        },
    );
}
