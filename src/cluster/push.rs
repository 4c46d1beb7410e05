//! The sending side of a link, its I/O (the peer dialed us): after the handshake, one task
//! reads the peer's frames into the `outbound` state machine and carries out the reads it asks
//! for (digests, repair ranges) off the executor; this one polls the state machine with a view
//! of this node's change logs and writes what it says, together with this node's MQTT interest
//! and the MQTT messages queued for the peer (`forward.rs`), as soon as anything is rung.

use super::digest;
use super::frame::{self, Entry};
use super::handshake;
use super::inbound::Now;
use super::outbound::{LogHead, LogView, Outbound, Read};
use super::Ctx;
use crate::net::Io;
use crate::storage::changelog::Change;
use crate::storage::keys;
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One link's state machine and what its two tasks share.
struct Push {
    sm: Outbound,
    /// Why the link ends, once the reading side or a read knows.
    closed: Option<String>,
    /// Wakes the write loop (anything above changed).
    ringer: super::wake::Ringer,
    started: Instant,
}

impl Push {
    fn ring(&self) {
        self.ringer.ring();
    }

    fn close(&mut self, why: String) {
        self.closed.get_or_insert(why);
        self.ring();
    }
}

/// Time as the state machine sees it.
fn now(ctx: &Ctx, started: Instant) -> Now {
    Now {
        mono_ms: started.elapsed().as_millis() as u64,
        wall_ms: ctx.node.clock.now_millis(),
    }
}

/// Serves one accepted connection until it closes: over TLS first when the links use it.
pub async fn serve(ctx: Rc<Ctx>, stream: TcpStream) {
    let from = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(super::HANDSHAKE_TIMEOUT));
    let Some(tls) = ctx.tls.clone() else {
        return serve_link(ctx, stream, from).await;
    };
    let Some(peers) = &tls.configs().peers else {
        return refused(&ctx, &from, "TLS on peer links has no CA".into());
    };
    let config = peers.accept.clone();
    match crate::net::tls::accept(config, stream, super::HANDSHAKE_TIMEOUT).await {
        Ok(stream) => serve_link(ctx, stream, from).await,
        Err(e) => refused(&ctx, &from, format!("TLS handshake failed: {e}")),
    }
}

/// Logs and counts a link refused before it was authenticated.
fn refused(ctx: &Ctx, from: &str, why: String) {
    tracing::warn!(%from, "replication link refused: {why}");
    *ctx.state.refused.lock().unwrap_or_else(|e| e.into_inner()) += 1;
}

/// Authenticates the peer, then streams to it until the link ends.
async fn serve_link<S: Io>(ctx: Rc<Ctx>, mut stream: S, from: String) {
    let peer = match handshake::accept(&ctx, &mut stream).await {
        Ok(p) => p,
        Err(e) => return refused(&ctx, &from, e),
    };
    tracing::info!(%from, peer = peer.node_id, name = %peer.name, "peer link accepted");
    let _ = stream.tcp().set_read_timeout(Some(super::IDLE_TIMEOUT));
    let wall = ctx.node.clock.now_millis();
    ctx.state.accepted(peer.node_id, |p| {
        p.name = peer.name.clone();
        p.last_contact_ms = wall;
        p.outbound.set_state("connected");
    });
    let bell = ctx.bells.register();
    let started = Instant::now();
    let sm = Outbound::new(
        ctx.node.dbs.len(),
        ctx.node.partitions,
        ctx.max_frame,
        now(&ctx, started),
    );
    let st = Rc::new(RefCell::new(Push {
        sm,
        closed: None,
        ringer: bell.ringer(),
        started,
    }));
    let (rd, mut wr) = futures_lite::io::split(stream);
    let reader = glommio::spawn_local(read_loop(ctx.clone(), st.clone(), rd, peer.node_id));
    let publishes = ctx.forward.attach(peer.node_id, bell.ringer());
    let result = write_loop(&ctx, &st, &bell, &mut wr, peer.node_id, &publishes).await;
    ctx.forward.detach(&publishes);
    drop(reader);
    let reason = match result {
        Err(e) => e,
        Ok(()) => "stopped".into(),
    };
    tracing::info!(peer = peer.node_id, "peer link closed: {reason}");
    ctx.state.accepted(peer.node_id, |p| {
        p.outbound.set_state("disconnected");
        p.outbound.last_error = reason;
    });
}

