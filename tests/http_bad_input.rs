//! Bad input over HTTP: each case gets the status that says what was wrong, and the server
//! keeps serving everyone else.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn still_serving(s: &Server) {
    let a = agent();
    assert_eq!(
        get(&a, &s.url("/health")).status,
        200,
        "server stopped serving:\n{}",
        s.log()
    );
}

fn status_of(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn malformed_request_line_is_400() {
    let s = Server::start(PRODUCT_TABLE);
    let r = raw(&s.addr, b"THIS IS NOT HTTP\r\n\r\n", Duration::from_secs(2));
    assert_eq!(status_of(&r), 400, "{r}");
    assert!(r.contains("application/problem+json"));
    let r = raw(
        &s.addr,
        b"GET nopath HTTP/1.1\r\n\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(status_of(&r), 400, "{r}");
    let r = raw(
        &s.addr,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        Duration::from_secs(2),
    );
    assert_eq!(status_of(&r), 400, "{r}");
    still_serving(&s);
}

#[test]
fn oversized_headers_are_431_and_body_413() {
    let s = Server::start(PRODUCT_TABLE);
    let big = format!(
        "GET /Product/1 HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(
        status_of(&raw(&s.addr, big.as_bytes(), Duration::from_secs(2))),
        431
    );
    let head = "PUT /Product/1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n";
    assert_eq!(
        status_of(&raw(&s.addr, head.as_bytes(), Duration::from_secs(2))),
        413
    );
    // A chunked body over the limit too.
    let mut chunked = b"PUT /Product/1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536)).as_bytes());
    }
    assert_eq!(
        status_of(&raw(&s.addr, &chunked, Duration::from_secs(3))),
        413
    );
    still_serving(&s);
}

#[test]
fn invalid_json_wrong_type_unknown_table_bad_query_id_mismatch() {
    let s = Server::start(PRODUCT_TABLE);
    let a = agent();
    let r = put(&a, &s.url("/Product/1"), r#"{"name": "x",}"#);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("line 1 column"),
        "{}",
        r.body
    );
    assert_eq!(r.content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(put(&a, &s.url("/Product/1"), "[1,2]").status, 400);
    let r = send(
        &a,
        "PUT",
        &s.url("/Product/1"),
        Some("name=x"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(r.status, 415, "{}", r.body);
    let r = get(&a, &s.url("/Nope/1"));
    assert_eq!(r.status, 404);
    assert!(r.json()["detail"].as_str().unwrap().contains("Nope"));
    let r = get(&a, &s.url("/Product/?price=foo=3"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("foo"),
        "{}",
        r.body
    );
    let r = get(&a, &s.url("/Product/?(price=3"));
    assert_eq!(r.status, 400, "{}", r.body);
    let r = put(&a, &s.url("/Product/1"), r#"{"id":"2","name":"x"}"#);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("\"1\""),
        "{}",
        r.body
    );
    let r = send(&a, "PATCH", &s.url("/Product/1"), Some(r#"{"id":7}"#), &[]);
    assert_eq!(r.status, 400);
    assert_eq!(
        send(&a, "POST", &s.url("/Product/1"), Some("{}"), &[]).status,
        405
    );
    still_serving(&s);
}

#[test]
fn slow_client_is_closed_and_others_are_served() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = format!(
        "[storage]\ndata_dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\nrequest_timeout_ms = 500\nidle_timeout_ms = 1000\n{PRODUCT_TABLE}",
        data.display().to_string()
    );
    let path = tmp.path().join("c.toml");
    std::fs::write(&path, cfg).unwrap();
    let s = Server::start_with_config(tmp.path(), &path, &data).unwrap();

    // Trickle a request one byte every 100 ms: closed after the request timeout, with 408.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let req = b"GET /Product/1 HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for b in req.iter() {
        if c.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        still_serving_quick(&s);
        if start.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    assert!(
        closed || out.contains("408"),
        "slow client not cut off: {out:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(4));

    // An idle keep-alive connection is closed after the idle timeout.
    let mut idle = TcpStream::connect(&s.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "idle connection closed without data");
    assert!(
        t.elapsed() >= Duration::from_millis(800) && t.elapsed() < Duration::from_secs(4),
        "{:?}",
        t.elapsed()
    );
    still_serving(&s);
}

fn still_serving_quick(s: &Server) {
    let r = raw(
        &s.addr,
        b"GET /health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
    );
    assert_eq!(status_of(&r), 200, "{r}");
}

#[test]
fn a_thousand_connections_opened_and_dropped() {
    let s = Server::start(PRODUCT_TABLE);
    let mut conns = Vec::new();
    for i in 0..1000 {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        if i % 3 == 0 {
            // Some send half a request before vanishing.
            let _ = c.write_all(
                b"PUT /Product/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\n{\"a\"",
            );
        }
        conns.push(c);
    }
    still_serving(&s);
    drop(conns);
    std::thread::sleep(Duration::from_millis(300));
    still_serving(&s);
    // Connection counts return to (nearly) nothing once the clients are gone.
    let a = agent();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open: u64 = get(&a, &s.url("/status")).json()["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["connections"].as_u64().unwrap())
            .sum();
        if open <= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} connections still counted open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = Server::start(PRODUCT_TABLE);
    let a = agent();
    put(&a, &s.url("/Product/p1"), r#"{"v":1}"#);
    put(&a, &s.url("/Product/p2"), r#"{"v":2}"#);
    let mut req = Vec::new();
    for id in ["p1", "p2", "missing", "p1"] {
        req.extend_from_slice(format!("GET /Product/{id} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    req.extend_from_slice(b"GET /Product/p2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    let out = raw(&s.addr, &req, Duration::from_secs(3));
    let statuses: Vec<u16> = out
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| out[i + 9..i + 12].parse().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 200, 404, 200, 200], "{out}");
    let v1 = out.find("\"v\":1").unwrap();
    let v2 = out.find("\"v\":2").unwrap();
    assert!(v1 < v2);
}

#[test]
fn rfc9112_request_rules_get_their_answers_at_once() {
    let s = Server::start(PRODUCT_TABLE);
    let wait = Duration::from_secs(5);
    let cases: [(&[u8], u16); 9] = [
        // §3.2: an HTTP/1.1 request without Host.
        (b"GET /Product/1 HTTP/1.1\r\n\r\n", 400),
        // §5.1: whitespace between a field name and the colon.
        (b"GET /Product/1 HTTP/1.1\r\nHost : h\r\n\r\n", 400),
        // §5.2: obs-fold (a field line continued on the next line).
        (b"GET /Product/1 HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400),
        // §7.1: a chunk size that is not hex.
        (
            b"PUT /Product/1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            400,
        ),
        // §6.2: Content-Length is 1*DIGIT.
        (
            b"PUT /Product/1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: +2\r\n\r\n{}",
            400,
        ),
        // §6.1: Transfer-Encoding in HTTP/1.0.
        (
            b"PUT /Product/1 HTTP/1.0\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            400,
        ),
        // §3.2.2: absolute-form is accepted; its authority is the host.
        (b"GET http://localhost/Product/1 HTTP/1.1\r\n\r\n", 404),
        (b"GET http://evil.test/Product/1 HTTP/1.1\r\nHost: localhost\r\n\r\n", 421),
        // RFC 9110 §9.1: a method the server does not know.
        (b"get /Product/1 HTTP/1.1\r\nHost: h\r\n\r\n", 501),
    ];
    for (req, want) in cases {
        let r = raw(&s.addr, req, wait);
        assert_eq!(status_of(&r), want, "{}: {r}", String::from_utf8_lossy(req));
    }
    // Nothing was stored by the refused writes.
    assert_eq!(get(&agent(), &s.url("/Product/1")).status, 404);
    still_serving(&s);
}

/// Sends `head` and `body_bytes` of body without reading, as a client that stops at the
/// first failed write (curl does); then reads the answer. `Err` if a write failed first.
fn send_body_then_read(s: &Server, head: &str, body_bytes: usize) -> Result<String, String> {
    let mut c = TcpStream::connect(&s.addr).map_err(|e| e.to_string())?;
    c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < body_bytes {
        let n = c
            .write(&chunk)
            .map_err(|e| format!("write failed after {sent} bytes of body: {e}"))?;
        sent += n;
    }
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).to_string())
}

#[test]
fn an_early_413_reaches_a_client_still_sending_its_body() {
    let s = Server::start(PRODUCT_TABLE);
    // Declared over the 1 MiB limit: answered after the head, while the body still comes.
    let head = "PUT /Product/1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 6000000\r\n\r\n";
    for attempt in 0..3 {
        // The server keeps reading (and discarding) after its answer, so the client's writes
        // do not fail on a reset, and the answer is there to read.
        let got = send_body_then_read(&s, head, 6_000_000)
            .unwrap_or_else(|e| panic!("attempt {attempt}: {e}"));
        assert_eq!(status_of(&got), 413, "attempt {attempt}: {got}");
    }
    still_serving(&s);
}
