//! Authentication and permissions over HTTP, with independent clients (ureq, raw SSE over
//! TCP, tungstenite): each operation allowed and refused per role over REST, SSE and
//! WebSocket; the super-user's paths; bearer tokens (login, use, expiry, refresh, tampering,
//! revocation by a password change); a role or password change applying to the next request
//! (the credential cache follows the tables); accounts never showing a password hash.

mod common;
use common::auth::*;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Roles: `reader` reads Product; `inserter` inserts; `updater` updates; `deleter` deletes;
/// `publisher` reads and updates Product (so it may publish to a record's topic). One user per role, named
/// like it, password `{name}-password`.
fn server() -> (Server, ureq::Agent) {
    let s = Server::start(&format!(
        "[shards]\ncount = 2\n\n[security]\naccess_token_secs = 2\n\n{PRODUCT_TABLE}"
    ));
    let a = agent();
    create_admin(&a, &s);
    for (role, perm) in [
        ("reader", "read"),
        ("inserter", "insert"),
        ("updater", "update"),
        ("deleter", "delete"),
    ] {
        put_role(
            &a,
            &s,
            role,
            json!({ "Product": { perm: true } }),
            json!([]),
        );
        create_user(&a, &s, role, &format!("{role}-password"), &[role]);
    }
    put_role(
        &a,
        &s,
        "publisher",
        json!({ "Product": { "read": true, "update": true } }),
        json!([]),
    );
    create_user(
        &a,
        &s,
        "publisher",
        "publisher-password",
        &["publisher", "reader"],
    );
    (s, a)
}

fn creds(user: &str) -> (String, String) {
    (user.to_string(), format!("{user}-password"))
}

