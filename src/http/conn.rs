//! One HTTP/1.1 connection: reads into a bounded buffer, parses every complete request it
//! holds (pipelining), answers them in order, and writes the answers in one go before it waits
//! for more bytes. Every request passes `admit` (rate, Host, Origin, body type); then CORS
//! preflights and `OPTIONS` are answered; then `auth` (credentials, the user's rate,
//! permission) before it is routed. Routed answers are compressed as the client accepts
//! (`compress`); every answer to an allowed origin carries the CORS lines; every request is
//! counted in the shard's metrics (route class, status, latency) once answered. Closes idle
//! connections
//! and clients that trickle a request too slowly. Generic over the byte stream (`net::Io`):
//! plain TCP and TLS run the same code. Its buffers start small and grow with the request;
//! what one large request or answer grew is given back once the connection is idle.

use super::metrics::requests::RouteClass;
use super::realtime::Stream;
use super::request::{parse, Limits, Method, Parsed};
use super::response::Response;
use super::shard::HttpShard;
use crate::net::{send, Io};
use crate::security::limits::Client;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Answers waiting in the output buffer are written once it holds this much.
const FLUSH_AT: usize = 64 * 1024;
/// A connection's read buffer starts this small (a request head of a few hundred bytes fits)
/// and grows by doubling up to the request limits; its output buffer starts empty.
const INITIAL_READ_BUFFER: usize = 2048;
/// Buffers grown past this by one large request or answer are given back once the
/// connection is idle, so an idle connection costs its initial buffers, not its largest
/// request.
const KEEP_WHEN_IDLE: usize = 64 * 1024;
/// Longest a connection closed after an early answer keeps reading what the client still
/// sends (a lingering close), and the most it discards: a client stops sending within a
/// round trip of reading the answer.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 8 << 20;

/// Serves one connection until it closes (or leaves HTTP for an SSE or WebSocket stream).
pub async fn serve<S: Io>(shard: &Rc<HttpShard>, stream: S, client: Client) {
    let _ = stream.tcp().set_nodelay(true);
    let mut conn = Conn::new(shard, stream, client);
    loop {
        let (consumed, close_after) = match conn.answer().await {
            Step::Answered {
                consumed,
                close_after,
            } => (consumed, close_after),
            Step::Upgrade { kind, consumed } => return conn.upgrade(kind, consumed).await,
            Step::Close => return,
        };
        if consumed > 0 {
            if !conn.answered(consumed, close_after).await {
                return;
            }
            continue;
        }
        // Nothing more to answer from the buffer: send what is pending, then read.
        if !conn.read_more().await {
            return;
        }
    }
}

/// What parsing the buffer led to.
enum Step {
    /// `consumed` bytes were answered (0: the next request is not complete yet); with
    /// `close_after`, the answer closes the connection.
    Answered { consumed: usize, close_after: bool },
    /// The request takes the connection out of HTTP; `consumed` bytes belong to it.
    Upgrade { kind: Stream, consumed: usize },
    /// The last answer is written: close.
    Close,
}

/// What the answer to the request at hand needs to know of it.
struct Answer<'c> {
    method: Method,
    /// The request's bytes in the buffer.
    consumed: usize,
    /// The request asked to close the connection after its answer.
    close: bool,
    cors: Option<&'c super::cors::Allowed>,
}

/// One connection's buffers and limits.
struct Conn<'a, S> {
    shard: &'a Rc<HttpShard>,
    stream: S,
    /// The peer, as the admission limits count it.
    client: Client,
    /// The user the client's verified TLS certificate names, if any.
    certified: Option<String>,
    limits: Limits,
    max_buffer: usize,
    idle: Duration,
    request_timeout: Duration,
    /// Bytes read; the first `len` are not answered yet.
    buf: Vec<u8>,
    len: usize,
    /// Answers not written yet.
    out: Vec<u8>,
    scratch: Vec<u8>,
    /// When the first bytes of the request being read arrived.
    started: Option<Instant>,
    /// `100 Continue` was sent for the request being read.
    continued: bool,
}

impl<'a, S: Io> Conn<'a, S> {
    fn new(shard: &'a Rc<HttpShard>, stream: S, client: Client) -> Self {
        let cfg = &shard.config().http;
        Conn {
            shard,
            certified: stream.client_name(),
            stream,
            client,
            limits: Limits {
                max_header_bytes: cfg.max_header_bytes,
                max_body_bytes: cfg.max_body_bytes,
            },
            // Room for a full head and body (a chunked body carries framing: allow some).
            max_buffer: cfg.max_header_bytes + cfg.max_body_bytes + cfg.max_body_bytes / 8 + 1024,
            idle: Duration::from_millis(cfg.idle_timeout_ms),
            request_timeout: Duration::from_millis(cfg.request_timeout_ms),
            buf: vec![0; INITIAL_READ_BUFFER],
            len: 0,
            out: Vec::new(),
            scratch: Vec::new(),
            started: None,
            continued: false,
        }
    }

