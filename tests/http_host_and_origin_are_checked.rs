//! DNS rebinding and cross-site WebSockets: a request naming a host this node does not serve
//! (a public name an attacker could point at the node) is refused with 421; loopback, IP
//! addresses, local names and the configured names are served; a WebSocket upgrade from a
//! page of a foreign origin is refused with 403, from the node's own origin, loopback or a
//! configured name it opens.

mod common;
use common::raw_http::Http;
use common::*;
use tungstenite::client::IntoClientRequest;

fn limits_status(s: &Server) -> serde_json::Value {
    get(&agent(), &s.url("/status")).json()["limits"].clone()
}

fn status_for_host(s: &Server, host: &str) -> u16 {
    let line = format!("Host: {host}");
    Http::connect(&s.addr)
        .request("GET", "/Product/1", &[&line], "")
        .expect("an answer")
        .status
}

#[test]
fn a_host_not_allowed_is_421_and_loopback_and_configured_names_are_served() {
    let s = Server::start(&format!(
        "allowed_hosts = [\"db.example.com\", \"*.apps.example.com\"]\n{PRODUCT_TABLE}"
    ));
    let s = &s;
    let port = s.addr.rsplit_once(':').unwrap().1;
    let served = [
        "localhost".to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("10.1.2.3:{port}"),
        "node-7".to_string(),
        "db.example.com".to_string(),
        format!("DB.Example.com:{port}"),
        "x.apps.example.com".to_string(),
    ];
    for h in &served {
        assert_eq!(
            status_for_host(s, h),
            404,
            "{h} is served (the record does not exist)"
        );
    }
    let refused = [
        "evil.test",
        "db.example.com.evil.test",
        "apps.example.com",
        "localhost.evil.test:80",
    ];
    for h in refused {
        let line = format!("Host: {h}");
        let a = Http::connect(&s.addr)
            .request("GET", "/Product/1", &[&line], "")
            .unwrap();
        assert_eq!(a.status, 421, "{h}: {}", a.body);
        assert_eq!(a.json()["status"], 421);
        assert!(a.body.contains("allowed_hosts"), "{}", a.body);
    }
    // A write under a refused name changes nothing.
    let a = Http::connect(&s.addr)
        .request(
            "PUT",
            "/Product/1",
            &["Host: evil.test", "Content-Type: application/json"],
            "{}",
        )
        .unwrap();
    assert_eq!(a.status, 421);
    assert_eq!(status_for_host(s, "localhost"), 404);
    assert_eq!(limits_status(s)["hosts_refused"], refused.len() + 1);
}

#[test]
fn allowed_hosts_star_serves_any_name() {
    let s = Server::start(&format!("allowed_hosts = [\"*\"]\n{PRODUCT_TABLE}"));
    assert_eq!(status_for_host(&s, "evil.test"), 404);
    assert_eq!(limits_status(&s)["hosts_refused"], 0);
}

/// The HTTP status of a WebSocket handshake on `path` from a page of `origin`.
fn ws_status(s: &Server, path: &str, origin: Option<&str>, protocol: Option<&str>) -> u16 {
    let mut req = format!("ws://{}{path}", s.addr)
        .into_client_request()
        .unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let stream = std::net::TcpStream::connect(&s.addr).unwrap();
    match tungstenite::client::client(req, stream) {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            resp.status().as_u16()
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

#[test]
fn a_websocket_from_a_foreign_origin_is_403() {
    let s = Server::start(&format!(
        "allowed_hosts = [\"app.example.com\"]\n{PRODUCT_TABLE}"
    ));
    let own = format!("http://{}", s.addr);
    for path in ["/Product/1", "/Product/"] {
        assert_eq!(
            ws_status(&s, path, Some("https://evil.test"), None),
            403,
            "{path}"
        );
        assert_eq!(ws_status(&s, path, Some("null"), None), 403, "{path}");
        assert_eq!(
            ws_status(&s, path, Some("http://10.9.9.9:80"), None),
            403,
            "{path}"
        );
        assert_eq!(
            ws_status(&s, path, Some(&own), None),
            101,
            "{path}: its own origin"
        );
        assert_eq!(
            ws_status(&s, path, Some("http://localhost:3000"), None),
            101,
            "{path}"
        );
        assert_eq!(
            ws_status(&s, path, Some("https://app.example.com"), None),
            101,
            "{path}"
        );
        assert_eq!(
            ws_status(&s, path, None, None),
            101,
            "{path}: not from a page"
        );
    }
    assert_eq!(
        ws_status(&s, "/mqtt", Some("https://evil.test"), Some("mqtt")),
        403
    );
    assert_eq!(ws_status(&s, "/mqtt", Some(&own), Some("mqtt")), 101);
    assert_eq!(limits_status(&s)["origins_refused"], 7);
}
