//! Test fixtures: a tiny blocking HTTP/1.1 server and a tiny MQTT broker (decoding with
//! the independent `mqttbytes` crate) that can stall, stay silent, drop or duplicate on
//! request, plus helpers to run the built `loadgen` binary and read its result.json.
#![allow(dead_code)]

use bytes::BytesMut;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("run loadgen")
}

pub fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("loadgen-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub fn result(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("result.json")).expect("result.json written");
    serde_json::from_str(&text).expect("result.json parses")
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[derive(Clone, Default)]
pub struct HttpOpts {
    /// Before answering the n-th request (counting from 0), sleep this long.
    pub stall: Option<(u64, Duration)>,
    /// Read requests but never answer.
    pub silent: bool,
    /// Keep the first request lines and bodies seen.
    pub keep: usize,
}

pub struct HttpServer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU64>,
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl HttpServer {
    pub fn start(opts: HttpOpts) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (r, s) = (Arc::clone(&requests), Arc::clone(&seen));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, s, o) = (Arc::clone(&r), Arc::clone(&s), opts.clone());
                std::thread::spawn(move || serve_http(stream, r, s, o));
            }
        });
        HttpServer {
            addr,
            requests,
            seen,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn serve_http(
    stream: TcpStream,
    count: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    o: HttpOpts,
) {
    stream.set_nodelay(true).ok();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let n = count.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut s) = seen.lock() {
            if s.len() < o.keep {
                s.push((
                    line.trim_end().to_string(),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
            }
        }
        if o.silent {
            continue;
        }
        if let Some((at, d)) = o.stall {
            if n == at {
                std::thread::sleep(d);
            }
        }
        let (status, body) = if line.starts_with("POST") {
            ("201 Created", "")
        } else if line.starts_with("DELETE") {
            ("404 Not Found", "")
        } else {
            ("200 OK", "{\"ok\":true}")
        };
        let resp = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

#[derive(Clone, Default)]
pub struct MqttOpts {
    /// Do not forward the n-th PUBLISH received (counting from 0).
    pub drop_nth: Option<u64>,
    /// Forward the n-th PUBLISH twice.
    pub dup_nth: Option<u64>,
}

type Subs = Arc<Mutex<Vec<(String, u8, Arc<Mutex<TcpStream>>, bool)>>>;

pub struct MqttBroker {
    pub addr: SocketAddr,
    pub publishes: Arc<AtomicU64>,
}

impl MqttBroker {
    pub fn start(opts: MqttOpts) -> MqttBroker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let publishes = Arc::new(AtomicU64::new(0));
        let subs: Subs = Arc::new(Mutex::new(Vec::new()));
        let p = Arc::clone(&publishes);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (p, subs, o) = (Arc::clone(&p), Arc::clone(&subs), opts.clone());
                std::thread::spawn(move || serve_mqtt(stream, p, subs, o));
            }
        });
        MqttBroker { addr, publishes }
    }
}

fn matches(filter: &str, topic: &str) -> bool {
    match filter.strip_suffix('#') {
        Some(prefix) => topic.starts_with(prefix),
        None => filter == topic,
    }
}

/// What the broker needs from a decoded packet, whichever protocol version.
enum In {
    Connect,
    Subscribe {
        pid: u16,
        filter: String,
        qos: u8,
    },
    Publish {
        qos: u8,
        pid: u16,
        topic: String,
        payload: Vec<u8>,
    },
    PubRec(u16),
    PubRel(u16),
    PingReq,
    Disconnect,
    Other,
}