/// Reads the peer's frames into the state machine until the link fails; then tells the
/// write loop why.
async fn read_loop<R: futures_lite::AsyncRead + Unpin>(
    ctx: Rc<Ctx>,
    st: Rc<RefCell<Push>>,
    mut rd: R,
    peer: u16,
) {
    loop {
        let f = match frame::read(&mut rd, ctx.max_frame).await {
            Ok(f) => f,
            Err(e) => {
                if e.is_bad_frame() {
                    tracing::warn!(peer, "closing link: {e}");
                    ctx.state.accepted(peer, |p| p.outbound.bad_frames += 1);
                }
                return st.borrow_mut().close(e.to_string());
            }
        };
        let wall = ctx.node.clock.now_millis();
        ctx.state.accepted(peer, |p| p.last_contact_ms = wall);
        let mut push = st.borrow_mut();
        let now = now(&ctx, push.started);
        match push.sm.on_frame(f, now) {
            Ok(read) => {
                push.ring();
                drop(push);
                if let Some(read) = read {
                    glommio::spawn_local(answer(ctx.clone(), st.clone(), read)).detach();
                }
            }
            Err(e) => {
                tracing::warn!(peer, "closing link: {e}");
                return push.close(e);
            }
        }
    }
}

/// Carries out a read the state machine asked for, off the executor, and the ones it asks for
/// after it (ranges are answered one after another, in the order asked).
async fn answer(ctx: Rc<Ctx>, st: Rc<RefCell<Push>>, first: Read) {
    let mut next = Some(first);
    while let Some(read) = next.take() {
        let dbs = ctx.node.dbs.clone();
        match read {
            Read::Digests => {
                let result = glommio::executor()
                    .spawn_blocking(move || digest::compute(&dbs))
                    .await;
                let mut push = st.borrow_mut();
                match result {
                    Ok(tables) => push.sm.digests_ready(tables),
                    Err(e) => push.close(format!("digest failed: {e}")),
                }
                push.ring();
            }
            Read::Range {
                table,
                partition,
                after,
            } => {
                let (t, max) = (table.clone(), st.borrow().sm.page_bytes());
                let result = glommio::executor()
                    .spawn_blocking(move || {
                        digest::read_range(&dbs, &t, partition, after.as_deref(), max)
                    })
                    .await;
                let mut push = st.borrow_mut();
                match result {
                    Ok((records, more)) => {
                        next = push.sm.range_ready(table, partition, records, more);
                    }
                    Err(e) => push.close(format!("range read failed: {e}")),
                }
                push.ring();
            }
        }
    }
}

async fn write_loop<W: futures_lite::AsyncWrite + Unpin>(
    ctx: &Rc<Ctx>,
    st: &Rc<RefCell<Push>>,
    bell: &super::wake::Bell,
    wr: &mut W,
    peer: u16,
    publishes: &super::forward::LinkQueue,
) -> Result<(), String> {
    let mut w = Writing {
        last_status: Instant::now() - Duration::from_secs(1),
        interest_at: None,
    };
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let out = w.gather(ctx, &mut st.borrow_mut(), peer, publishes)?;
        if out.is_empty() {
            // Rung by commits, acknowledgements, repair answers and queued MQTT messages.
            bell.wait(super::POLL).await;
            continue;
        }
        for f in &out {
            if let Err(e) = frame::write(wr, f).await {
                if matches!(e, frame::WriteError::Encode(_)) {
                    tracing::error!(peer, "closing link: {e}");
                }
                return Err(e.to_string());
            }
        }
    }
}

/// What the write loop remembers between rounds.
struct Writing {
    last_status: Instant,
    /// How far this link announced this node's MQTT interest (`None`: not yet).
    interest_at: Option<u64>,
}

