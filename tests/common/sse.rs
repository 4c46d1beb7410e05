//! A raw Server-Sent Events client for tests: one GET over a plain TCP socket, the response
//! head checked, then events (`id`, `event`, `data` as JSON) read one by one, comments
//! skipped. Record events are unnamed (what `EventSource.onmessage` gets): their type is the
//! data's `type`; `named` counts the events that had an `event:` line.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One event: its id (if any), its type (the data's `type`), its data.
pub type Event = (Option<String>, String, serde_json::Value);

pub struct Sse {
    s: TcpStream,
    buf: String,
    /// Events read that had an `event:` line.
    pub named: usize,
}

impl Sse {
    /// Opens a stream on `path`, resuming after `last_event_id` if given; panics unless the
    /// answer is `200` with `text/event-stream` within 10 s.
    pub fn open(addr: &str, path: &str, last_event_id: Option<&str>) -> Sse {
        let extra = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        Sse::open_with(addr, path, &extra)
    }

    /// Like `open`, with an `Authorization` header.
    pub fn open_as(addr: &str, path: &str, authorization: &str) -> Sse {
        Sse::open_with(addr, path, &format!("Authorization: {authorization}\r\n"))
    }

    /// Opens a stream with extra header lines (each ending in CRLF).
    fn open_with(addr: &str, path: &str, extra: &str) -> Sse {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n{extra}\r\n"
        )
        .unwrap();
        let mut sse = Sse {
            s,
            buf: String::new(),
            named: 0,
        };
        let head = sse
            .until("\r\n\r\n", Duration::from_secs(10))
            .expect("response head");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/event-stream"),
            "{head}"
        );
        sse
    }

    fn until(&mut self, sep: &str, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(i) = self.buf.find(sep) {
                let part = self.buf[..i].to_string();
                self.buf.drain(..i + sep.len());
                return Some(part);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            }
        }
    }

    /// The next event within `wait`, if one comes.
    pub fn next_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let block = self.until("\n\n", left)?;
            let (mut id, mut event, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !data.is_empty() {
                let data: serde_json::Value = serde_json::from_str(&data).unwrap();
                self.named += usize::from(event.is_some());
                let kind =
                    event.unwrap_or_else(|| data["type"].as_str().unwrap_or_default().into());
                return Some((id, kind, data));
            }
        }
    }

    /// The next event; panics if none comes within 10 s.
    pub fn next(&mut self) -> Event {
        self.next_within(Duration::from_secs(10))
            .expect("an event within 10 s")
    }
}