fn decode(buf: &mut BytesMut, v5: bool) -> Option<In> {
    use mqttbytes::QoS;
    let q = |q: QoS| q as u8;
    if v5 {
        use mqttbytes::v5::{read, Packet};
        match read(buf, 1 << 20) {
            Ok(Packet::Connect(_)) => Some(In::Connect),
            Ok(Packet::Subscribe(s)) => Some(In::Subscribe {
                pid: s.pkid,
                filter: s.filters[0].path.clone(),
                qos: q(s.filters[0].qos),
            }),
            Ok(Packet::Publish(p)) => Some(In::Publish {
                qos: q(p.qos),
                pid: p.pkid,
                topic: p.topic,
                payload: p.payload.to_vec(),
            }),
            Ok(Packet::PubRec(p)) => Some(In::PubRec(p.pkid)),
            Ok(Packet::PubRel(p)) => Some(In::PubRel(p.pkid)),
            Ok(Packet::PingReq) => Some(In::PingReq),
            Ok(Packet::Disconnect(_)) => Some(In::Disconnect),
            Ok(_) => Some(In::Other),
            Err(mqttbytes::Error::InsufficientBytes(_)) => None,
            Err(e) => panic!("loadgen sent a packet mqttbytes v5 rejects: {e:?}"),
        }
    } else {
        use mqttbytes::v4::{read, Packet};
        match read(buf, 1 << 20) {
            Ok(Packet::Connect(_)) => Some(In::Connect),
            Ok(Packet::Subscribe(s)) => Some(In::Subscribe {
                pid: s.pkid,
                filter: s.filters[0].path.clone(),
                qos: q(s.filters[0].qos),
            }),
            Ok(Packet::Publish(p)) => Some(In::Publish {
                qos: q(p.qos),
                pid: p.pkid,
                topic: p.topic,
                payload: p.payload.to_vec(),
            }),
            Ok(Packet::PubRec(p)) => Some(In::PubRec(p.pkid)),
            Ok(Packet::PubRel(p)) => Some(In::PubRel(p.pkid)),
            Ok(Packet::PingReq) => Some(In::PingReq),
            Ok(Packet::Disconnect) => Some(In::Disconnect),
            Ok(_) => Some(In::Other),
            Err(mqttbytes::Error::InsufficientBytes(_)) => None,
            Err(e) => panic!("loadgen sent a packet mqttbytes v4 rejects: {e:?}"),
        }
    }
}

fn encode_publish(v5: bool, topic: &str, qos: u8, pid: u16, payload: &[u8]) -> Vec<u8> {
    use mqttbytes::QoS;
    let qos = match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let mut out = BytesMut::new();
    if v5 {
        let mut p = mqttbytes::v5::Publish::new(topic, qos, payload.to_vec());
        p.pkid = pid;
        p.write(&mut out).unwrap();
    } else {
        let mut p = mqttbytes::v4::Publish::new(topic, qos, payload.to_vec());
        p.pkid = pid;
        p.write(&mut out).unwrap();
    }
    out.to_vec()
}

fn serve_mqtt(stream: TcpStream, count: Arc<AtomicU64>, subs: Subs, o: MqttOpts) {
    stream.set_nodelay(true).ok();
    let me = Arc::new(Mutex::new(stream.try_clone().unwrap()));
    let send = |b: &[u8]| me.lock().unwrap().write_all(b).is_ok();
    let mut r = stream;
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 65536];
    let mut v5 = None;
    let mut next_pid = 0u16;
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        // Protocol level: byte 8 of CONNECT when the remaining length fits one byte.
        let is5 = *v5.get_or_insert_with(|| buf.len() > 8 && buf[8] == 5);
        while let Some(p) = decode(&mut buf, is5) {
            let ok = match p {
                In::Connect => send(if is5 {
                    &[0x20, 3, 0, 0, 0]
                } else {
                    &[0x20, 2, 0, 0]
                }),
                In::Subscribe { pid, filter, qos } => {
                    subs.lock()
                        .unwrap()
                        .push((filter, qos, Arc::clone(&me), is5));
                    let [a, b] = pid.to_be_bytes();
                    send(&if is5 {
                        vec![0x90, 4, a, b, 0, qos]
                    } else {
                        vec![0x90, 3, a, b, qos]
                    })
                }
                In::Publish {
                    qos,
                    pid,
                    topic,
                    payload,
                } => {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let [a, b] = pid.to_be_bytes();
                    let ack_ok = match qos {
                        1 => send(&[0x40, 2, a, b]),
                        2 => send(&[0x50, 2, a, b]),
                        _ => true,
                    };
                    let copies = if o.drop_nth == Some(n) {
                        0
                    } else if o.dup_nth == Some(n) {
                        2
                    } else {
                        1
                    };
                    for (filter, granted, conn, sub5) in subs.lock().unwrap().iter() {
                        if matches(filter, &topic) {
                            let q = qos.min(*granted);
                            for _ in 0..copies {
                                next_pid = next_pid % 65535 + 1;
                                let _ = conn.lock().unwrap().write_all(&encode_publish(
                                    *sub5, &topic, q, next_pid, &payload,
                                ));
                            }
                        }
                    }
                    ack_ok
                }
                In::PubRec(pid) => {
                    let [a, b] = pid.to_be_bytes();
                    send(&[0x62, 2, a, b])
                }
                In::PubRel(pid) => {
                    let [a, b] = pid.to_be_bytes();
                    send(&[0x70, 2, a, b])
                }
                In::PingReq => send(&[0xD0, 0]),
                In::Disconnect => return,
                In::Other => true,
            };
            if !ok {
                return;
            }
        }
    }
}
