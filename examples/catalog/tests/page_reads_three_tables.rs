//! The catalog component in a node of its own: a product page assembled from three tables,
//! through real HTTP.

use catalog::Catalog;
use microlith::app::testing::TestNode;
use serde_json::{json, Value};
use std::sync::Arc;

fn put(n: &TestNode, path: &str, body: Value) {
    let r = ureq::put(&n.url(path))
        .set("content-type", "application/json")
        .send_string(&body.to_string())
        .expect("PUT");
    assert!(r.status() == 201 || r.status() == 204);
}

#[test]
fn a_page_holds_the_product_its_price_and_its_stock() {
    let n = TestNode::start(vec![Arc::new(Catalog)], "[components.catalog]\n").expect("node");
    put(&n, "/Product/p1", json!({"name": "lamp"}));
    put(&n, "/Price/p1", json!({"amount": 25}));
    let page: Value = ureq::get(&n.url("/page/p1"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(
        page,
        json!({"product": {"name": "lamp", "id": "p1"}, "price": {"amount": 25, "id": "p1"}, "stock": null})
    );
    match ureq::get(&n.url("/page/p2")).call() {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("want 404, got {other:?}"),
    }
}

#[test]
fn the_table_names_come_from_the_config_section() {
    let cfg = "[components.catalog]\nproducts = \"Item\"\nprices = \"Cost\"\nstock = \"Qty\"\n";
    let n = TestNode::start(vec![Arc::new(Catalog)], cfg).expect("node");
    put(&n, "/Item/i1", json!({"name": "chair"}));
    let page: Value = ureq::get(&n.url("/page/i1"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(page["product"]["name"], "chair");
    let e = TestNode::start(
        vec![Arc::new(Catalog)],
        "[components.catalog]\nproduct = \"X\"\n",
    )
    .err()
    .expect("a misspelt key is refused");
    assert!(
        e.contains("components.catalog") && e.contains("product"),
        "{e}"
    );
}