    /// Parses the buffered bytes and answers the first request into `out` if it is complete.
    async fn answer(&mut self) -> Step {
        match parse(&self.buf[..self.len], &self.limits, &mut self.scratch) {
            Parsed::Complete {
                mut req,
                consumed,
                close,
            } => {
                let started = Instant::now();
                let class = RouteClass::of_path(req.path);
                let log = &self.shard.config().log;
                let mut sampled = super::access::sample(log, self.client.ip, &req);
                let cors = req
                    .origin
                    .and_then(|_| super::cors::allowed(self.shard, &req));
                let at = Answer {
                    method: req.method,
                    consumed,
                    close,
                    cors: cors.as_ref(),
                };
                if let Some(refusal) = super::admit::check(self.shard, &self.client, &req) {
                    self.count(class, refusal.status, started);
                    return self.respond(&refusal, &at, sampled);
                }
                if req.method == Method::Options {
                    let preflight = cors.is_some() && super::cors::is_preflight(&req);
                    let r = match preflight {
                        true => self.shard.cors.preflight(),
                        false => super::cors::options(),
                    };
                    self.count(class, r.status, started);
                    return self.respond(&r, &at, sampled);
                }
                let shard = self.shard;
                shard.in_flight.set(shard.in_flight.get() + 1);
                let certified = self.certified.as_deref();
                let admitted = super::auth::admit(shard, &mut req, certified).await;
                shard.in_flight.set(shard.in_flight.get() - 1);
                if let Err(refusal) = admitted {
                    self.count(class, refusal.status, started);
                    return self.respond(&refusal, &at, sampled);
                }
                if let Some(s) = sampled.as_mut() {
                    s.user(&req);
                }
                match super::realtime::stream_of(self.shard, &req) {
                    // SSE or WebSocket: the connection leaves HTTP after this request.
                    Some(Ok(kind)) => {
                        self.count(RouteClass::Stream, 200, started);
                        let kind = kind.allowing(cors.clone());
                        return Step::Upgrade { kind, consumed };
                    }
                    Some(Err(resp)) => {
                        self.count(RouteClass::Stream, resp.status, started);
                        self.close_with(resp, at.cors).await;
                        return Step::Close;
                    }
                    None => {}
                }
                let shard = self.shard;
                shard.in_flight.set(shard.in_flight.get() + 1);
                let (routed, by_component) = super::router::handle(shard, &req).await;
                shard.in_flight.set(shard.in_flight.get() - 1);
                let class = if by_component {
                    RouteClass::Component
                } else {
                    class
                };
                match routed {
                    super::router::Routed::Respond(mut r) => {
                        let http = &shard.config().http;
                        let min = http.compress.then_some(http.compress_min_bytes);
                        super::compress::apply(&mut r, req.accept_encoding, min);
                        self.count(class, r.status, started);
                        self.respond(&r, &at, sampled)
                    }
                    super::router::Routed::Stream(kind) => {
                        self.count(class, 200, started);
                        let kind = kind.allowing(cors.clone());
                        Step::Upgrade { kind, consumed }
                    }
                }
            }
            Parsed::Incomplete { expect_continue } => {
                if expect_continue && !self.continued {
                    self.continued = true;
                    self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                Step::Answered {
                    consumed: 0,
                    close_after: false,
                }
            }
            Parsed::Error { status, detail } => {
                self.count(RouteClass::Invalid, status, Instant::now());
                tracing::debug!(shard = self.shard.id, status, %detail, "bad request");
                self.close_with(super::problem::problem(status, &detail), None)
                    .await;
                Step::Close
            }
        }
    }

    /// Counts an answered request in this shard's metrics.
    fn count(&self, class: RouteClass, status: u16, started: Instant) {
        let took = started.elapsed();
        self.shard.metrics.requests.record(class, status, took);
    }

    /// Queues the answer to a request (closing after it if the request asked to or the node
    /// is draining), and logs it if it was sampled for the access log.
    fn respond(
        &mut self,
        resp: &Response,
        at: &Answer<'_>,
        sampled: Option<super::access::Sampled>,
    ) -> Step {
        if let Some(s) = sampled {
            s.log(self.shard.id, resp.status);
        }
        let close_after = at.close || self.shard.draining.get();
        let head_only = at.method == Method::Head;
        resp.write(&mut self.out, head_only, close_after, at.cors);
        Step::Answered {
            consumed: at.consumed,
            close_after,
        }
    }

    /// Drops an answered request from the buffer; writes the answers when the connection
    /// closes after it or when they are many. False: the connection is done.
    async fn answered(&mut self, consumed: usize, close_after: bool) -> bool {
        self.buf.copy_within(consumed..self.len, 0);
        self.len -= consumed;
        self.continued = false;
        self.started = if self.len > 0 {
            Some(Instant::now())
        } else {
            self.release_large_buffers();
            None
        };
        if close_after {
            self.finish().await;
            return false;
        }
        if self.out.len() >= FLUSH_AT {
            return self.flush().await;
        }
        true
    }

    /// Gives back the read and chunked-body buffers a large request grew (nothing is
    /// buffered now).
    fn release_large_buffers(&mut self) {
        debug_assert_eq!(self.len, 0, "released with a request buffered");
        if self.buf.len() > KEEP_WHEN_IDLE {
            self.buf = vec![0; INITIAL_READ_BUFFER];
        }
        if self.scratch.capacity() > KEEP_WHEN_IDLE {
            self.scratch = Vec::new();
        }
    }

    /// Writes what is pending, then reads more: within the idle timeout between requests,
    /// within what is left of the request timeout inside one. False: the connection is done.
    async fn read_more(&mut self) -> bool {
        if !self.out.is_empty() && !self.flush().await {
            return false;
        }
        if self.len == self.buf.len() {
            if self.buf.len() >= self.max_buffer {
                let r = super::problem::problem(413, "request exceeds the size limits");
                self.close_with(r, None).await;
                return false;
            }
            self.buf
                .resize((self.buf.len() * 2).min(self.max_buffer), 0);
        }
        let timeout = match self.started {
            None => self.idle,
            Some(t) => self
                .request_timeout
                .saturating_sub(t.elapsed())
                .max(Duration::from_millis(1)),
        };
        match read_within(&mut self.stream, &mut self.buf[self.len..], timeout).await {
            Ok(0) => return false,
            Ok(n) => {
                if self.len == 0 {
                    self.started = Some(Instant::now());
                }
                self.len += n;
            }
            Err(e) => {
                if self.started.is_some() && e.kind() == std::io::ErrorKind::TimedOut {
                    let r: Response = super::problem::problem(
                        408,
                        "request not received in time (`http.request_timeout_ms`)",
                    );
                    self.close_with(r, None).await;
                }
                return false;
            }
        }
        !(self.shard.draining.get() && self.started.is_none())
    }

    /// Writes the pending answers. False: the connection failed.
    async fn flush(&mut self) -> bool {
        if send(&mut self.stream, &self.out).await.is_err() {
            return false;
        }
        self.out.clear();
        if self.out.capacity() > KEEP_WHEN_IDLE {
            self.out = Vec::new();
        }
        true
    }

    /// Writes the pending answers and `resp`, the last one, sent before the request was read
    /// in full (400, 408, 413, 431, a refused upgrade); then closes lingering.
    async fn close_with(&mut self, resp: Response, cors: Option<&super::cors::Allowed>) {
        resp.write(&mut self.out, false, true, cors);
        self.finish().await;
        self.linger().await;
    }

    /// A lingering close: stops sending (FIN), then reads and discards what the client still
    /// sends until it closes, for at most `LINGER` and `LINGER_BYTES`. Closing a socket with
    /// unread data makes the kernel answer with a reset, which can reach a client still
    /// sending its body before it read the answer, and destroy that answer.
    async fn linger(&mut self) {
        if self
            .stream
            .tcp()
            .shutdown(std::net::Shutdown::Write)
            .await
            .is_err()
        {
            return;
        }
        let until = Instant::now() + LINGER;
        let mut discarded = 0usize;
        while discarded < LINGER_BYTES {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match read_within(&mut self.stream, &mut self.buf, left).await {
                Ok(n) if n > 0 => discarded += n,
                _ => break,
            }
        }
    }

    /// Writes the pending answers, the last ones, and announces the end (TLS close_notify).
    async fn finish(&mut self) {
        if self.stream.write_all(&self.out).await.is_ok() {
            self.stream.close_notify();
            let _ = self.stream.flush().await;
        }
    }

    /// Hands the connection, with the bytes read past the request, to its SSE or WebSocket
    /// stream.
    async fn upgrade(mut self, kind: Stream, consumed: usize) {
        if !self.out.is_empty() && send(&mut self.stream, &self.out).await.is_err() {
            return;
        }
        let read = self.buf[consumed..self.len].to_vec();
        super::realtime::run(self.shard.clone(), self.stream, kind, read).await
    }
}

/// Reads with a deadline: the read raced with a timer.
pub async fn read_within<R: AsyncRead + Unpin>(
    stream: &mut R,
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
