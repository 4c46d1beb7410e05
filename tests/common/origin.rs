//! A test origin for caching tables: an HTTP server on a loopback port that answers
//! `GET /devices/{id}` with `{"name": id, "v": n}` (ids starting with `missing` are 404),
//! counts its calls, and can be told to fail, wait, or hold its answers.

use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the origin does; every switch can change while it serves.
#[derive(Default)]
pub struct OriginState {
    pub calls: AtomicUsize,
    /// 0: answer the record; otherwise answer this status.
    pub status: AtomicU16,
    pub delay_ms: AtomicU64,
    /// Put in every record it answers as `v`.
    pub generation: AtomicU64,
    pub held: Mutex<bool>,
    pub released: Condvar,
}

/// An HTTP origin on a loopback port: `GET /devices/{id}` answers `{"name": id, "v": n}`;
/// ids that start with `missing` are 404.
pub struct Origin {
    pub addr: SocketAddr,
    pub st: Arc<OriginState>,
}

impl Origin {
    pub fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let st = Arc::new(OriginState::default());
        let state = st.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = state.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        Origin { addr, st }
    }

    pub fn url(&self) -> String {
        format!("http://{}/devices/{{id}}", self.addr)
    }

    pub fn calls(&self) -> usize {
        self.st.calls.load(Ordering::SeqCst)
    }

    /// Answers `status` from now on (0: the record again).
    pub fn fail(&self, status: u16) {
        self.st.status.store(status, Ordering::SeqCst);
    }

    pub fn delay(&self, ms: u64) {
        self.st.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn generation(&self, v: u64) {
        self.st.generation.store(v, Ordering::SeqCst);
    }

    /// Every call waits (after being counted) until `release`.
    pub fn hold(&self) {
        *self.st.held.lock().unwrap() = true;
    }

    pub fn release(&self) {
        *self.st.held.lock().unwrap() = false;
        self.st.released.notify_all();
    }

    /// Waits (bounded) until the origin has been called `n` times.
    pub fn wait_calls(&self, n: usize) {
        let until = Instant::now() + Duration::from_secs(20);
        while self.calls() < n {
            assert!(
                Instant::now() < until,
                "the origin got {} calls, not {n}",
                self.calls()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.release();
    }
}

/// Serves one request on a connection, then closes it.
fn serve(mut conn: TcpStream, st: &OriginState) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let path = line.split(' ').nth(1).unwrap_or("");
    let id = decode(path.strip_prefix("/devices/").unwrap_or(""));
    st.calls.fetch_add(1, Ordering::SeqCst);
    let mut held = st.held.lock().unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    while *held && Instant::now() < until {
        held = st
            .released
            .wait_timeout(held, Duration::from_millis(50))
            .unwrap()
            .0;
    }
    drop(held);
    std::thread::sleep(Duration::from_millis(st.delay_ms.load(Ordering::SeqCst)));
    let (status, body) = match st.status.load(Ordering::SeqCst) {
        0 if id.starts_with("missing") => (404, "{}".to_string()),
        0 => {
            let v = st.generation.load(Ordering::SeqCst);
            (200, json!({ "name": id, "v": v }).to_string())
        }
        s => (s, json!({ "error": "failing on purpose" }).to_string()),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
