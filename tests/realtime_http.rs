//! HTTP real time: Server-Sent Events and WebSockets on record and table paths (current value
//! first, then every change from any source, `Last-Event-ID` resumption), JSON published from
//! a WebSocket, and MQTT over WebSocket on `/mqtt` — with independent clients: a raw SSE
//! reader over TcpStream, tungstenite, rumqttc.

mod common;
use common::mqtt::Client;
use common::sse::Sse;
use common::*;
use std::net::TcpStream;
use std::time::Duration;

fn server() -> Server {
    Server::start(&format!("[shards]\ncount = 2\n{PRODUCT_TABLE}"))
}

fn etag_id(etag: &str) -> String {
    etag.trim_matches('"').to_string()
}

fn ws_open(addr: &str, path: &str) -> tungstenite::WebSocket<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (ws, resp) = tungstenite::client(format!("ws://{addr}{path}"), s).unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

fn ws_next(ws: &mut tungstenite::WebSocket<TcpStream>) -> serde_json::Value {
    loop {
        match ws.read().expect("a message within 10 s") {
            tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            tungstenite::Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

#[test]
fn rest_write_reaches_mqtt_sse_and_websocket_subscribers() {
    let s = server();
    let a = agent();
    let mut mqtt = Client::v4(&s.mqtt_addr, "rt-mqtt", true);
    mqtt.sub("Product/5", 1);
    let mut sse = Sse::open(&s.addr, "/Product/5", None);
    let mut table_sse = Sse::open(&s.addr, "/Product/", None);
    let mut ws = ws_open(&s.addr, "/Product/5");
    let r = put(&a, &s.url("/Product/5"), r#"{"name":"desk","price":90}"#);
    assert_eq!(r.status, 201);
    let m = mqtt.expect();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()["price"],
        90
    );
    let (id, event, data) = sse.next();
    assert_eq!(
        (id, event.as_str()),
        (Some(etag_id(r.etag.as_deref().unwrap())), "put")
    );
    assert_eq!(data["value"]["name"], "desk");
    let (_, _, data) = table_sse.next();
    assert_eq!(
        (data["id"].as_str(), data["value"]["price"].as_i64()),
        (Some("5"), Some(90))
    );
    let w = ws_next(&mut ws);
    assert_eq!(
        (w["type"].as_str(), w["value"]["price"].as_i64()),
        (Some("put"), Some(90))
    );
    send(&a, "DELETE", &s.url("/Product/5"), None, &[]);
    assert_eq!(sse.next().1, "delete");
    assert_eq!(ws_next(&mut ws)["type"], "delete");
    // Unnamed events, as EventSource.onmessage receives them: the type is in the data.
    assert_eq!((sse.named, table_sse.named), (0, 0));
}

#[test]
fn sse_sends_the_current_value_then_changes() {
    let s = server();
    let a = agent();
    let r = put(&a, &s.url("/Product/c1"), r#"{"v":1}"#);
    let mut sse = Sse::open(&s.addr, "/Product/c1", None);
    let (id, event, data) = sse.next();
    assert_eq!(
        (id, event.as_str()),
        (Some(etag_id(r.etag.as_deref().unwrap())), "put")
    );
    assert_eq!(data["value"]["v"], 1);
    send(&a, "PATCH", &s.url("/Product/c1"), Some(r#"{"v":2}"#), &[]);
    assert_eq!(sse.next().2["value"]["v"], 2);
}

#[test]
fn sse_resumes_from_last_event_id() {
    let s = server();
    let a = agent();
    put(&a, &s.url("/Product/r1"), r#"{"v":0}"#);
    let mut sse = Sse::open(&s.addr, "/Product/", None);
    put(&a, &s.url("/Product/r1"), r#"{"v":1}"#);
    let (last_id, _, data) = sse.next();
    assert_eq!(data["value"]["v"], 1);
    drop(sse);
    for v in 2..=4 {
        put(&a, &s.url("/Product/r1"), &format!(r#"{{"v":{v}}}"#));
        put(&a, &s.url(&format!("/Product/other{v}")), r#"{"v":9}"#);
    }
    let mut sse = Sse::open(&s.addr, "/Product/", last_id.as_deref());
    let mut got = Vec::new();
    for _ in 0..6 {
        let (_, _, d) = sse.next();
        got.push(format!("{}={}", d["id"].as_str().unwrap(), d["value"]["v"]));
    }
    got.sort();
    assert_eq!(
        got,
        vec!["other2=9", "other3=9", "other4=9", "r1=2", "r1=3", "r1=4"]
    );
    // A record stream resumes too, and skips what the client had.
    let mut rec = Sse::open(&s.addr, "/Product/r1", last_id.as_deref());
    let vs: Vec<i64> = (0..3)
        .map(|_| rec.next().2["value"]["v"].as_i64().unwrap())
        .collect();
    assert_eq!(vs, vec![2, 3, 4]);
}

#[test]
fn websocket_streams_changes_and_publishes_json() {
    let s = server();
    let a = agent();
    put(&a, &s.url("/Product/8"), r#"{"v":"first"}"#);
    let mut ws = ws_open(&s.addr, "/Product/8");
    assert_eq!(
        ws_next(&mut ws)["value"]["v"],
        "first",
        "the current value first"
    );
    let mut mqtt = Client::v4(&s.mqtt_addr, "ws-watch", true);
    mqtt.sub("Product/8", 0);
    assert!(mqtt.expect().retain, "the record's current value");
    ws.send(tungstenite::Message::text(r#"{"hello":"world"}"#))
        .unwrap();
    let m = mqtt.expect();
    assert_eq!(m.text(), r#"{"hello":"world"}"#);
    assert_eq!(
        get(&a, &s.url("/Product/8")).json()["v"],
        "first",
        "published, not written"
    );
    // Other WebSocket clients of the record get it; the sender does not get its echo.
    let mut other = ws_open(&s.addr, "/Product/8");
    ws_next(&mut other);
    ws.send(tungstenite::Message::text(r#"{"n":2}"#)).unwrap();
    let got = ws_next(&mut other);
    assert_eq!(
        (got["type"].as_str(), got["value"]["n"].as_i64()),
        (Some("message"), Some(2))
    );
    put(&a, &s.url("/Product/8"), r#"{"v":"second"}"#);
    assert_eq!(
        ws_next(&mut ws)["value"]["v"],
        "second",
        "no echo came before"
    );
    // Not JSON: closed with 1007.
    ws.send(tungstenite::Message::text("nope")).unwrap();
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(c))) => {
                assert_eq!(u16::from(c.code), 1007);
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("expected a close frame: {e}"),
        }
    }
}

#[test]
fn mqtt_over_websocket() {
    let s = server();
    let mut tcp = Client::v4(&s.mqtt_addr, "ws-pub", true);
    // Enough clients that some are homed on the shard their WebSocket did not land on.
    let mut subs: Vec<Client> = (0..6)
        .map(|i| {
            let mut c = Client::v4_ws(&s.addr, &format!("ws-sub-{i}"));
            c.sub("wsq/#", 1);
            c
        })
        .collect();
    for i in 0..5 {
        tcp.publish(&format!("wsq/{i}"), 1, false, i.to_string().as_bytes());
    }
    for c in subs.iter_mut() {
        let got: Vec<String> = (0..5).map(|_| c.expect().text()).collect();
        assert_eq!(got, vec!["0", "1", "2", "3", "4"]);
    }
    // And the other way round.
    let mut listener = Client::v4(&s.mqtt_addr, "tcp-sub", true);
    listener.sub("back", 2);
    subs[0].publish("back", 2, false, b"over ws");
    assert_eq!(listener.expect().text(), "over ws");
}

#[test]
fn bad_stream_requests_are_refused() {
    let s = server();
    let r = raw(
        &s.addr,
        b"GET /Nope/1 HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = raw(
        &s.addr,
        b"GET /Product/1 HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: x\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(r.starts_with("HTTP/1.1 426"), "{r}");
    // A key that is not 16 bytes in base64 (RFC 6455 §4.2.1) is refused, not upgraded.
    for key in [
        "x",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZQ=!",
        "!GhlIHNhbXBsZSBub25jZQ==",
    ] {
        let req = format!("GET /Product/1 HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n");
        let r = raw(&s.addr, req.as_bytes(), Duration::from_secs(2));
        assert!(r.starts_with("HTTP/1.1 400"), "key {key:?}: {r}");
    }
    let r = raw(
        &s.addr,
        b"GET /mqtt HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(r.starts_with("HTTP/1.1 400"), "no mqtt subprotocol: {r}");
    let r = raw(
        &s.addr,
        b"GET /Product/1 HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\nLast-Event-ID: garbage\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert_eq!(get(&agent(), &s.url("/health")).status, 200);
}
