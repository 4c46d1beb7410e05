//! The telemetry component in a node of its own, driven like devices and people would:
//! readings published over MQTT become per-device stats, bad readings are refused on every
//! path, the dashboard stream follows the stats, device metadata comes from an origin
//! through the caching table, and the fleet summary job sums it all up.

use microlith::app::testing::TestNode;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry::Telemetry;

fn node(config: &str) -> TestNode {
    TestNode::start(
        vec![Arc::new(Telemetry)],
        &format!("[components.telemetry]\n{config}"),
    )
    .expect("node starts")
}

fn get(n: &TestNode, path: &str) -> (u16, Value) {
    match ureq::get(&n.url(path)).call() {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// A 3.1.1 client; its event loop runs on a thread, acknowledgements come back on a channel.
fn mqtt(n: &TestNode, id: &str) -> (Client, std::sync::mpsc::Receiver<Packet>) {
    let mut o = MqttOptions::new(id, n.mqtt.ip().to_string(), n.mqtt.port());
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(o, 64);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(p)) => {
                    if tx.send(p).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    (client, rx)
}

/// Waits until `f` holds (or panics after 20 s with what it saw last).
fn eventually<T: std::fmt::Debug>(mut probe: impl FnMut() -> T, ok: impl Fn(&T) -> bool) -> T {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let v = probe();
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < until, "never held; last: {v:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn readings_published_over_mqtt_become_per_device_stats() {
    let n = node("");
    let (client, acks) = mqtt(&n, "sensor-fleet");
    for i in 0..10 {
        for d in ["d1", "d2"] {
            let payload = json!({ "value": i as f64 + if d == "d2" { 100.0 } else { 0.0 } });
            client
                .publish(
                    format!("devices/{d}/telemetry"),
                    QoS::AtLeastOnce,
                    false,
                    payload.to_string(),
                )
                .unwrap();
        }
    }
    let mut pubacks = 0;
    while pubacks < 20 {
        if let Ok(Packet::PubAck(_)) = acks.recv_timeout(Duration::from_secs(10)) {
            pubacks += 1;
        }
    }
    let d1 = eventually(
        || get(&n, "/telemetry/devices/d1").1,
        |v| v["stats"]["count"] == 10,
    );
    assert_eq!(d1["mean"], 4.5);
    assert_eq!(d1["last"]["value"], 9.0);
    assert!(d1["last"]["received_ms"].as_u64().is_some(), "{d1}");
    let d2 = eventually(
        || get(&n, "/telemetry/devices/d2").1,
        |v| v["stats"]["count"] == 10,
    );
    assert_eq!(d2["mean"], 104.5);
    assert_eq!(get(&n, "/telemetry/devices/d3").0, 404);
}

#[test]
fn out_of_range_readings_are_refused_on_every_path() {
    let n = node("max_value = 50.0\n");
    let put = |v: f64| match ureq::put(&n.url("/Reading/r1"))
        .set("content-type", "application/json")
        .send_string(&json!({ "value": v }).to_string())
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(put(99.0), 422);
    assert_eq!(put(20.0), 201);
    // Over MQTT: a live subscriber sees the good reading and never the bad one.
    let (watcher, seen) = mqtt(&n, "watcher");
    watcher.subscribe("devices/#", QoS::AtLeastOnce).unwrap();
    while !matches!(
        seen.recv_timeout(Duration::from_secs(10)),
        Ok(Packet::SubAck(_))
    ) {}
    let (sensor, _acks) = mqtt(&n, "sensor");
    for v in [99.0, 7.0] {
        sensor
            .publish(
                "devices/r2/telemetry",
                QoS::AtLeastOnce,
                false,
                json!({ "value": v }).to_string(),
            )
            .unwrap();
    }
    let mut values = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(Packet::Publish(p)) = seen.recv_timeout(Duration::from_millis(200)) {
            let v: Value = serde_json::from_slice(&p.payload).unwrap();
            values.push(v["value"].clone());
            if values.len() == 1 {
                // Give a wrongly delivered bad reading time to show up too.
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    assert_eq!(values, vec![json!(7.0)]);
    let r2 = eventually(
        || get(&n, "/telemetry/devices/r2").1,
        |v| v["stats"]["count"] == 1,
    );
    assert_eq!(r2["last"]["value"], 7.0);
}

#[test]
fn the_dashboard_stream_follows_the_stats() {
    let n = node("");
    let (s, page) = {
        let r = ureq::get(&n.url("/telemetry/dashboard")).call().unwrap();
        (r.content_type().to_string(), r.into_string().unwrap())
    };
    assert!(s.starts_with("text/html"), "{s}");
    assert!(page.contains("EventSource('/telemetry/stream')"));
    let mut sse = TcpStream::connect(n.http).unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sse.write_all(
        b"GET /telemetry/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
    )
    .unwrap();
    let (client, _acks) = mqtt(&n, "sensor");
    client
        .publish(
            "devices/s1/telemetry",
            QoS::AtLeastOnce,
            false,
            json!({"value": 3}).to_string(),
        )
        .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(15);
    while !got.contains("\"count\":1") && Instant::now() < until {
        let k = sse.read(&mut buf).unwrap_or(0);
        got.push_str(&String::from_utf8_lossy(&buf[..k]));
    }
    assert!(got.contains("text/event-stream"), "{got}");
    assert!(
        got.contains("\"id\":\"s1\"") && got.contains("\"count\":1"),
        "{got}"
    );
}

/// An origin for device metadata: answers `/devices/{id}` with JSON, counting calls.
fn origin() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let counted = counted.clone();
            std::thread::spawn(move || serve_origin(s, &counted));
        }
    });
    (format!("http://{addr}/devices/{{id}}"), calls)
}