impl Writing {
    /// Everything to send now: repair answers, this node's MQTT interest, then the messages,
    /// then what the streams send. Also refreshes the link's lag on `/status`.
    fn gather(
        &mut self,
        ctx: &Ctx,
        push: &mut Push,
        peer: u16,
        publishes: &super::forward::LinkQueue,
    ) -> Result<Vec<frame::Frame>, String> {
        if let Some(e) = push.closed.take() {
            return Err(e);
        }
        let log = Logs(ctx);
        let mut out = Vec::new();
        push.sm.take_control(&mut out);
        if let Some(interest) = &ctx.mqtt.interest {
            super::interest::frames(interest, &mut self.interest_at, ctx.max_frame / 2, &mut out);
        }
        super::forward::take(ctx, publishes, &mut out);
        let now = now(ctx, push.started);
        let sent = push
            .sm
            .poll(&log, &ctx.knowledge.borrow().mine, now, &mut out)?;
        if self.last_status.elapsed() > Duration::from_millis(100) || !out.is_empty() {
            self.last_status = Instant::now();
            let (entries, ms) = push.sm.lag(&log, now);
            ctx.state.accepted(peer, |p| {
                p.outbound.lag_entries = entries;
                p.outbound.lag_ms = ms;
                p.outbound.changes += sent.changes;
            });
        }
        Ok(out)
    }
}

/// This node's change logs, read in place (fjall reads on the cluster executor, as before).
struct Logs<'a>(&'a Ctx);

impl LogView for Logs<'_> {
    fn head(&self, shard: usize) -> LogHead {
        let stats = &self.0.node.writer_stats[shard];
        // This first: every local change with a clock up to it is below `changelog_next`.
        let own_clock = stats.own_clock.load(Ordering::Acquire);
        LogHead {
            own_clock,
            next: stats.changelog_next.load(Ordering::Acquire),
            first: stats.changelog_first.load(Ordering::Acquire),
        }
    }

    fn read_batch(
        &self,
        shard: usize,
        from: u64,
        next: u64,
        max_bytes: usize,
    ) -> Result<Option<(Vec<Entry>, u64)>, String> {
        read_batch(self.0, shard, from, next, max_bytes)
            .map_err(|e| format!("change log read failed: {e}"))
    }

    fn written_ms(&self, shard: usize, seq: u64) -> Option<u64> {
        let v = self.0.node.dbs[shard]
            .changelog
            .get(keys::seq_key(seq))
            .ok()??;
        Change::decode(&v).map(|c| c.clock >> 16)
    }
}

/// Entries of shard `s`'s log in `[from, log_next)`, at most `MAX_BATCH` or `budget` bytes,
/// only those made on this node; and the sequence after the last one read. `None`: the log no
/// longer holds `from` (trimmed).
fn read_batch(
    ctx: &Ctx,
    s: usize,
    from: u64,
    log_next: u64,
    budget: usize,
) -> fjall::Result<Option<(Vec<Entry>, u64)>> {
    let db = &ctx.node.dbs[s];
    let mut entries = Vec::new();
    let mut upto = from;
    let mut bytes = 0usize;
    for guard in db
        .changelog
        .range(keys::seq_key(from).to_vec()..keys::seq_key(log_next).to_vec())
    {
        let (k, v) = guard.into_inner()?;
        let seq = u64::from_be_bytes(k[..8].try_into().unwrap_or([0; 8]));
        if seq != upto {
            // A hole: entries were trimmed under us.
            return Ok(None);
        }
        if bytes > 0
            && (bytes + v.len() > budget || (upto - from) as usize >= super::outbound::MAX_BATCH)
        {
            break;
        }
        upto = seq + 1;
        bytes += v.len();
        match Change::decode(&v) {
            Some(change) if change.node == ctx.node_id => entries.push(Entry { seq, change }),
            Some(_) => {}
            None => tracing::error!(shard = s, seq, "unreadable change-log entry skipped"),
        }
    }
    if upto == from {
        return Ok(None);
    }
    Ok(Some((entries, upto)))
}
