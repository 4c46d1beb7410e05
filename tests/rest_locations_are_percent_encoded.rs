//! A `Location` names the record's URL: its id percent-encoded as one path segment, so an id
//! with a space, a slash or non-ASCII letters leads back to the same record.

mod common;
use common::*;

#[test]
fn locations_encode_ids_and_lead_back_to_the_record() {
    let s = Server::start(PRODUCT_TABLE);
    let a = agent();
    for (path, id, location) in [
        (
            "/Product/with%20space",
            "with space",
            "/Product/with%20space",
        ),
        ("/Product/a%2Fb", "a/b", "/Product/a%2Fb"),
        ("/Product/caf%C3%A9", "café", "/Product/caf%C3%A9"),
        ("/Product/p-1_x.y~z", "p-1_x.y~z", "/Product/p-1_x.y~z"),
    ] {
        let r = put(&a, &s.url(path), r#"{"n":1}"#);
        assert_eq!(r.status, 201, "{path}: {}", r.body);
        assert_eq!(r.location.as_deref(), Some(location), "{path}");
        let back = get(&a, &s.url(location));
        assert_eq!(back.json()["id"], id, "{location}");
    }
    let posted = send(
        &a,
        "POST",
        &s.url("/Product/"),
        Some(r#"{"id":"x y/z"}"#),
        &[],
    );
    assert_eq!(posted.location.as_deref(), Some("/Product/x%20y%2Fz"));
    assert_eq!(posted.json(), serde_json::json!("x y/z"));
}
