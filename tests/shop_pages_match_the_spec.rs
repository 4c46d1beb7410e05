//! The shop component's pages carry the data of `examples/shop/SPEC.md`: the JSON shapes,
//! orders and values (price, stock, rating rounding, reviews), the HTML with each product's
//! live values in `data-*` attributes and prices as dollars, and 404 for unknown ids. The
//! real binary, seeded at start, read with ureq.

mod common;
use common::shop::{self, html, json, listed, live_attributes};
use common::{agent, get};
use serde_json::json;

#[test]
fn json_pages_carry_the_spec_values() {
    let s = shop::start("");
    let p = json(&s, "/shop/api/p/p-0042");
    assert_eq!(p["id"], "p-0042");
    assert_eq!(p["name"], "Deluxe Desk 42");
    assert_eq!(
        p["description"],
        "The Deluxe Desk 42 is part of our Office range."
    );
    assert_eq!(p["category"], json!({"id": "cat-2", "name": "Office"}));
    assert_eq!(
        (&p["price_cents"], &p["currency"], &p["stock"]),
        (&json!(33991), &json!("USD"), &json!(44))
    );
    assert_eq!(p["rating"], json!({"count": 2, "average_tenths": 20}));
    assert_eq!(
        p["reviews"][0],
        json!({"id": "r-0042-0", "rating": 3, "author": "user61", "text": "Review 0 of Deluxe Desk 42."})
    );
    assert_eq!(p["reviews"][1]["id"], "r-0042-1");
    assert_eq!(
        json(&s, "/shop/api/p/p-0040")["rating"],
        json!({"count": 0, "average_tenths": 0})
    );

    let c = json(&s, "/shop/api/c/cat-3");
    assert_eq!(c["category"], json!({"id": "cat-3", "name": "Outdoor"}));
    let products = c["products"].as_array().unwrap();
    assert_eq!(products.len(), 125);
    assert_eq!(
        products[0],
        json!({"id": "p-0003", "name": "Eco Lamp 3", "price_cents": 23956, "stock": 111})
    );
    let ids: Vec<&str> = products.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "by id");
    assert_eq!(ids[124], "p-0995");

    let home = json(&s, "/shop/api/home");
    let categories = home["categories"].as_array().unwrap();
    assert_eq!(categories.len(), 8);
    for (c, cat) in categories.iter().enumerate() {
        assert_eq!(cat["id"], format!("cat-{c}"));
        assert_eq!(cat["count"], 125);
    }
    assert_eq!(categories[7]["name"], "Lighting");
    let featured: Vec<&str> = home["featured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        featured,
        ["p-0000", "p-0001", "p-0002", "p-0003", "p-0004", "p-0005", "p-0006", "p-0007"]
    );
    assert_eq!(listed(&home["featured"], "p-0000")["price_cents"], 199);
    assert_eq!(listed(&home["featured"], "p-0000")["stock"], 0);
}

#[test]
fn html_pages_carry_live_values_in_attributes_and_unknown_ids_get_404() {
    let s = shop::start("");
    let pdp = html(&s, "/shop/p/p-0042");
    assert!(pdp.starts_with("<!doctype html>"));
    assert_eq!(live_attributes(&pdp, "p-0042"), (33991, 44));
    assert_eq!(
        pdp.matches("class=\"product\"").count(),
        1,
        "one product element"
    );
    assert!(pdp.contains("$339.91") && pdp.contains("44 in stock"));
    assert!(pdp.contains("new EventSource(") && pdp.contains("events.onmessage"));
    assert!(pdp.contains("user61"));

    let plp = html(&s, "/shop/c/cat-3");
    assert_eq!(plp.matches("class=\"product\"").count(), 125);
    assert_eq!(live_attributes(&plp, "p-0003"), (23956, 111));
    assert!(plp.contains("$239.56"));

    let home = html(&s, "/shop/");
    assert_eq!(home.matches("class=\"product\"").count(), 8);
    assert_eq!(live_attributes(&home, "p-0000"), (199, 0));
    assert!(home.contains("out of stock"));
    assert_eq!(
        html(&s, "/shop"),
        home,
        "with or without the trailing slash"
    );

    let a = agent();
    for path in [
        "/shop/p/p-9999",
        "/shop/api/p/p-1000",
        "/shop/c/cat-8",
        "/shop/api/c/nope",
        "/shop/api/p/%3Cscript%3E",
        "/shop/api/c/a%26b%3Dc",
        "/shop/live/p-9999/price",
    ] {
        assert_eq!(get(&a, &s.url(path)).status, 404, "{path}");
    }
    let long = format!("/shop/api/p/{}", "x".repeat(1500));
    assert_eq!(get(&a, &s.url(&long)).status, 404);
    assert_eq!(
        get(&a, &s.url("/shop/api/p/p-0042")).status,
        200,
        "still serving"
    );
}
