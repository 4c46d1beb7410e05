//! A state-changing request whose body is not declared JSON — no Content-Type, `text/plain`,
//! a form: what any web page can send without a CORS preflight — is refused with 415 and
//! changes nothing; a DELETE without a body needs no type; JSON bodies are served as before.

mod common;
use common::raw_http::Http;
use common::*;

fn limits_status(s: &Server) -> serde_json::Value {
    get(&agent(), &s.url("/status")).json()["limits"].clone()
}

#[test]
fn writes_without_a_json_type_are_415_and_store_nothing() {
    let s = Server::start(PRODUCT_TABLE);
    let mut c = Http::connect(&s.addr);
    let body = r#"{"id":"1","name":"chair"}"#;
    let refused = [
        ("PUT", "/Product/1", None),
        ("PUT", "/Product/1", Some("text/plain")),
        ("PUT", "/Product/1", Some("text/plain; charset=utf-8")),
        ("POST", "/Product/", None),
        ("POST", "/Product/", Some("text/plain")),
        (
            "POST",
            "/Product/",
            Some("application/x-www-form-urlencoded"),
        ),
        ("POST", "/Product/", Some("multipart/form-data; boundary=x")),
        ("PATCH", "/Product/1", None),
        ("POST", "/admin/tables", None),
        ("DELETE", "/Product/1", Some("text/plain")),
    ];
    for (method, path, ct) in refused {
        let ct_line = ct.map(|t| format!("Content-Type: {t}"));
        let mut head = vec!["Host: localhost"];
        if let Some(l) = &ct_line {
            head.push(l);
        }
        let b = if path == "/admin/tables" {
            r#"{"name":"Evil"}"#
        } else {
            body
        };
        let a = c.request(method, path, &head, b).expect("an answer");
        assert_eq!(a.status, 415, "{method} {path} {ct:?}: {}", a.body);
        assert_eq!(a.header("content-type"), Some("application/problem+json"));
        assert_eq!(a.json()["status"], 415);
    }
    // Nothing was stored, no table was made, and the connection still serves.
    assert_eq!(c.get("/Product/1").unwrap().status, 404);
    assert_eq!(c.get("/Product/?select(id)").unwrap().body, "[]");
    assert_eq!(c.get("/admin/tables/Evil").unwrap().status, 404);
    assert_eq!(limits_status(&s)["content_types_refused"], refused.len());
}

#[test]
fn json_writes_and_a_delete_without_a_body_are_served() {
    let s = Server::start(PRODUCT_TABLE);
    let mut c = Http::connect(&s.addr);
    let json = ["Host: localhost", "Content-Type: application/json"];
    let a = c
        .request("PUT", "/Product/1", &json, r#"{"name":"chair"}"#)
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let merge = [
        "Host: localhost",
        "Content-Type: application/merge-patch+json",
    ];
    let a = c
        .request("PATCH", "/Product/1", &merge, r#"{"price":3}"#)
        .unwrap();
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(c.get("/Product/1").unwrap().json()["price"], 3);
    let a = c
        .request("DELETE", "/Product/1", &["Host: localhost"], "")
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(c.get("/Product/1").unwrap().status, 404);
    assert_eq!(limits_status(&s)["content_types_refused"], 0);
}
