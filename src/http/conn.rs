//! One HTTP/1.1 connection: reads into a bounded buffer, parses every complete request it
//! holds (pipelining), answers them in order, and writes the answers in one go before it waits
//! for more bytes. Closes idle connections and clients that trickle a request too slowly.

use super::request::{parse, Limits, Parsed};
use super::response::Response;
use super::shard::HttpShard;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Answers waiting in the output buffer are written once it holds this much.
const FLUSH_AT: usize = 64 * 1024;

pub async fn serve(shard: &Rc<HttpShard>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let cfg = &shard.config().http;
    let limits = Limits {
        max_header_bytes: cfg.max_header_bytes,
        max_body_bytes: cfg.max_body_bytes,
    };
    // Room for a full head and body (a chunked body carries framing: allow some).
    let max_buffer = cfg.max_header_bytes + cfg.max_body_bytes + cfg.max_body_bytes / 8 + 1024;
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    let request_timeout = Duration::from_millis(cfg.request_timeout_ms);
    let mut buf: Vec<u8> = vec![0; 8192];
    let mut len = 0usize;
    let mut out: Vec<u8> = Vec::with_capacity(8192);
    let mut scratch = Vec::new();
    let mut started: Option<Instant> = None;
    let mut continued = false;
    loop {
        let mut close_after = false;
        let consumed = match parse(&buf[..len], &limits, &mut scratch) {
            Parsed::Complete {
                req,
                consumed,
                close,
            } => {
                match super::realtime::stream_of(shard, &req) {
                    // SSE or WebSocket: the connection leaves HTTP after this request.
                    Some(Ok(kind)) => {
                        if !out.is_empty() && stream.write_all(&out).await.is_err() {
                            return;
                        }
                        let read = buf[consumed..len].to_vec();
                        return super::realtime::run(shard.clone(), stream, kind, read).await;
                    }
                    Some(Err(resp)) => {
                        resp.write(&mut out, false, true);
                        let _ = stream.write_all(&out).await;
                        return;
                    }
                    None => {}
                }
                shard.in_flight.set(shard.in_flight.get() + 1);
                let head_only = req.method == super::request::Method::Head;
                let resp = super::router::handle(shard, &req).await;
                shard.in_flight.set(shard.in_flight.get() - 1);
                close_after = close || shard.draining.get();
                resp.write(&mut out, head_only, close_after);
                consumed
            }
            Parsed::Incomplete { expect_continue } => {
                if expect_continue && !continued {
                    continued = true;
                    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                0
            }
            Parsed::Error { status, detail } => {
                tracing::debug!(shard = shard.id, status, %detail, "bad request");
                super::problem::problem(status, &detail).write(&mut out, false, true);
                let _ = stream.write_all(&out).await;
                return;
            }
        };
        if consumed > 0 {
            buf.copy_within(consumed..len, 0);
            len -= consumed;
            continued = false;
            started = if len > 0 { Some(Instant::now()) } else { None };
            if close_after {
                let _ = stream.write_all(&out).await;
                return;
            }
            if out.len() >= FLUSH_AT {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
            continue;
        }
        // Nothing more to answer from the buffer: send what is pending, then read.
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if len == buf.len() {
            if buf.len() >= max_buffer {
                let r = super::problem::problem(413, "request exceeds the size limits");
                r.write(&mut out, false, true);
                let _ = stream.write_all(&out).await;
                return;
            }
            buf.resize((buf.len() * 2).min(max_buffer), 0);
        }
        let timeout = match started {
            None => idle,
            Some(t) => request_timeout
                .saturating_sub(t.elapsed())
                .max(Duration::from_millis(1)),
        };
        match read_within(&mut stream, &mut buf[len..], timeout).await {
            Ok(0) => return,
            Ok(n) => {
                if len == 0 {
                    started = Some(Instant::now());
                }
                len += n;
            }
            Err(e) => {
                if started.is_some() && e.kind() == std::io::ErrorKind::TimedOut {
                    let r: Response = super::problem::problem(
                        408,
                        "request not received in time (`http.request_timeout_ms`)",
                    );
                    r.write(&mut out, false, true);
                    let _ = stream.write_all(&out).await;
                }
                return;
            }
        }
        if shard.draining.get() && started.is_none() {
            return;
        }
    }
}

/// Reads with a deadline: the read raced with a timer.
pub async fn read_within(
    stream: &mut TcpStream,
    buf: &mut [u8],
    timeout: Duration,
) -> std::io::Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let read = stream.read(buf);
        let expire = async {
            glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
            Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
        };
        match futures_lite::future::or(read, expire).await {
            // A signal (the reactor kick) may interrupt a wait: try again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
