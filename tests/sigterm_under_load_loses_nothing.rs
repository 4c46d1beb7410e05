//! SIGTERM in the middle of a write load over HTTP and MQTT: the server drains and exits 0
//! within its drain time, logs that every thread has ended, and after a restart on the same
//! data dir every write it acknowledged is there with the body that was sent.
//!
//! Acknowledged means: an HTTP `PUT` answered 201 or 204, or a QoS 1 retained publish to the
//! table topic `Product/{id}` answered with a PUBACK (for the 5.0 client, a PUBACK with a
//! success reason code). Writes that got an error, a 503 or a closed connection during the
//! shutdown may or may not be there.

mod common;
use common::mqtt::pkt;
use common::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HTTP_WRITERS: usize = 4;
/// MQTT publishers: protocol levels (3.1.1 and 5.0).
const MQTT_LEVELS: [u8; 2] = [4, 5];
/// QoS 1 publishes a publisher keeps unacknowledged at once.
const WINDOW: usize = 16;
/// The drain the server allows requests in flight (docs/runtime.md), plus a margin for a
/// loaded machine.
const EXIT_WITHIN: Duration = Duration::from_secs(15);

/// Acknowledged writes: record id → the JSON body sent.
type Acked = Arc<Mutex<Vec<(String, String)>>>;

fn body(id: &str, source: &str, n: u64) -> String {
    format!(
        r#"{{"id":"{id}","source":"{source}","n":{n},"category":"c{}"}}"#,
        n % 7
    )
}