fn serve_origin(mut s: TcpStream, calls: &AtomicUsize) {
    let mut line = String::new();
    let mut r = BufReader::new(s.try_clone().unwrap());
    if r.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) <= 2 {
            break;
        }
    }
    calls.fetch_add(1, Ordering::SeqCst);
    let id = line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    let body = json!({ "id": id, "model": "TH-2", "site": "north" }).to_string();
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn device_metadata_comes_from_the_origin_through_the_cache() {
    let (url, calls) = origin();
    let n = node(&format!(
        "device_origin = {url:?}\ndevice_expiration_secs = 3600\n"
    ));
    let (client, _acks) = mqtt(&n, "sensor");
    client
        .publish(
            "devices/m1/telemetry",
            QoS::AtLeastOnce,
            false,
            json!({"value": 1}).to_string(),
        )
        .unwrap();
    let v = eventually(
        || get(&n, "/telemetry/devices/m1").1,
        |v| v["stats"]["count"] == 1,
    );
    assert_eq!(v["device"]["model"], "TH-2", "{v}");
    let again = get(&n, "/telemetry/devices/m1").1;
    assert_eq!(again["device"]["site"], "north");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the second read is a cache hit"
    );
    // REST reads the caching table too.
    assert_eq!(get(&n, "/Device/m1").1["model"], "TH-2");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn the_summary_job_sums_up_the_fleet() {
    let n = node("summary_every_secs = 1\n");
    let (client, _acks) = mqtt(&n, "sensor");
    for (d, v) in [("a", 10.0), ("b", 20.0), ("b", 30.0)] {
        client
            .publish(
                format!("devices/{d}/telemetry"),
                QoS::AtLeastOnce,
                false,
                json!({"value": v}).to_string(),
            )
            .unwrap();
    }
    let s = eventually(|| get(&n, "/telemetry/summary").1, |v| v["readings"] == 3);
    assert_eq!(s["devices"], 2);
    assert_eq!(s["mean"], 20.0);
}

#[test]
fn a_bad_section_is_refused_with_its_key() {
    let e = TestNode::start(
        vec![Arc::new(Telemetry)],
        "[components.telemetry]\nmin_value = 5.0\nmax_value = 1.0\n",
    )
    .err()
    .expect("refused");
    assert!(e.contains("min_value"), "{e}");
    let e = TestNode::start(
        vec![Arc::new(Telemetry)],
        "[components.telemetry]\nmax_valu = 1.0\n",
    )
    .err()
    .expect("refused");
    assert!(e.contains("max_valu"), "{e}");
}
