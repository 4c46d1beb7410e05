//! TLS on the front ends: HTTPS (REST, SSE, WebSocket) and MQTT over TLS serve what their plain
//! twins serve, with a certificate that independent clients (ureq with rustls, a raw rustls
//! stream, tungstenite, rumqttc) verify against the node's CA; a client that trusts another
//! CA, a TLS 1.1 client and plain text on a TLS port are refused while the plain listeners keep
//! serving; bad certificate files stop the start with exit 2 and the key named.

mod common;
use common::mqtt::{Client, WAIT};
use common::tls::{self, Ca, Issued};
use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Node {
    server: Server,
    https: String,
    mqtts: String,
    ca: Ca,
    other: Ca,
    _dir: tempfile::TempDir,
}

/// A node with TLS on, `shards` shards, and a second CA it does not know.
fn start(shards: usize, extra_tls: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "good");
    let other = Ca::new(dir.path(), "other");
    let cert = ca.issue("node", "microlith-test");
    let config = format!(
        "[shards]\ncount = {shards}\n\n{PRODUCT_TABLE}\n{}{extra_tls}\n",
        tls::section(&cert, None)
    );
    let server = Server::start(&config);
    let https = server
        .ready_field("https")
        .expect("https= on the ready line");
    let mqtts = server
        .ready_field("mqtts")
        .expect("mqtts= on the ready line");
    Node {
        server,
        https,
        mqtts,
        ca,
        other,
        _dir: dir,
    }
}

/// Reads from `s` until the text holds `want` (10 s at most); returns all read.
fn read_until(s: &mut tls::Stream, seen: &mut String, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 4096];
    while !seen.contains(want) {
        assert!(Instant::now() < deadline, "no {want:?} in {seen:?}");
        match s.read(&mut chunk) {
            Ok(0) => panic!("closed before {want:?}: {seen:?}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}; got {seen:?}"),
        }
    }
}

