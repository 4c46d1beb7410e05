//! REST in every content type: records written as CBOR or MessagePack and read back as
//! MessagePack, CBOR, JSON or CSV (decoded here with ciborium, rmp-serde and csv); 406 for an
//! `Accept` the server cannot meet, 415 and 400 for bodies it cannot read (storing nothing);
//! brotli and gzip answers decoded here with brotli and flate2 and compared with the plain
//! answer; small bodies left alone; HEAD with GET's headers; `/openapi` naming the tables.
//! Requests go over a raw socket so that every header and byte is the server's own.

mod common;
use common::auth::{as_admin, as_user, create_admin, create_user, put_role};
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};

/// An answer: status, headers (names lowercase), body bytes.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn varies_with(&self, token: &str) -> bool {
        self.header("vary")
            .is_some_and(|v| v.split(',').any(|t| t.trim() == token))
    }
}

/// One request on its own connection (`Connection: close`), read to the end.
fn call(s: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(body).unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    parse(&raw, method == "HEAD")
}

fn parse(raw: &[u8], head_only: bool) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let a = Answer {
        status,
        headers,
        body: raw[end..].to_vec(),
    };
    if !head_only {
        if let Some(len) = a.header("content-length") {
            assert_eq!(
                len.parse::<usize>().unwrap(),
                a.body.len(),
                "Content-Length"
            );
        }
    }
    a
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn from_cbor(a: &Answer) -> Value {
    assert_eq!(
        a.header("content-type"),
        Some("application/cbor"),
        "{}",
        a.text()
    );
    ciborium::from_reader(&a.body[..]).unwrap()
}

fn from_msgpack(a: &Answer) -> Value {
    assert_eq!(a.header("content-type"), Some("application/x-msgpack"));
    rmp_serde::from_slice(&a.body).unwrap()
}

