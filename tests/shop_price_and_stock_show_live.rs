//! Price and stock are injected live into pre-rendered pages: a write to `Price` or
//! `Inventory` (REST, or an MQTT retained publish) shows on the next load of the product
//! page, its listing and home, with no page rendered again; and the product page's stream
//! (`/shop/live/{id}/price`, what its script follows) carries the change as an SSE `put`.

mod common;
use common::mqtt::Client;
use common::shop::{self, counter, html, json, listed, live_attributes};
use common::sse::Sse;
use common::{agent, put};
use serde_json::json;

/// Renders per page kind.
fn renders(s: &common::Server) -> [u64; 3] {
    ["home", "plp", "pdp"].map(|k| counter(s, "renders", k))
}

#[test]
fn a_rest_price_or_stock_write_shows_on_every_page_without_a_render() {
    let s = shop::start("");
    // p-0002 is featured on home and listed on cat-2: warm all three pages.
    let before_price = json(&s, "/shop/api/p/p-0002")["price_cents"].clone();
    json(&s, "/shop/api/c/cat-2");
    json(&s, "/shop/api/home");
    let rendered = renders(&s);
    let a = agent();
    let r = put(
        &a,
        &s.url("/Price/p-0002"),
        r#"{"id":"p-0002","amount_cents":12345,"currency":"USD"}"#,
    );
    assert!(r.status < 300, "{}", r.body);
    let r = put(
        &a,
        &s.url("/Inventory/p-0002"),
        r#"{"id":"p-0002","quantity":0}"#,
    );
    assert!(r.status < 300, "{}", r.body);
    assert_ne!(before_price, json!(12345));

    let pdp = json(&s, "/shop/api/p/p-0002");
    assert_eq!(
        (&pdp["price_cents"], &pdp["stock"]),
        (&json!(12345), &json!(0))
    );
    let plp = json(&s, "/shop/api/c/cat-2");
    assert_eq!(listed(&plp["products"], "p-0002")["price_cents"], 12345);
    let home = json(&s, "/shop/api/home");
    assert_eq!(listed(&home["featured"], "p-0002")["stock"], 0);
    for path in ["/shop/p/p-0002", "/shop/c/cat-2", "/shop/"] {
        let page = html(&s, path);
        assert_eq!(live_attributes(&page, "p-0002"), (12345, 0), "{path}");
        assert!(
            page.contains("$123.45") && page.contains("out of stock"),
            "{path}"
        );
    }
    assert_eq!(renders(&s), rendered, "live values need no render");
}

#[test]
fn an_mqtt_retained_price_publish_shows_on_the_page_and_over_sse() {
    let s = shop::start("");
    let pdp = html(&s, "/shop/p/p-0042");
    assert!(
        pdp.contains("/shop/live/") && pdp.contains("amount_cents"),
        "the script follows the stream"
    );
    let mut events = Sse::open(&s.addr, "/shop/live/p-0042/price", None);
    let (_, kind, first) = events.next();
    assert_eq!(
        (kind.as_str(), &first["value"]["amount_cents"]),
        ("put", &json!(33991))
    );

    let mut mqtt = Client::v4(&s.mqtt_addr, "price-feed", true);
    mqtt.publish(
        "Price/p-0042",
        1,
        true,
        br#"{"amount_cents":100,"currency":"USD"}"#,
    );
    let (_, kind, change) = events.next();
    assert_eq!(kind, "put");
    assert_eq!(change["id"], "p-0042");
    assert_eq!(change["value"]["amount_cents"], 100);

    assert_eq!(json(&s, "/shop/api/p/p-0042")["price_cents"], 100);
    let page = html(&s, "/shop/p/p-0042");
    assert_eq!(live_attributes(&page, "p-0042"), (100, 44));
    assert!(page.contains("$1.00"));
    assert_eq!(
        counter(&s, "renders", "pdp"),
        1,
        "one render, at the first load"
    );

    let mut stock = Sse::open(&s.addr, "/shop/live/p-0042/stock", None);
    assert_eq!(stock.next().2["value"]["quantity"], 44);
}