#[test]
fn https_serves_rest_sse_and_websocket() {
    let n = start(2, "");
    let a = tls::agent(&n.ca.pem);
    let url = |p: &str| {
        format!(
            "https://localhost:{}{p}",
            n.https.rsplit(':').next().unwrap()
        )
    };
    let r = put(&a, &url("/Product/1"), r#"{"name":"anvil","price":10}"#);
    assert_eq!(r.status / 100, 2, "{r:?}");
    let r = get(&a, &url("/Product/1"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "anvil");
    // The plain listener serves the same data.
    assert_eq!(
        get(&agent(), &n.server.url("/Product/1")).json()["price"],
        10
    );

    // SSE over TLS: the current value, then a change made over HTTPS.
    let mut sse = tls::connect(&n.https, &n.ca.pem).unwrap();
    write!(
        sse,
        "GET /Product/1 HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    sse.flush().unwrap();
    let mut seen = String::new();
    read_until(&mut sse, &mut seen, "anvil");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("text/event-stream"), "{seen}");
    put(&a, &url("/Product/1"), r#"{"name":"hammer","price":11}"#);
    read_until(&mut sse, &mut seen, "hammer");
    assert!(seen.contains("\"type\":\"put\""), "{seen}");

    // A WebSocket over TLS streams the same events.
    let s = tls::connect(&n.https, &n.ca.pem).unwrap();
    let wss = format!(
        "wss://localhost:{}/Product/2",
        n.https.rsplit(':').next().unwrap()
    );
    let (mut ws, resp) = tungstenite::client(wss, s).unwrap();
    assert_eq!(resp.status(), 101);
    put(&a, &url("/Product/2"), r#"{"name":"tongs"}"#);
    let msg = loop {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => break t.to_string(),
            tungstenite::Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    };
    let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
    assert_eq!(v["value"]["name"], "tongs", "{v}");
}

#[test]
fn mqtt_over_tls_publishes_and_subscribes_on_every_shard() {
    // Two shards: some sessions live on the shard that did not accept them and are relayed.
    let n = start(2, "");
    for i in 0..6 {
        let mut sub = tls::mqtt_client(&n.mqtts, &n.ca.pem, &format!("tls-sub-{i}"));
        assert_eq!(sub.sub(&format!("t/{i}"), 1), vec![1]);
        let mut publisher = tls::mqtt_client(&n.mqtts, &n.ca.pem, &format!("tls-pub-{i}"));
        publisher.publish(&format!("t/{i}"), 1, false, format!("hello {i}").as_bytes());
        let m = sub
            .recv(WAIT)
            .unwrap_or_else(|| panic!("subscriber {i} got nothing"));
        assert_eq!(m.text(), format!("hello {i}"));
    }
    // A plain client and a TLS client share the broker.
    let mut plain = Client::v4(&n.server.mqtt_addr, "plain-sub", true);
    plain.sub("mixed", 0);
    let mut secure = tls::mqtt_client(&n.mqtts, &n.ca.pem, "tls-mixed");
    secure.publish("mixed", 0, false, b"across");
    assert_eq!(plain.expect().text(), "across");
}

#[test]
fn wrong_ca_old_versions_and_plain_text_are_refused() {
    let n = start(1, "");
    for addr in [&n.https, &n.mqtts] {
        let e = tls::connect(addr, &n.other.pem).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("UnknownIssuer"), "{addr}: {e}");
        let alert = tls::answer_to(addr, &tls::tls11_client_hello());
        assert_eq!(
            alert.first(),
            Some(&0x15),
            "{addr}: no alert for TLS 1.1: {alert:?}"
        );
        let tls12 = tls::client_config_with(&n.ca.pem, &[&rustls::version::TLS12]);
        tls::connect_with(addr, tls12).expect("TLS 1.2 is accepted");
    }
    let url = format!("https://{}/health", n.https);
    let e = tls::agent(&n.other.pem).get(&url).call().unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    // Plain text on a TLS port: no HTTP answer, no CONNACK.
    let answer = tls::answer_to(&n.https, b"GET /Product/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    let connect = common::mqtt::pkt::connect(4, "plain-on-tls", true, 30, None);
    let answer = tls::answer_to(&n.mqtts, &connect);
    assert_ne!(
        answer.first(),
        Some(&0x20),
        "a CONNACK over plain text: {answer:?}"
    );
    // The node still serves, plain and TLS.
    assert_eq!(get(&agent(), &n.server.url("/health")).status, 200);
    let mut s = tls::connect(&n.https, &n.ca.pem).unwrap();
    assert!(tls::get_on(&mut s, "/health").0.contains("200"));

    // With `min_version = "1.3"` a TLS 1.2 client is refused too.
    let n13 = start(1, "min_version = \"1.3\"\n");
    let tls12 = tls::client_config_with(&n13.ca.pem, &[&rustls::version::TLS12]);
    assert!(tls::connect_with(&n13.https, tls12).is_err());
    tls::connect(&n13.https, &n13.ca.pem).expect("TLS 1.3 is accepted");
}

/// `serve` with `tls` as the `[tls]` section: (exit code, stderr).
fn serve_with(dir: &Path, tls: &str) -> (i32, String) {
    let path = dir.join("c.toml");
    let config = format!(
        "[storage]\ndata_dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[mqtt]\nlisten = \"127.0.0.1:0\"\n{tls}https_listen = \"127.0.0.1:0\"\nmqtt_listen = \"127.0.0.1:0\"\n",
        dir.join("data").display().to_string()
    );
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_microlith"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn files(cert: &Path, key: &Path) -> String {
    format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

#[test]
fn bad_certificate_files_stop_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "good");
    let Issued { cert, key, .. } = ca.issue("node", "n");
    let other = ca.issue("other", "o");
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let cases = [
        (files(&missing, &key), "`tls.cert_file`", "cannot read"),
        (
            files(&garbage, &key),
            "`tls.cert_file`",
            "no PEM certificate",
        ),
        (files(&cert, &missing), "`tls.key_file`", "cannot read"),
        (
            files(&cert, &garbage),
            "`tls.key_file`",
            "no PEM private key",
        ),
        (files(&cert, &other.key), "`tls.key_file`", "not the key"),
    ];
    for (section, key_name, why) in cases {
        let (code, err) = serve_with(dir.path(), &section);
        assert_eq!(code, 2, "{section}: {err}");
        assert!(
            err.contains(key_name) && err.contains(why),
            "{section}: {err}"
        );
    }
    // `check-config` reads the files too.
    let path = dir.path().join("c.toml");
    std::fs::write(&path, files(&missing, &key)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_microlith"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`tls.cert_file`"));
}
