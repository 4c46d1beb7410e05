//! The admin page, fetched with independent clients (ureq, raw TCP): the page and its files
//! are served from the binary and reach for nothing elsewhere; `/admin/live` streams
//! snapshots whose request count follows the requests made; the live streams of a shard are
//! bounded (the one past the bound is answered 503 with `Retry-After`, and a closed stream
//! frees its place); once users exist, only the super-user may see any of it.

mod common;
use common::auth::*;
use common::sse::Sse;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The streams one shard serves at once (`admin_page::live::MAX_PER_SHARD`).
const MAX_PER_SHARD: usize = 4;

#[test]
fn page_and_files_come_from_the_binary() {
    let s = Server::start(PRODUCT_TABLE);
    let a = agent();
    let page = get(&a, &s.url("/admin/"));
    assert_eq!(page.status, 200);
    assert!(page
        .content_type
        .as_deref()
        .unwrap_or("")
        .starts_with("text/html"));
    for part in [
        "<canvas id=\"rate\"",
        "<canvas id=\"latency\"",
        "src=\"/admin/admin.js\"",
        "href=\"/admin/admin.css\"",
    ] {
        assert!(page.body.contains(part), "page lacks {part}");
    }
    let script = get(&a, &s.url("/admin/admin.js"));
    assert_eq!(script.status, 200);
    assert!(script
        .content_type
        .as_deref()
        .unwrap_or("")
        .starts_with("text/javascript"));
    assert!(script.body.contains("new EventSource(\"/admin/live\")"));
    assert!(
        script.body.contains("getContext(\"2d\")"),
        "charts drawn on a canvas"
    );
    let style = get(&a, &s.url("/admin/admin.css"));
    assert_eq!(style.status, 200);
    assert!(style
        .content_type
        .as_deref()
        .unwrap_or("")
        .starts_with("text/css"));
    for (name, body) in [
        ("page", &page.body),
        ("script", &script.body),
        ("style", &style.body),
    ] {
        assert!(
            !body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"),
            "{name} reaches elsewhere"
        );
    }
    assert_eq!(get(&a, &s.url("/admin/nothing-here")).status, 404);
    let redirect = raw(
        &s.addr,
        b"GET /admin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(redirect.starts_with("HTTP/1.1 308"), "{redirect}");
    assert!(redirect.contains("Location: /admin/\r\n"), "{redirect}");
}

#[test]
fn live_snapshots_follow_the_requests_made() {
    let s = Server::start(&format!("[shards]\ncount = 2\n\n{PRODUCT_TABLE}"));
    let a = agent();
    let mut live = Sse::open(&s.addr, "/admin/live", None);
    let (_, event, first) = live.next();
    assert_eq!(event, "snapshot");
    assert_eq!(first["shards"].as_array().unwrap().len(), 2);
    assert_eq!(first["tables"][0]["name"], "Product");
    assert_eq!(first["mqtt"]["clients"], serde_json::json!([]));
    assert!(first["replication"].is_null(), "clustering is off");
    let before = first["requests"]["total"].as_u64().unwrap();
    let n = 12;
    for i in 0..n {
        assert!(put(&a, &s.url(&format!("/Product/{i}")), r#"{"price":2}"#).status < 300);
    }
    let mut snapshot = first;
    let deadline = Instant::now() + Duration::from_secs(30);
    while snapshot["requests"]["total"].as_u64().unwrap() < before + n {
        assert!(
            Instant::now() < deadline,
            "requests never showed: {snapshot}"
        );
        snapshot = live.next().2;
    }
    assert_eq!(snapshot["requests"]["total"].as_u64().unwrap(), before + n);
    assert!(snapshot["requests"]["by_class"]["record"].as_u64().unwrap() >= n);
    let records: u64 = snapshot["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["records"].as_u64().unwrap())
        .sum();
    assert_eq!(records, n);
}

#[test]
fn live_streams_are_bounded_per_shard_and_a_closed_one_frees_its_place() {
    let s = Server::start("[shards]\ncount = 1\n");
    let mut open: Vec<Sse> = (0..MAX_PER_SHARD)
        .map(|_| Sse::open(&s.addr, "/admin/live", None))
        .collect();
    let (status, refused) = open_live(&s.addr);
    assert_eq!(status, 503, "{refused}");
    assert!(refused.contains("Retry-After: "), "{refused}");
    // The open streams are unharmed.
    assert_eq!(open[0].next().1, "snapshot");
    drop(open.pop());
    // The server notices the close within a tick of the stream; until then it refuses.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, head) = open_live(&s.addr);
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{head}");
        assert!(
            Instant::now() < deadline,
            "the closed stream's place never came free"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asks for a live stream on a new connection; its status and head (the connection closes).
fn open_live(addr: &str) -> (u16, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /admin/live HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && c.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head)
}

#[test]
fn with_users_only_the_super_user_sees_the_admin_page() {
    let s = Server::start(PRODUCT_TABLE);
    let a = agent();
    create_admin(&a, &s);
    put_role(
        &a,
        &s,
        "reader",
        serde_json::json!({ "Product": { "read": true } }),
        serde_json::json!([]),
    );
    create_user(&a, &s, "viewer", "viewer-password", &["reader"]);
    let viewer = basic("viewer", "viewer-password");
    let admin = basic(ADMIN.0, ADMIN.1);
    for path in [
        "/admin/",
        "/admin/admin.js",
        "/admin/admin.css",
        "/admin/live",
    ] {
        let url = s.url(path);
        assert_eq!(call(&a, "GET", &url, None, None).status, 401, "{path}");
        assert_eq!(
            call(&a, "GET", &url, None, Some(&viewer)).status,
            403,
            "{path}"
        );
    }
    assert_eq!(
        call(&a, "GET", &s.url("/admin/"), None, Some(&admin)).status,
        200
    );
    let mut live = Sse::open_as(&s.addr, "/admin/live", &admin);
    let (_, event, snapshot) = live.next();
    assert_eq!(event, "snapshot");
    assert_eq!(
        snapshot["tables"][0]["name"], "Product",
        "internal tables are not listed"
    );
}
