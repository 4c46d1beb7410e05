//! Server-Sent Events on `/{Table}/{id}` and `/{Table}/`: the current record first (record
//! paths), then every change, each an unnamed event (what `EventSource.onmessage` receives)
//! `id: <version>` and `data: {"type":"put"|"delete"|"message","id":..,"value":..}`. With `Last-Event-ID` the changes since that version are replayed from the
//! change logs (and current values sent too if a log no longer reaches back that far).

use super::realtime::{event_json, Target};
use super::shard::HttpShard;
use crate::mqtt::fresh::Fresh;
use crate::mqtt::message::Message;
use crate::mqtt::watch::{self, Watch};
use crate::net::{send, Io};
use crate::storage::hlc::Version;
use futures_lite::future::or;
use futures_lite::AsyncReadExt;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

/// A comment line this often keeps proxies from closing an idle stream and finds dead peers.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A client that does not read for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve<S: Io>(
    shard: Rc<HttpShard>,
    mut stream: S,
    target: Target,
    last: Option<Version>,
    cors: Option<super::cors::Allowed>,
) {
    let mut head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n".to_vec();
    if let Some(c) = &cors {
        c.write(&mut head);
    }
    head.extend_from_slice(b"\r\n");
    // Subscribe before the client sees the head: a client that writes once the stream is
    // open must see its own write.
    let watch = Watch::open(&shard.mqtt, &target.filter).await;
    if send(&mut stream, &head).await.is_err() {
        return;
    }
    let mut first = Vec::new();
    match last {
        Some(after) => {
            let (events, gap) =
                watch::replay(&shard.mqtt, &target.table.name, target.id.as_deref(), after);
            if gap {
                first.extend(crate::mqtt::tables::snapshot(&shard.mqtt, &target.filter));
            }
            first.extend(events);
        }
        None if target.id.is_some() => {
            first.extend(crate::mqtt::tables::snapshot(&shard.mqtt, &target.filter));
        }
        None => {}
    }
    let mut sent = Fresh::new(first.len());
    let mut out = Vec::new();
    for m in &first {
        if sent.first(m) {
            push_event(&mut out, m);
        }
    }
    let mut scratch = [0u8; 512];
    let mut last_write = std::time::Instant::now();
    loop {
        if watch.closed().is_some() || shard.draining.get() {
            break;
        }
        for m in watch.take() {
            if sent.live(&m, false) {
                push_event(&mut out, &m);
            }
        }
        if !out.is_empty() {
            let written = or(async { Some(send(&mut stream, &out).await) }, async {
                glommio::timer::sleep(WRITE_TIMEOUT).await;
                None
            })
            .await;
            if !matches!(written, Some(Ok(()))) {
                break;
            }
            out.clear();
            last_write = std::time::Instant::now();
        }
        enum Ev {
            Gone,
            Wake,
            Tick,
        }
        let ev = or(
            async {
                match stream.read(&mut scratch).await {
                    Ok(0) | Err(_) => Ev::Gone,
                    Ok(_) => Ev::Wake,
                }
            },
            or(
                async {
                    let _ = watch.wake.recv().await;
                    Ev::Wake
                },
                async {
                    // Wake every second to notice a shutdown.
                    glommio::timer::sleep(Duration::from_secs(1)).await;
                    Ev::Tick
                },
            ),
        )
        .await;
        match ev {
            Ev::Gone => break,
            Ev::Wake => {}
            Ev::Tick => {
                if last_write.elapsed() >= KEEP_ALIVE {
                    out.extend_from_slice(b": keep-alive\n\n");
                }
            }
        }
    }
    watch.end().await;
}

/// Appends one event: unnamed, its type inside the data (Harper's shape).
fn push_event(out: &mut Vec<u8>, m: &Message) {
    let (_, json) = event_json(m);
    if let Some(v) = m.version {
        let _ = writeln!(out, "id: {v}");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
}
