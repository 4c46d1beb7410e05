//! `/admin/live`: Server-Sent Events for the admin page, one `snapshot` event a second (see
//! `snapshot`). Bounded: at most `MAX_PER_SHARD` streams per shard (more are answered 503 with
//! `Retry-After`), each lives at most `MAX_LIFETIME` (then it ends and the browser's
//! EventSource reconnects after the `retry` it was told), and a client that stops reading is
//! dropped after `WRITE_TIMEOUT`. Streams end when the node drains.

use super::snapshot::{self, Window};
use crate::http::problem::problem;
use crate::http::request::{Method, Request};
use crate::http::router::{not_allowed, Routed};
use crate::http::shard::HttpShard;
use crate::net::{send, Io};
use futures_lite::future::or;
use futures_lite::AsyncReadExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Live streams one shard serves at once.
pub const MAX_PER_SHARD: usize = 4;
/// How often a snapshot goes out.
const TICK: Duration = Duration::from_secs(1);
/// How long one stream lives before the client is made to reconnect.
const MAX_LIFETIME: Duration = Duration::from_secs(600);
/// A client that does not take a snapshot within this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A stream's place among the shard's `MAX_PER_SHARD`; freed on drop.
pub struct Slot(Rc<HttpShard>);

impl Drop for Slot {
    fn drop(&mut self) {
        let open = &self.0.live_streams;
        open.set(open.get().saturating_sub(1));
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot(shard {})", self.0.id)
    }
}

/// Opens a live stream for `req`, or answers why not.
pub fn open(shard: &Rc<HttpShard>, req: &Request<'_>) -> Routed {
    if req.method != Method::Get {
        return Routed::Respond(not_allowed(req.method, "GET"));
    }
    if !req.accept.is_some_and(|a| a.contains("text/event-stream")) {
        let why = "/admin/live is an event stream: ask with Accept: text/event-stream";
        return Routed::Respond(problem(406, why));
    }
    let open = &shard.live_streams;
    if open.get() >= MAX_PER_SHARD {
        let why = format!("{MAX_PER_SHARD} live admin streams are open on this shard; retry later");
        let mut r = problem(503, &why);
        r.retry_after = Some(5);
        return Routed::Respond(r);
    }
    open.set(open.get() + 1);
    Routed::Stream(crate::http::realtime::Stream::AdminLive(Slot(
        shard.clone(),
    )))
}

/// Sends a snapshot every `TICK` until the client leaves, stops reading, the stream reaches
/// `MAX_LIFETIME` or the node drains.
pub async fn serve<S: Io>(shard: Rc<HttpShard>, mut stream: S, slot: Slot) {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\nretry: 2000\n\n";
    if send(&mut stream, head).await.is_err() {
        return;
    }
    let opened = Instant::now();
    let mut window = Window::default();
    let mut scratch = [0u8; 256];
    while !shard.draining.get() && opened.elapsed() < MAX_LIFETIME {
        let event = next_event(&shard, &mut window).await;
        let written = or(async { Some(send(&mut stream, &event).await) }, async {
            glommio::timer::sleep(WRITE_TIMEOUT).await;
            None
        })
        .await;
        if !matches!(written, Some(Ok(()))) {
            break;
        }
        if client_left(&mut stream, &mut scratch).await {
            break;
        }
    }
    drop(slot);
}

/// Waits one `TICK`, reading (and ignoring) what the client sends; true if it closed.
async fn client_left<S: Io>(stream: &mut S, scratch: &mut [u8]) -> bool {
    let until = Instant::now() + TICK;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let read = or(async { Some(stream.read(scratch).await) }, async {
            glommio::timer::sleep(left).await;
            None
        })
        .await;
        match read {
            None => return false,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Some(Ok(0) | Err(_)) => return true,
            Some(Ok(_)) => {}
        }
    }
}

/// The next event: a snapshot, or a comment when the shards could not be asked now.
async fn next_event(shard: &HttpShard, window: &mut Window) -> Vec<u8> {
    match crate::http::metrics::gather::all(shard).await {
        Ok(snaps) => {
            let json = snapshot::build(shard, &snaps, window);
            let mut out = b"event: snapshot\ndata: ".to_vec();
            out.extend_from_slice(&serde_json::to_vec(&json).unwrap_or_default());
            out.extend_from_slice(b"\n\n");
            out
        }
        Err(e) => format!(": no snapshot now ({e:?})\n\n").into_bytes(),
    }
}