/// PUTs new records until `stop`; records each one answered 201 or 204.
fn http_writer(base: String, w: usize, acked: Acked, stop: Arc<AtomicBool>) {
    let a = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("h{w}-{n}");
        let b = body(&id, "http", n);
        n += 1;
        let r = a
            .put(&format!("{base}{id}"))
            .set("Content-Type", "application/json")
            .send_string(&b);
        match r {
            Ok(resp) if resp.status() == 201 || resp.status() == 204 => {
                acked.lock().unwrap().push((id, b))
            }
            Ok(_) | Err(ureq::Error::Status(..)) => {}
            // The server is stopping or gone: keep trying until the test says stop.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// The length of the first whole MQTT packet in `buf`, if it is all there.
fn whole_packet(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for i in 1..5 {
        let byte = *buf.get(i)?;
        len |= ((byte & 0x7f) as usize) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            let total = 1 + i + len;
            return (buf.len() >= total).then_some(total);
        }
    }
    panic!("malformed remaining length from the server: {buf:?}")
}

/// The body of a packet (after the fixed header).
fn packet_body(p: &[u8]) -> &[u8] {
    let mut i = 1;
    while p[i] & 0x80 != 0 {
        i += 1;
    }
    &p[i + 1..]
}

/// One MQTT connection publishing retained QoS 1 JSON to `Product/m{level}-{n}`, at most
/// `WINDOW` unacknowledged, until `stop` or the server closes the connection; records each
/// publish the server acknowledged with success.
fn mqtt_publisher(addr: String, level: u8, acked: Acked, stop: Arc<AtomicBool>) {
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(&pkt::connect(
        level,
        &format!("sigterm-pub-{level}"),
        true,
        60,
        None,
    ))
    .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut connected = false;
    let mut outstanding: HashMap<u16, (String, String)> = HashMap::new();
    let mut n = 0u64;
    let mut next_pkid = 1u16;
    while !stop.load(Ordering::Relaxed) {
        if connected {
            let mut burst = Vec::new();
            while outstanding.len() < WINDOW {
                let id = format!("m{level}-{n}");
                let b = body(&id, "mqtt", n);
                n += 1;
                while outstanding.contains_key(&next_pkid) {
                    next_pkid = next_pkid.checked_add(1).unwrap_or(1);
                }
                let pkid = next_pkid;
                next_pkid = next_pkid.checked_add(1).unwrap_or(1);
                burst.extend(pkt::publish(
                    level,
                    &format!("Product/{id}"),
                    1,
                    pkid,
                    b.as_bytes(),
                    true,
                    false,
                ));
                outstanding.insert(pkid, (id, b));
            }
            if !burst.is_empty() && s.write_all(&burst).is_err() {
                break; // closed by the server
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => break, // closed by the server
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => break, // reset
        }
        while let Some(len) = whole_packet(&buf) {
            let p: Vec<u8> = buf.drain(..len).collect();
            let b = packet_body(&p);
            match p[0] >> 4 {
                2 => {
                    // CONNACK: the return (3.1.1) or reason (5.0) code is the second byte.
                    assert_eq!(b[1], 0, "level {level}: connection refused: {p:?}");
                    connected = true;
                }
                4 => {
                    let pkid = u16::from_be_bytes([b[0], b[1]]);
                    // 5.0: a reason code follows the packet id when it is not success (0).
                    let reason = if level == 5 {
                        b.get(2).copied().unwrap_or(0)
                    } else {
                        0
                    };
                    let sent = outstanding
                        .remove(&pkid)
                        .unwrap_or_else(|| panic!("level {level}: PUBACK for unknown id {pkid}"));
                    if reason < 0x80 {
                        acked.lock().unwrap().push(sent);
                    }
                }
                // 5.0: the server says why it closes (e.g. 0x8B, shutting down).
                14 if level == 5 => return,
                kind => panic!("level {level}: unexpected packet type {kind}: {p:?}"),
            }
        }
    }
}

#[test]
fn sigterm_under_http_and_mqtt_load_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let extra = format!("[shards]\ncount = 2\n\n{PRODUCT_TABLE}");
    let mut s = Server::start_at(tmp.path(), &data, &extra).unwrap();

    let http_acked: Acked = Arc::default();
    let mqtt_acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..HTTP_WRITERS {
        let (base, acked, stop) = (s.url("/Product/"), http_acked.clone(), stop.clone());
        load.push(std::thread::spawn(move || {
            http_writer(base, w, acked, stop)
        }));
    }
    for level in MQTT_LEVELS {
        let (addr, acked, stop) = (s.mqtt_addr.clone(), mqtt_acked.clone(), stop.clone());
        load.push(std::thread::spawn(move || {
            mqtt_publisher(addr, level, acked, stop)
        }));
    }

    // Let the load run for a while (both kinds acknowledged), then SIGTERM in the middle of it.
    let started = Instant::now();
    let count = |a: &Acked| a.lock().unwrap().len();
    while (started.elapsed() < Duration::from_millis(1500)
        || count(&http_acked) < 100
        || count(&mqtt_acked) < 100)
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = (count(&http_acked), count(&mqtt_acked));
    assert!(
        before.0 >= 100 && before.1 >= 100,
        "the load never got going: {before:?} (HTTP, MQTT) acknowledged in 60 s"
    );
    let term = Instant::now();
    let status = s.stop();
    let took = term.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let http_acked = http_acked.lock().unwrap().clone();
    let mqtt_acked = mqtt_acked.lock().unwrap().clone();
    eprintln!(
        "acknowledged before SIGTERM: {before:?}; in all: HTTP {}, MQTT {}; exit {status:?} \
         {took:?} after SIGTERM",
        http_acked.len(),
        mqtt_acked.len()
    );
    let log = s.log();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0 ({status:?}); log:\n{log}"
    );
    assert!(
        took < EXIT_WITHIN,
        "the server took {took:?} to exit after SIGTERM (drain 5 s); log:\n{log}"
    );
    assert!(
        log.contains("every acknowledged write is on disk and every thread has ended"),
        "the log ends with the final shutdown line; log:\n{log}"
    );

    let s = Server::start_with_config(tmp.path(), &s.config_path, &data).unwrap();
    let a = agent();
    for (kind, acked) in [("HTTP", &http_acked), ("MQTT", &mqtt_acked)] {
        let mut lost = Vec::new();
        for (id, sent) in acked {
            let r = get(&a, &s.url(&format!("/Product/{id}")));
            let want: serde_json::Value = serde_json::from_str(sent).unwrap();
            if r.status != 200
                || serde_json::from_str::<serde_json::Value>(&r.body).ok() != Some(want)
            {
                lost.push(format!("{id}: {} {}", r.status, r.body));
            }
        }
        assert!(
            lost.is_empty(),
            "{kind}: {} of {} acknowledged writes lost or changed after SIGTERM: {:?}",
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(10)]
        );
    }
}
