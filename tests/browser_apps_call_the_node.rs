//! What a browser app needs: CORS preflights answered before authentication and
//! `Access-Control-Allow-Origin` on every answer to an allowed origin (errors and SSE
//! included); on a node without users only trusted origins get one; named origins with
//! credentials; static files served on the node's own origin without credentials.

mod common;
use common::auth::*;
use common::raw_http::Http;
use common::*;

fn preflight(s: &Server, origin: &str) -> raw_http::Answer {
    Http::connect(&s.addr)
        .request(
            "OPTIONS",
            "/Product/1",
            &[
                "Host: localhost",
                &format!("Origin: {origin}"),
                "Access-Control-Request-Method: PUT",
                "Access-Control-Request-Headers: content-type, authorization",
            ],
            "",
        )
        .expect("an answer")
}

fn get_from(s: &Server, origin: &str, path: &str, extra: &[&str]) -> raw_http::Answer {
    let origin = format!("Origin: {origin}");
    let mut lines = vec!["Host: localhost", origin.as_str()];
    lines.extend_from_slice(extra);
    Http::connect(&s.addr)
        .request("GET", path, &lines, "")
        .expect("an answer")
}

#[test]
fn a_node_with_users_answers_any_origin_preflight_first_and_errors_too() {
    let s = Server::start(PRODUCT_TABLE);
    let a = agent();
    create_admin(&a, &s);
    as_admin(
        &a,
        "PUT",
        &s.url("/Product/1"),
        Some(serde_json::json!({"n": 1})),
    );

    let p = preflight(&s, "https://app.example.com");
    assert_eq!(p.status, 204, "a preflight needs no credentials: {p:?}");
    assert_eq!(p.header("access-control-allow-origin"), Some("*"));
    let methods = p.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("PUT") && methods.contains("PATCH"),
        "{methods}"
    );
    let headers = p
        .header("access-control-allow-headers")
        .unwrap()
        .to_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"));
    assert!(p.header("access-control-max-age").is_some());

    // Without credentials: the 401 is readable by the page.
    let r = get_from(&s, "https://app.example.com", "/Product/1", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // With them: the record, its ETag exposed to the script.
    let auth = format!("Authorization: {}", basic(ADMIN.0, ADMIN.1));
    let r = get_from(&s, "https://app.example.com", "/Product/1", &[&auth]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-expose-headers")
        .unwrap()
        .contains("ETag"));
    // A request without Origin (not from a page) carries no CORS lines.
    let r = Http::connect(&s.addr)
        .request("GET", "/Product/1", &["Host: localhost", &auth], "")
        .unwrap();
    assert_eq!(r.header("access-control-allow-origin"), None);
    // A plain OPTIONS (no preflight) says what is allowed.
    let o = Http::connect(&s.addr)
        .request("OPTIONS", "/Product/1", &["Host: localhost"], "")
        .unwrap();
    assert_eq!(o.status, 204);
    assert!(o.header("allow").unwrap().contains("DELETE"));
}

#[test]
fn an_open_node_answers_only_trusted_origins() {
    let s = Server::start(PRODUCT_TABLE);
    put(&agent(), &s.url("/Product/1"), r#"{"n":1}"#);
    let foreign = preflight(&s, "https://evil.test");
    assert_eq!(
        foreign.header("access-control-allow-origin"),
        None,
        "{foreign:?}"
    );
    assert!(foreign.header("access-control-allow-methods").is_none());
    let r = get_from(&s, "https://evil.test", "/Product/1", &[]);
    assert_eq!(r.header("access-control-allow-origin"), None);

    let local = preflight(&s, "http://localhost:3000");
    assert_eq!(local.status, 204);
    assert_eq!(
        local.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert_eq!(local.header("vary"), Some("Origin"));
}

#[test]
fn named_origins_may_send_credentials() {
    let s = Server::start(&format!(
        "[http.cors]\norigins = [\"https://app.example.com\"]\ncredentials = true\n{PRODUCT_TABLE}"
    ));
    let ok = preflight(&s, "https://app.example.com");
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    let other = preflight(&s, "https://other.example.com");
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[test]
fn an_event_stream_from_another_origin_carries_the_cors_line() {
    let s = Server::start(PRODUCT_TABLE);
    let mut c = Http::connect(&s.addr);
    use std::io::{Read, Write};
    write!(
        c.s,
        "GET /Product/ HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost:5173\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    c.s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && c.s.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("access-control-allow-origin: http://localhost:5173\r\n"),
        "{head}"
    );
}

#[test]
fn static_files_are_served_without_credentials_and_tables_still_need_them() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("js")).unwrap();
    std::fs::write(web.join("index.html"), "<h1>shop</h1>").unwrap();
    std::fs::write(web.join("js/app.js"), "console.log(1)").unwrap();
    let s = Server::start(&format!(
        "static_dir = {:?}\n{PRODUCT_TABLE}",
        web.display().to_string()
    ));
    let a = agent();
    create_admin(&a, &s);

    let index = get(&a, &s.url("/"));
    assert_eq!((index.status, index.body.as_str()), (200, "<h1>shop</h1>"));
    assert_eq!(
        index.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    let js = get(&a, &s.url("/js/app.js"));
    assert_eq!(js.status, 200);
    assert!(js.content_type.unwrap().starts_with("text/javascript"));
    // Revalidation: the ETag gives 304.
    let etag = js.etag.unwrap();
    let again = send(
        &a,
        "GET",
        &s.url("/js/app.js"),
        None,
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
    // Tables are not static: they still need credentials; a missing file is not served.
    assert_eq!(get(&a, &s.url("/Product/1")).status, 401);
    assert_eq!(get(&a, &s.url("/js/missing.js")).status, 401);
    // Writes to a static path are not static.
    assert_eq!(
        send(&a, "PUT", &s.url("/index.html"), Some("{}"), &[]).status,
        401
    );
}

#[test]
fn a_static_dir_that_cannot_be_read_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let e = match Server::start_at(dir.path(), &data, "static_dir = \"/nonexistent/web\"\n") {
        Ok(_) => panic!("started with a missing static_dir"),
        Err(e) => e,
    };
    assert!(e.contains("/nonexistent/web"), "{e}");
}