/// The status of a request as `user`.
fn status(
    a: &ureq::Agent,
    s: &Server,
    user: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> u16 {
    let (u, p) = creds(user);
    as_user(a, (&u, &p), method, &s.url(path), body).status
}

#[test]
fn each_rest_operation_needs_its_permission() {
    let (s, a) = server();
    assert_eq!(
        as_admin(&a, "PUT", &s.url("/Product/1"), Some(json!({"v": 1}))).status,
        201
    );
    // (method, path, body, the one user allowed, its status); the others get 403.
    let cases = [
        ("GET", "/Product/1", None, "reader", 200),
        ("GET", "/Product/?v=1", None, "reader", 200),
        ("GET", "/Product", None, "reader", 200),
        ("POST", "/Product/", Some(r#"{"v":2}"#), "inserter", 201),
        ("PUT", "/Product/new", Some(r#"{"v":3}"#), "inserter", 201),
        ("PUT", "/Product/1", Some(r#"{"v":4}"#), "updater", 204),
        ("PATCH", "/Product/1", Some(r#"{"w":5}"#), "updater", 204),
        ("DELETE", "/Product/1", None, "deleter", 200),
    ];
    for (method, path, body, allowed, ok) in cases {
        // The refused users first: the allowed one's request changes the record.
        let users = ["reader", "inserter", "updater", "deleter"];
        for user in users.iter().filter(|u| **u != allowed).chain([&allowed]) {
            let want = if *user == allowed { ok } else { 403 };
            let got = status(&a, &s, user, method, path, body);
            assert_eq!(got, want, "{user} {method} {path}");
        }
    }
    // Without credentials, or with bad ones: 401, whatever the path.
    for path in ["/Product/1", "/admin/tables", "/status", "/nothing"] {
        assert_eq!(get(&a, &s.url(path)).status, 401, "{path}");
    }
    for bad in ["Basic !!!", "Basic eA==", "Digest x", "Bearer nope"] {
        assert_eq!(
            call(&a, "GET", &s.url("/Product/1"), None, Some(bad)).status,
            401,
            "{bad}"
        );
    }
}

#[test]
fn admin_and_cluster_paths_are_for_the_super_user_and_status_for_any_user() {
    let (s, a) = server();
    for path in [
        "/admin/tables",
        "/admin/users",
        "/admin/roles",
        "/cluster/digest",
    ] {
        assert_eq!(status(&a, &s, "reader", "GET", path, None), 403, "{path}");
        assert_eq!(
            as_admin(&a, "GET", &s.url(path), None).status,
            200,
            "{path}"
        );
    }
    let drop = status(&a, &s, "deleter", "DELETE", "/admin/tables/Product", None);
    assert_eq!(drop, 403);
    assert_eq!(status(&a, &s, "reader", "GET", "/status", None), 200);
    assert_eq!(get(&a, &s.url("/health")).status, 200);
    // Accounts never show a password or its hash.
    let users = as_admin(&a, "GET", &s.url("/admin/users"), None);
    assert!(
        !users.body.contains("argon2") && !users.body.contains("password"),
        "{}",
        users.body
    );
    let one = as_admin(&a, "GET", &s.url("/admin/users/reader"), None);
    assert_eq!(one.json(), json!({"name": "reader", "roles": ["reader"]}));
    // A role a user holds cannot go; an unknown role cannot be given.
    let r = as_admin(&a, "DELETE", &s.url("/admin/roles/reader"), None);
    assert_eq!(r.status, 409, "{}", r.body);
    let body = json!({"name": "x", "password": "long-enough", "roles": ["nope"]});
    assert_eq!(
        as_admin(&a, "POST", &s.url("/admin/users"), Some(body)).status,
        400
    );
    let body = json!({"name": "x", "password": "short", "roles": []});
    assert_eq!(
        as_admin(&a, "POST", &s.url("/admin/users"), Some(body)).status,
        400
    );
    let body = json!({"name": "reader", "password": "long-enough", "roles": []});
    assert_eq!(
        as_admin(&a, "POST", &s.url("/admin/users"), Some(body)).status,
        409
    );
}

#[test]
fn a_role_or_password_change_applies_to_the_next_request() {
    let (s, a) = server();
    as_admin(&a, "PUT", &s.url("/Product/1"), Some(json!({})));
    assert_eq!(status(&a, &s, "reader", "GET", "/Product/1", None), 200);
    assert_eq!(
        status(&a, &s, "reader", "GET", "/Product/1", None),
        200,
        "cached"
    );
    put_role(
        &a,
        &s,
        "reader",
        json!({ "Product": { "delete": true } }),
        json!([]),
    );
    assert_eq!(
        status(&a, &s, "reader", "GET", "/Product/1", None),
        403,
        "read taken"
    );
    put_role(
        &a,
        &s,
        "reader",
        json!({ "*": { "read": true } }),
        json!([]),
    );
    assert_eq!(
        status(&a, &s, "reader", "GET", "/Product/1", None),
        200,
        "read via *"
    );
    // Another role given to the user.
    let body = json!({"roles": ["reader", "deleter"]});
    assert_eq!(
        as_admin(&a, "PUT", &s.url("/admin/users/reader"), Some(body)).status,
        204
    );
    assert_eq!(status(&a, &s, "reader", "DELETE", "/Product/1", None), 200);
    // A new password: the old one stops working at once.
    let body = json!({"password": "a-new-password"});
    assert_eq!(
        as_admin(&a, "PUT", &s.url("/admin/users/reader"), Some(body)).status,
        204
    );
    assert_eq!(status(&a, &s, "reader", "GET", "/Product/", None), 401);
    let r = as_user(
        &a,
        ("reader", "a-new-password"),
        "GET",
        &s.url("/Product/"),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        as_admin(&a, "DELETE", &s.url("/admin/users/reader"), None).status,
        204
    );
    let r = as_user(
        &a,
        ("reader", "a-new-password"),
        "GET",
        &s.url("/Product/"),
        None,
    );
    assert_eq!(r.status, 401, "a deleted user");
}

fn login(a: &ureq::Agent, s: &Server, user: &str, password: &str) -> Resp {
    let body = json!({ "username": user, "password": password }).to_string();
    send(a, "POST", &s.url("/auth/login"), Some(&body), &[])
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[test]
fn bearer_tokens_work_until_they_expire_refresh_and_refuse_tampering() {
    let (s, a) = server();
    as_admin(&a, "PUT", &s.url("/Product/1"), Some(json!({})));
    let url = s.url("/Product/1");
    assert_eq!(login(&a, &s, "reader", "wrong-password").status, 401);
    let r = login(&a, &s, "reader", "reader-password");
    assert_eq!(r.status, 200, "{}", r.body);
    let tokens = r.json();
    assert_eq!(tokens["expires_in"], 2);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&a, "GET", &url, None, Some(&bearer(&access))).status,
        200
    );
    assert_eq!(
        call(&a, "DELETE", &url, None, Some(&bearer(&access))).status,
        403
    );
    // Tampered: another user's name under the same signature; a flipped signature byte.
    let (body, sig) = access.rsplit_once('.').unwrap();
    let forged = body.replace(
        &body[4..],
        &base64url(
            &String::from_utf8(unbase64url(&body[4..]))
                .unwrap()
                .replace("reader", "admin"),
        ),
    );
    let forged = format!("{forged}.{sig}");
    assert_eq!(
        call(&a, "GET", &url, None, Some(&bearer(&forged))).status,
        401
    );
    let mut flipped = access.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(
        call(&a, "GET", &url, None, Some(&bearer(&flipped))).status,
        401
    );
    assert_eq!(
        call(&a, "GET", &url, None, Some(&bearer(&refresh))).status,
        401,
        "refresh is not access"
    );
    // Expiry.
    std::thread::sleep(Duration::from_millis(2100));
    let r = call(&a, "GET", &url, None, Some(&bearer(&access)));
    assert_eq!(r.status, 401, "{}", r.body);
    // Refresh gives a working token.
    let body = json!({ "refresh_token": refresh }).to_string();
    let r = send(&a, "POST", &s.url("/auth/refresh"), Some(&body), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&a, "GET", &url, None, Some(&bearer(&fresh))).status,
        200
    );
    let bad = json!({ "refresh_token": access }).to_string();
    assert_eq!(
        send(&a, "POST", &s.url("/auth/refresh"), Some(&bad), &[]).status,
        401
    );
    // A password change revokes the tokens issued before it.
    let change = json!({"password": "another-password"});
    assert_eq!(
        as_admin(&a, "PUT", &s.url("/admin/users/reader"), Some(change)).status,
        204
    );
    assert_eq!(
        call(&a, "GET", &url, None, Some(&bearer(&fresh))).status,
        401
    );
    assert_eq!(
        send(&a, "POST", &s.url("/auth/refresh"), Some(&body), &[]).status,
        401
    );
}

fn base64url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn unbase64url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// The head of the answer to an SSE request as `user`.
fn sse_head(addr: &str, path: &str, user: &str) -> String {
    let (u, p) = creds(user);
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n");
    req.push_str(&format!("Authorization: {}\r\n\r\n", basic(&u, &p)));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_string()
}

type Ws = tungstenite::WebSocket<TcpStream>;

/// A WebSocket upgrade as `user`: the socket, or the refusal's status.
fn ws_as(addr: &str, path: &str, user: &str) -> Result<Ws, u16> {
    use tungstenite::client::IntoClientRequest;
    let (u, p) = creds(user);
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", basic(&u, &p).parse().unwrap());
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match tungstenite::client(req, s) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(r.status().as_u16())
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

#[test]
fn sse_and_websocket_streams_need_read_and_websocket_messages_need_update() {
    let (s, a) = server();
    as_admin(&a, "PUT", &s.url("/Product/1"), Some(json!({"v": 1})));
    for path in ["/Product/1", "/Product/"] {
        let head = sse_head(&s.addr, path, "reader");
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        let refused = sse_head(&s.addr, path, "inserter");
        assert!(refused.starts_with("HTTP/1.1 403"), "{path}: {refused}");
        assert_eq!(ws_as(&s.addr, path, "deleter").err(), Some(403), "{path}");
        assert!(ws_as(&s.addr, path, "reader").is_ok(), "{path}");
    }
    let mut open = Sse::open_as(&s.addr, "/Product/1", &basic("reader", "reader-password"));
    assert_eq!(open.next().2["value"]["v"], 1, "the record first");
    as_admin(&a, "PATCH", &s.url("/Product/1"), Some(json!({"v": 2})));
    assert_eq!(open.next().2["value"]["v"], 2, "then its change");
    // A WebSocket message is a publish to the record's topic, which needs update on the
    // table: the publisher may, the reader may not.
    let mut ws = ws_as(&s.addr, "/Product/1", "publisher").unwrap();
    ws.send(tungstenite::Message::text(r#"{"hello":1}"#))
        .unwrap();
    let mut ws = ws_as(&s.addr, "/Product/1", "reader").unwrap();
    ws.send(tungstenite::Message::text(r#"{"hello":2}"#))
        .unwrap();
    let closed = loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(c)) => break c,
            Ok(_) => continue,
            Err(e) => panic!("expected a close frame: {e}"),
        }
    };
    let code = closed.map(|c| u16::from(c.code));
    assert_eq!(code, Some(1008), "closed for policy");
}

use common::sse::Sse;

#[test]
fn many_connections_with_the_same_new_credentials_share_one_password_check() {
    // More requests at once than `max_concurrent_password_checks` allows checks: those with
    // the same credentials wait for the one check instead of getting 503.
    let s = Server::start(&format!(
        "[shards]\ncount = 1\n\n[security]\nmax_concurrent_password_checks = 1\n\n{PRODUCT_TABLE}"
    ));
    let a = agent();
    create_admin(&a, &s);
    put_role(
        &a,
        &s,
        "reader",
        json!({ "Product": { "read": true } }),
        json!([]),
    );
    create_user(&a, &s, "many", "many-password", &["reader"]);
    let url = s.url("/Product/");
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let url = url.clone();
                scope.spawn(move || {
                    let a = agent();
                    as_user(&a, ("many", "many-password"), "GET", &url, None).status
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