/// The header and rows of a CSV answer.
fn from_csv(a: &Answer) -> (Vec<String>, Vec<Vec<String>>) {
    assert_eq!(a.header("content-type"), Some("text/csv; charset=utf-8"));
    let mut r = csv::Reader::from_reader(&a.body[..]);
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|row| row.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// What a CSV table of JSON `rows` holds: every attribute in the order first seen; text as
/// it is, nothing for a missing attribute or null, other values as JSON.
fn csv_of(rows: &Value) -> (Vec<String>, Vec<Vec<String>>) {
    let rows = rows.as_array().unwrap();
    let mut header: Vec<String> = Vec::new();
    for k in rows.iter().flat_map(|r| r.as_object().unwrap().keys()) {
        if !header.contains(k) {
            header.push(k.clone());
        }
    }
    let cells = rows
        .iter()
        .map(|r| {
            header
                .iter()
                .map(|k| match &r[k] {
                    Value::Null => String::new(),
                    Value::String(t) => t.clone(),
                    v => v.to_string(),
                })
                .collect()
        })
        .collect();
    (header, cells)
}

/// A header line: name and value.
type Header = (&'static str, &'static str);

const CBOR: Header = ("Content-Type", "application/cbor");
const MSGPACK: Header = ("Content-Type", "application/x-msgpack");

#[test]
fn records_round_trip_through_every_content_type() {
    let s = Server::start(PRODUCT_TABLE);
    let lamp = json!({"id": "p1", "name": "lamp", "category": "home", "price": 25,
                      "tags": ["a", "b"], "dims": {"w": 1.5}});
    let put = call(&s, "PUT", "/Product/p1", &[CBOR], &cbor(&lamp));
    assert_eq!(put.status, 201, "{}", put.text());
    for accept in ["application/x-msgpack", "application/msgpack"] {
        let got = call(&s, "GET", "/Product/p1", &[("Accept", accept)], b"");
        assert_eq!(from_msgpack(&got), lamp);
        assert!(got.varies_with("Accept"));
        assert_eq!(got.header("etag"), put.header("etag"));
    }
    let patch = rmp_serde::to_vec_named(&json!({"price": 30})).unwrap();
    assert_eq!(
        call(&s, "PATCH", "/Product/p1", &[MSGPACK], &patch).status,
        204
    );
    let plain = call(&s, "GET", "/Product/p1", &[], b"");
    assert_eq!(plain.header("content-type"), Some("application/json"));
    assert_eq!(plain.json()["price"], 30);
    let any = call(&s, "GET", "/Product/p1", &[("Accept", "*/*")], b"");
    assert_eq!(any.body, plain.body);

    let chair = json!({"name": "chair, oak", "category": "home", "price": 80, "legs": 4});
    let post = call(&s, "POST", "/Product/", &[CBOR], &cbor(&chair));
    assert_eq!(post.status, 201, "{}", post.text());
    let location = post.header("location").unwrap().to_string();
    let stored = call(&s, "GET", &location, &[("Accept", "application/cbor")], b"");
    let stored = from_cbor(&stored);
    assert_eq!(stored["name"], "chair, oak");
    assert_eq!(stored["legs"], 4);

    let q = "/Product/?category=home&sort(-price)";
    let json_rows = call(&s, "GET", q, &[], b"").json();
    let rows = from_cbor(&call(&s, "GET", q, &[("Accept", "application/cbor")], b""));
    assert_eq!(rows, json_rows);
    assert_eq!(rows[0]["legs"], 4);
    assert_eq!(rows[1]["id"], "p1");

    let (header, rows) = from_csv(&call(&s, "GET", q, &[("Accept", "text/csv")], b""));
    let expected = csv_of(&json_rows);
    assert_eq!((header, rows.clone()), expected);
    let cell = |row: usize, col: &str| {
        let i = expected.0.iter().position(|c| c == col).unwrap();
        rows[row][i].clone()
    };
    assert_eq!(cell(0, "name"), "chair, oak");
    assert_eq!(cell(0, "tags"), "");
    assert_eq!(cell(1, "tags"), r#"["a","b"]"#);
    assert_eq!(cell(1, "dims"), r#"{"w":1.5}"#);
    assert_eq!(cell(1, "price"), "30");

    let one = call(
        &s,
        "GET",
        "/Product/p1",
        &[("Accept", "text/csv;q=0.9, application/json;q=0.5")],
        b"",
    );
    let (header, rows) = from_csv(&one);
    assert_eq!(header.len(), 6);
    assert_eq!(rows.len(), 1);

    let etag = plain.header("etag").unwrap().to_string();
    let cached = call(
        &s,
        "GET",
        "/Product/p1",
        &[("Accept", "application/cbor"), ("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
}

#[test]
fn what_cannot_be_served_or_read_is_refused_and_stores_nothing() {
    let s = Server::start(PRODUCT_TABLE);
    for accept in [
        "text/html",
        "application/json;q=0",
        "image/png, text/plain",
        "text/*, text/csv;q=0",
    ] {
        let r = call(
            &s,
            "GET",
            "/Product/?category=home",
            &[("Accept", accept)],
            b"",
        );
        assert_eq!(r.status, 406, "{accept}");
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        for t in [
            "application/json",
            "application/cbor",
            "application/x-msgpack",
            "text/csv",
        ] {
            assert!(detail.contains(t), "{detail}");
        }
    }

    for ct in ["text/csv", "application/xml", "text/plain"] {
        let r = call(
            &s,
            "PUT",
            "/Product/x",
            &[("Content-Type", ct)],
            b"id,name\nx,lamp\n",
        );
        assert_eq!(r.status, 415, "{ct}");
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        for t in [
            "application/json",
            "application/cbor",
            "application/x-msgpack",
        ] {
            assert!(detail.contains(t), "{detail}");
        }
    }

    let nan = {
        let mut out = Vec::new();
        let m = std::collections::BTreeMap::from([("price", f64::NAN)]);
        ciborium::into_writer(&m, &mut out).unwrap();
        out
    };
    let bytes = {
        let v = ciborium::Value::Map(vec![(
            ciborium::Value::Text("photo".into()),
            ciborium::Value::Bytes(vec![0xff, 0xd8]),
        )]);
        let mut out = Vec::new();
        ciborium::into_writer(&v, &mut out).unwrap();
        out
    };
    let cases: [(&str, Header, Vec<u8>, &str); 5] = [
        ("PUT", CBOR, cbor(&json!([1, 2])), "map"),
        ("PUT", CBOR, nan, "NaN"),
        ("PATCH", CBOR, bytes, "byte string"),
        ("PUT", CBOR, vec![0xa1, 0x61], "invalid CBOR"),
        (
            "PUT",
            MSGPACK,
            vec![0x81, 0xa1, b'e', 0xd4, 5, 0],
            "extension",
        ),
    ];
    for (method, ct, body, named) in cases {
        let r = call(&s, method, "/Product/x", &[ct], &body);
        assert_eq!(r.status, 400, "{named}: {}", r.text());
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(named), "{named}: {detail}");
    }
    assert_eq!(call(&s, "GET", "/Product/x", &[], b"").status, 404);
    let all = call(&s, "GET", "/Product/?limit(10)", &[], b"");
    assert_eq!(all.json(), json!([]));
}

/// Puts `n` records whose query answer is well over a KiB.
fn fill(s: &Server, n: usize) {
    for i in 0..n {
        let body = json!({"id": format!("p{i:03}"), "name": format!("product number {i}"),
                          "category": "home", "price": i, "note": "in stock, ships in two days"});
        let r = call(
            s,
            "PUT",
            &format!("/Product/p{i:03}"),
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn answers_are_compressed_as_the_client_accepts() {
    let s = Server::start(PRODUCT_TABLE);
    fill(&s, 40);
    let q = "/Product/?category=home";
    let plain = call(&s, "GET", q, &[], b"");
    assert!(plain.body.len() > 2048, "{}", plain.body.len());
    assert_eq!(plain.header("content-encoding"), None);
    assert!(plain.varies_with("Accept-Encoding"));

    let gz = call(&s, "GET", q, &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.varies_with("Accept-Encoding") && gz.varies_with("Accept"));
    assert!(gz.body.len() < plain.body.len());
    assert_eq!(gunzip(&gz.body), plain.body);

    let br = call(
        &s,
        "GET",
        q,
        &[("Accept-Encoding", "gzip, deflate, br")],
        b"",
    );
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(unbrotli(&br.body), plain.body);
    let not_br = call(&s, "GET", q, &[("Accept-Encoding", "br;q=0, gzip")], b"");
    assert_eq!(not_br.header("content-encoding"), Some("gzip"));

    let head = call(&s, "HEAD", q, &[("Accept-Encoding", "gzip, br")], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for h in ["content-length", "content-encoding", "content-type", "vary"] {
        assert_eq!(head.header(h), br.header(h), "{h}");
    }

    let csv_plain = call(&s, "GET", q, &[("Accept", "text/csv")], b"");
    let csv_gz = call(
        &s,
        "GET",
        q,
        &[("Accept", "text/csv"), ("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!(csv_gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&csv_gz.body), csv_plain.body);

    let small = call(
        &s,
        "GET",
        "/Product/p001",
        &[("Accept-Encoding", "gzip, br")],
        b"",
    );
    assert!(small.body.len() < 1024);
    assert_eq!(small.header("content-encoding"), None);
    assert!(!small.varies_with("Accept-Encoding"));
    assert_eq!(small.json()["id"], "p001");
    let forced = call(
        &s,
        "GET",
        "/Product/p001",
        &[("Accept-Encoding", "gzip, identity;q=0")],
        b"",
    );
    assert_eq!(forced.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&forced.body), small.body);

    let etag = small.header("etag").unwrap().to_string();
    let not_modified = call(
        &s,
        "GET",
        "/Product/p001",
        &[
            ("Accept-Encoding", "gzip, identity;q=0"),
            ("If-None-Match", &etag),
        ],
        b"",
    );
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("content-encoding"), None);
    assert!(not_modified.body.is_empty());
}

#[test]
fn the_compression_threshold_and_switch_are_configured() {
    for http in ["compress_min_bytes = 1048576", "compress = false"] {
        // The harness's config ends inside [http]: these keys land there.
        let s = Server::start(&format!("{http}\n\n{PRODUCT_TABLE}"));
        fill(&s, 40);
        let r = call(
            &s,
            "GET",
            "/Product/?category=home",
            &[("Accept-Encoding", "gzip, br")],
            b"",
        );
        assert_eq!(r.status, 200, "{http}");
        assert_eq!(r.header("content-encoding"), None, "{http}");
        assert_eq!(r.json().as_array().unwrap().len(), 40);
    }
}

#[test]
fn openapi_describes_the_tables_a_user_may_read() {
    let s = Server::start(PRODUCT_TABLE);
    let a = agent();
    let order = json!({"name": "Order", "primary_key": "number", "indexes": ["customer"]});
    let made = send(
        &a,
        "POST",
        &s.url("/admin/tables"),
        Some(&order.to_string()),
        &[("Content-Type", "application/json")],
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let doc = call(&s, "GET", "/openapi", &[], b"").json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"), "{doc}");
    for p in [
        "/Product",
        "/Product/",
        "/Product/{id}",
        "/Order",
        "/Order/",
        "/Order/{id}",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} in {}", doc["paths"]);
    }
    let query: Vec<&str> = doc["paths"]["/Order/"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(query, ["number", "customer"]);
    let record = &doc["paths"]["/Product/{id}"];
    for m in ["get", "put", "patch", "delete"] {
        assert!(record.get(m).is_some(), "{m}");
    }
    let types = &record["put"]["requestBody"]["content"];
    assert!(
        types.get("application/cbor").is_some() && types.get("application/x-msgpack").is_some()
    );
    assert!(record["get"]["responses"]["200"]["content"]
        .get("text/csv")
        .is_some());

    create_admin(&a, &s);
    assert_eq!(call(&s, "GET", "/openapi", &[], b"").status, 401);
    put_role(
        &a,
        &s,
        "shop",
        json!({"Product": {"read": true}}),
        json!([]),
    );
    create_user(&a, &s, "clerk", "clerk-password", &["shop"]);
    let seen = as_user(
        &a,
        ("clerk", "clerk-password"),
        "GET",
        &s.url("/openapi"),
        None,
    );
    assert_eq!(seen.status, 200, "{}", seen.body);
    let paths = seen.json()["paths"].clone();
    assert!(paths.get("/Product/").is_some());
    assert!(paths.get("/Order/").is_none(), "{paths}");
    let all = as_admin(&a, "GET", &s.url("/openapi"), None).json();
    assert!(all["paths"].get("/Order/{id}").is_some());
}
