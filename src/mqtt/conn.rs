//! One MQTT connection on its session's home shard: decodes what the client sends, hands each
//! packet to `handler`, sends what the session has queued (within the client's window), and
//! waits on three things at once — bytes from the client, a wake-up from the session, and the
//! keep-alive deadline (1.5 × the keep-alive in force: the client's, or the Server Keep Alive
//! a 5.0 client was given). Ends with a DISCONNECT reason (5.0) on faults, then runs the
//! session's end-of-connection rules.

use super::codec::{self, Decoded, Version};
use super::handler::{self, Connected, End};
use super::packet::{Fault, Packet};
use super::MqttShard;
use bytes::BytesMut;
use futures_lite::future::or;
use futures_lite::AsyncReadExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Output is written once it holds this much, even with more packets to decode.
const FLUSH_AT: usize = 64 * 1024;
/// A client that does not read for this long while we write is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The byte stream under a connection (TCP, TLS, a WebSocket carrying MQTT, or a relay).
/// Single-threaded by design: its futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Writes all of `buf` onto the wire (nothing left in a buffer of the stream).
    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()>;
    /// The client's address, if known (the publish rate's exemptions).
    fn peer_ip(&self) -> Option<std::net::IpAddr>;
    /// The user the client's verified TLS certificate names, if any (`acl::authenticate`).
    fn certified_user(&self) -> Option<String> {
        None
    }
}

/// A socket, plain or TLS.
impl<S: crate::net::Io> Transport for S {
    fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.tcp().peer_addr().ok().map(|a| a.ip())
    }

    fn certified_user(&self) -> Option<String> {
        self.client_name()
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        AsyncReadExt::read(self, buf).await
    }
    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        crate::net::send(self, buf).await
    }
}

/// Runs a connection whose CONNECT is decoded; `input` holds any bytes that followed it.
pub async fn run<T: Transport>(
    shard: Rc<MqttShard>,
    mut io: T,
    input: BytesMut,
    connect: super::packet::Connect,
    assigned: bool,
) {
    let mut out = BytesMut::new();
    let certified = io.certified_user();
    let connected = handler::connect(&shard, connect, assigned, certified, &mut out).await;
    if flush(&mut io, &mut out).await.is_err() && connected.is_none() {
        return;
    }
    let Some(Connected {
        mut ctx,
        keep_alive,
        wake,
        close,
    }) = connected
    else {
        return;
    };
    ctx.publish_limit = shard
        .limits
        .publish_limit(&shard.limits.client(io.peer_ip()));
    let how = match serve(&mut ctx, &mut io, input, &wake, &close, keep_alive).await {
        Ok(how) => how,
        Err(fault) => {
            tracing::debug!(shard = shard.id, client = %ctx.session.client_id, ?fault, "mqtt connection ended");
            ctx.out.clear();
            codec::disconnect(&mut ctx.out, ctx.v, fault.reason_code());
            // Bounded like every write: a client that stopped reading must not keep the
            // connection (and its session's link) alive.
            let _ = flush(&mut io, &mut ctx.out).await;
            End::Fault(fault)
        }
    };
    let session = ctx.session.clone();
    handler::end(&shard, &session, ctx.link_id, how).await;
}

enum Event {
    Read(std::io::Result<usize>),
    Wake,
    Deadline,
}

async fn serve<T: Transport>(
    ctx: &mut handler::Ctx,
    io: &mut T,
    mut input: BytesMut,
    wake: &glommio::channels::local_channel::LocalReceiver<()>,
    close: &std::cell::Cell<Option<Fault>>,
    keep_alive: u16,
) -> Result<End, Fault> {
    let shard = ctx.shard.clone();
    let max = shard.config().mqtt.max_packet_bytes;
    let allowed = (keep_alive > 0).then(|| Duration::from_millis(keep_alive as u64 * 1500));
    let mut last_heard = Instant::now();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        loop {
            let p = match codec::decode(&mut input, Some(ctx.v), max)? {
                Decoded::Incomplete => {
                    // Acknowledge what was published before writing and waiting for more.
                    handler::settle(ctx).await?;
                    break;
                }
                Decoded::UnsupportedVersion => return Err(Fault::Protocol),
                Decoded::Packet(p) => p,
            };
            if matches!(p, Packet::Connect(_)) {
                return Err(Fault::Protocol);
            }
            handler::handle(ctx, p).await?;
            if let Some(how) = ctx.ended {
                if let Err(end) = flush(io, &mut ctx.out).await {
                    return end;
                }
                return Ok(how);
            }
            if ctx.out.len() >= FLUSH_AT {
                if let Err(end) = flush(io, &mut ctx.out).await {
                    return end;
                }
            }
        }
        if let Some(f) = close.get() {
            return Err(f);
        }
        if !handler::user_still_allowed(ctx) {
            return Err(Fault::NotAuthorized);
        }
        ctx.session
            .fill(&shard, &mut ctx.out, crate::storage::now_millis());
        let n = ctx.out.len();
        if let Err(end) = flush(io, &mut ctx.out).await {
            return end;
        }
        tracing::trace!(client = %ctx.session.client_id, n, "flushed");
        let event = {
            let read = async { Event::Read(io.read(&mut chunk).await) };
            let woken = async {
                let _ = wake.recv().await;
                Event::Wake
            };
            let deadline = async {
                match allowed {
                    Some(d) => glommio::timer::sleep(d.saturating_sub(last_heard.elapsed())).await,
                    None => futures_lite::future::pending::<()>().await,
                }
                Event::Deadline
            };
            or(read, or(woken, deadline)).await
        };
        match event {
            Event::Read(Ok(0)) | Event::Read(Err(_)) => return Ok(End::Lost),
            Event::Read(Ok(n)) => {
                input.extend_from_slice(&chunk[..n]);
                last_heard = Instant::now();
            }
            Event::Wake => {}
            Event::Deadline => {
                if allowed.is_some_and(|d| last_heard.elapsed() >= d) {
                    return Err(Fault::KeepAliveTimeout);
                }
            }
        }
    }
}

/// Writes what is pending. `Err` carries how the connection ends: lost, or too slow.
async fn flush<T: Transport>(io: &mut T, out: &mut BytesMut) -> Result<(), Result<End, Fault>> {
    if out.is_empty() {
        return Ok(());
    }
    let written = or(async { Some(io.write_all(out).await) }, async {
        glommio::timer::sleep(WRITE_TIMEOUT).await;
        None
    })
    .await;
    out.clear();
    match written {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) => Err(Ok(End::Lost)),
        None => Err(Err(Fault::QuotaExceeded)),
    }
}

/// Protocol level of a decoded CONNECT.
pub fn version_of(c: &super::packet::Connect) -> Version {
    if c.v5 {
        Version::V5
    } else {
        Version::V4
    }
}
