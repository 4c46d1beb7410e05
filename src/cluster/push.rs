//! The sending side of a link (the peer dialed us): after the handshake, streams each of our
//! shards' change logs from the cursor the peer asks for, only changes made on this node (full
//! mesh: every node pulls from every other, so nothing echoes), at most `WINDOW` unacknowledged
//! batches per shard; answers digest and range requests for anti-entropy repair; sends `Gap`
//! when the log no longer reaches a cursor; sends the MQTT messages queued for the peer
//! (`forward.rs`) as soon as they are queued. One task reads the peer's frames, this one writes.

use super::digest;
use super::frame::{self, Entry, Frame, OriginClock, PartDigest};
use super::handshake::{self, kind};
use super::Ctx;
use crate::net::Io;
use crate::runtime::shard::NodeShared;
use crate::storage::changelog::Change;
use crate::storage::keys;
use crate::storage::now_millis;
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a peer is told how far this node holds each origin's changes.
const STABLE_EVERY: Duration = Duration::from_millis(500);
/// Unacknowledged batches per shard stream.
const WINDOW: usize = 8;
/// Entries that make a batch worth sending while another is unacknowledged.
const COALESCE: u64 = 64;
/// Most entries read per batch.
const MAX_BATCH: usize = 512;
/// Control frames (repair answers) waiting to be sent; more means the peer misbehaves.
const MAX_CONTROL: usize = 64;
/// Range requests a peer may have outstanding (pipelined repair; see `pull::RANGES_IN_FLIGHT`).
pub const MAX_RANGES: usize = 8;

struct Sub {
    next: u64,
    acked: u64,
    inflight: VecDeque<u64>,
    /// When this stream last sent a frame (a quiet stream sends one a second).
    last_frame: Instant,
}

#[derive(Default)]
struct Push {
    subs: Vec<Option<Sub>>,
    control: VecDeque<Frame>,
    /// A digest is being computed.
    busy: bool,
    /// Range requests not answered yet, in arrival order (answered in that order).
    ranges: VecDeque<(String, u16, Option<String>)>,
    /// A task is answering `ranges`.
    ranging: bool,
    closed: Option<String>,
    /// Wakes the write loop (anything above changed).
    ringer: Option<super::wake::Ringer>,
}

impl Push {
    fn ring(&self) {
        if let Some(r) = &self.ringer {
            r.ring();
        }
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
    ctx.state.accepted(peer.node_id, |p| {
        p.name = peer.name.clone();
        p.last_contact_ms = now_millis();
        p.outbound.set_state("connected");
    });
    let shards = ctx.node.dbs.len();
    let bell = ctx.bells.register();
    let st = Rc::new(RefCell::new(Push {
        subs: (0..shards).map(|_| None).collect(),
        ringer: Some(bell.ringer()),
        ..Default::default()
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

/// Reads the peer's frames until the link fails; then tells the write loop why.
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
                st.borrow_mut().closed = Some(e.to_string());
                st.borrow().ring();
                return;
            }
        };
        ctx.state
            .accepted(peer, |p| p.last_contact_ms = now_millis());
        if let Err(e) = on_frame(&ctx, &st, f) {
            tracing::warn!(peer, "closing link: {e}");
            st.borrow_mut().closed = Some(e);
            st.borrow().ring();
            return;
        }
        st.borrow().ring();
    }
}

/// Handles one frame from the peer (pulling side).
fn on_frame(ctx: &Rc<Ctx>, st: &Rc<RefCell<Push>>, f: Frame) -> Result<(), String> {
    match f {
        Frame::Subscribe { shard, from } => subscribe(ctx, st, shard, from)?,
        Frame::Ack { shard, upto } => {
            let mut s = st.borrow_mut();
            if let Some(Some(sub)) = s.subs.get_mut(shard as usize) {
                if upto > sub.next {
                    return Err(format!("Ack past what was sent on shard {shard}"));
                }
                sub.acked = sub.acked.max(upto);
                while sub.inflight.front().is_some_and(|u| *u <= upto) {
                    sub.inflight.pop_front();
                }
            }
        }
        Frame::Ping => {}
        Frame::DigestRequest => {
            if std::mem::replace(&mut st.borrow_mut().busy, true) {
                return Err("second repair request while one is answered".into());
            }
            glommio::spawn_local(answer_digests(ctx.node.clone(), st.clone())).detach();
        }
        Frame::RangeRequest {
            table,
            partition,
            after,
        } => range_request(ctx, st, table, partition, after)?,
        other => return Err(format!("unexpected {} from a pulling peer", kind(&other))),
    }
    if st.borrow().control.len() > MAX_CONTROL {
        return Err("too many requests in flight".into());
    }
    Ok(())
}

/// (Re)starts the stream of one shard from `from`.
fn subscribe(ctx: &Ctx, st: &RefCell<Push>, shard: u16, from: u64) -> Result<(), String> {
    let shards = ctx.node.dbs.len();
    let mut s = st.borrow_mut();
    let slot = s
        .subs
        .get_mut(shard as usize)
        .ok_or_else(|| format!("Subscribe for shard {shard} of {shards}"))?;
    *slot = Some(Sub {
        next: from,
        acked: from,
        inflight: VecDeque::new(),
        last_frame: Instant::now(),
    });
    Ok(())
}

/// Computes this node's digests off the executor and queues them, then `DigestDone`.
async fn answer_digests(node: Arc<NodeShared>, st: Rc<RefCell<Push>>) {
    let dbs = node.dbs.clone();
    let result = glommio::executor()
        .spawn_blocking(move || digest::compute(&dbs))
        .await;
    let mut s = st.borrow_mut();
    s.busy = false;
    match result {
        Ok(tables) => {
            for (table, d) in tables {
                let parts: Vec<PartDigest> = d
                    .parts
                    .into_iter()
                    .map(|(partition, hash)| PartDigest { partition, hash })
                    .collect();
                for chunk in parts.chunks(4096) {
                    s.control.push_back(Frame::Digest {
                        table: table.clone(),
                        parts: chunk.to_vec(),
                    });
                }
            }
            s.control.push_back(Frame::DigestDone);
        }
        Err(e) => s.closed = Some(format!("digest failed: {e}")),
    }
    s.ring();
}

/// Queues a range request, and starts the task that answers them if none runs.
fn range_request(
    ctx: &Rc<Ctx>,
    st: &Rc<RefCell<Push>>,
    table: String,
    partition: u16,
    after: Option<String>,
) -> Result<(), String> {
    super::apply::check_table_name(&table)?;
    if partition as u32 >= ctx.node.partitions {
        return Err(format!("RangeRequest for partition {partition}"));
    }
    let start = {
        let mut s = st.borrow_mut();
        // Answers not yet sent count too (they wait in `control`, up to half a frame
        // each): a peer that asks without reading cannot pile them up.
        if s.ranges.len() + s.control.len() >= MAX_RANGES {
            return Err(format!("more than {MAX_RANGES} range requests in flight"));
        }
        s.ranges.push_back((table, partition, after));
        !std::mem::replace(&mut s.ranging, true)
    };
    if start {
        glommio::spawn_local(answer_ranges(ctx.clone(), st.clone())).detach();
    }
    Ok(())
}

/// Answers queued range requests one after another, off the executor, in arrival order.
async fn answer_ranges(ctx: Rc<Ctx>, st: Rc<RefCell<Push>>) {
    let max = ctx.max_frame / 2;
    loop {
        let Some((table, partition, after)) = st.borrow_mut().ranges.pop_front() else {
            st.borrow_mut().ranging = false;
            return;
        };
        let dbs = ctx.node.dbs.clone();
        let t = table.clone();
        let result = glommio::executor()
            .spawn_blocking(move || digest::read_range(&dbs, &t, partition, after.as_deref(), max))
            .await;
        let mut s = st.borrow_mut();
        match result {
            Ok((records, more)) => s.control.push_back(Frame::Range {
                table,
                partition,
                records,
                more,
            }),
            Err(e) => {
                s.closed = Some(format!("range read failed: {e}"));
                s.ranging = false;
                s.ring();
                return;
            }
        }
        s.ring();
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
    let shards = ctx.node.dbs.len();
    let mut last_sent = Instant::now();
    let mut last_stable = Instant::now();
    let mut last_status = Instant::now() - Duration::from_secs(1);
    // How far this link announced this node's MQTT interest (`None`: not yet).
    let mut interest_at = None;
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if let Some(e) = st.borrow_mut().closed.take() {
            return Err(e);
        }
        let mut out: Vec<Frame> = st.borrow_mut().control.drain(..).collect();
        // What this node's subscribers want first, then the messages.
        if let Some(interest) = &ctx.mqtt.interest {
            super::interest::frames(interest, &mut interest_at, ctx.max_frame / 2, &mut out);
        }
        super::forward::take(ctx, publishes, &mut out);
        let heartbeat = last_sent.elapsed() > Duration::from_secs(1);
        let mut sent_changes = 0u64;
        for s in 0..shards {
            sent_changes += stream_shard(ctx, st, s, &mut out)?;
        }
        if out.is_empty() && heartbeat {
            out.push(Frame::Ping);
        }
        if last_stable.elapsed() > STABLE_EVERY {
            last_stable = Instant::now();
            out.push(stable_frame(ctx));
        }
        if last_status.elapsed() > Duration::from_millis(100) || !out.is_empty() {
            last_status = Instant::now();
            report_lag(ctx, st, peer, sent_changes);
        }
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
        last_sent = Instant::now();
    }
}

/// What shard `s`'s stream sends now, into `out`: a `Gap` (which ends the stream), the next
/// batch of changes, a heartbeat, or nothing. Returns how many changes it sends.
fn stream_shard(
    ctx: &Ctx,
    st: &RefCell<Push>,
    s: usize,
    out: &mut Vec<Frame>,
) -> Result<u64, String> {
    let stats = &ctx.node.writer_stats[s];
    // This first: every local change with a clock up to it is below `log_next`.
    let own_clock = stats.own_clock.load(Ordering::Acquire);
    let log_next = stats.changelog_next.load(Ordering::Acquire);
    let stable = |upto: u64| if upto == log_next { own_clock + 1 } else { 0 };
    let log_first = stats.changelog_first.load(Ordering::Acquire);
    let mut guard = st.borrow_mut();
    let Some(sub) = guard.subs[s].as_mut() else {
        return Ok(0);
    };
    let gap = Frame::Gap {
        shard: s as u16,
        resume_at: log_next,
    };
    // No cursor, a cursor the log was trimmed past, or one ahead of the log (the peer
    // saw an earlier incarnation of this node's log): repair first.
    if sub.next == 0 || sub.next < log_first || sub.next > log_next {
        out.push(gap);
        guard.subs[s] = None;
        return Ok(0);
    }
    if sub.inflight.len() >= WINDOW {
        return Ok(0);
    }
    // With a batch in flight, the next one waits for its acknowledgement unless it
    // would be large: at low rates every change goes at once, under load batches grow
    // to what the receiver keeps up with (fewer commits and frames per change).
    if !sub.inflight.is_empty() && log_next - sub.next < COALESCE {
        return Ok(0);
    }
    if sub.next < log_next {
        match read_batch(ctx, s, sub.next, log_next) {
            Ok(None) => {
                out.push(gap);
                guard.subs[s] = None;
            }
            Ok(Some((entries, upto))) => {
                let n = entries.len() as u64;
                sub.next = upto;
                sub.inflight.push_back(upto);
                sub.last_frame = Instant::now();
                out.push(sub.changes(ctx, s, entries, log_next, stable(upto)));
                return Ok(n);
            }
            Err(e) => return Err(format!("change log read failed: {e}")),
        }
    } else if sub.last_frame.elapsed() > Duration::from_secs(1) {
        sub.last_frame = Instant::now();
        out.push(sub.changes(ctx, s, Vec::new(), log_next, stable(sub.next)));
    }
    Ok(0)
}

impl Sub {
    /// A `Changes` frame of shard `s` with `entries`, up to `self.next`.
    fn changes(
        &self,
        ctx: &Ctx,
        s: usize,
        entries: Vec<Entry>,
        log_next: u64,
        stable_below: u64,
    ) -> Frame {
        Frame::Changes {
            shard: s as u16,
            entries,
            upto: self.next,
            log_next,
            lag_entries: log_next.saturating_sub(self.acked),
            lag_ms: lag_ms(ctx, s, self.acked, log_next),
            stable_below,
        }
    }
}

/// How far this node holds each origin's changes.
fn stable_frame(ctx: &Ctx) -> Frame {
    let clocks = ctx
        .knowledge
        .borrow()
        .mine
        .iter()
        .map(|(origin, clock)| OriginClock {
            origin: *origin,
            clock: *clock,
        })
        .collect();
    Frame::Stable { clocks }
}

/// Shows how far the peer is behind on this link, and the changes sent.
fn report_lag(ctx: &Ctx, st: &RefCell<Push>, peer: u16, sent_changes: u64) {
    let (mut entries, mut ms) = (0u64, 0u64);
    for (s, sub) in st.borrow().subs.iter().enumerate() {
        if let Some(sub) = sub {
            let next = ctx.node.writer_stats[s]
                .changelog_next
                .load(Ordering::Acquire);
            entries += next.saturating_sub(sub.acked);
            ms = ms.max(lag_ms(ctx, s, sub.acked, next));
        }
    }
    ctx.state.accepted(peer, |p| {
        p.outbound.lag_entries = entries;
        p.outbound.lag_ms = ms;
        p.outbound.changes += sent_changes;
    });
}

/// Entries of shard `s`'s log in `[from, log_next)`, at most `MAX_BATCH` or half a frame, only
/// those made on this node; and the sequence after the last one read. `None`: the log no
/// longer holds `from` (trimmed).
fn read_batch(
    ctx: &Ctx,
    s: usize,
    from: u64,
    log_next: u64,
) -> fjall::Result<Option<(Vec<Entry>, u64)>> {
    let db = &ctx.node.dbs[s];
    let mut entries = Vec::new();
    let mut upto = from;
    let mut bytes = 0usize;
    let budget = ctx.max_frame / 2;
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
        if bytes > 0 && (bytes + v.len() > budget || (upto - from) as usize >= MAX_BATCH) {
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

/// Age of the oldest entry the peer has not acknowledged (0 when caught up).
fn lag_ms(ctx: &Ctx, s: usize, acked: u64, log_next: u64) -> u64 {
    if acked >= log_next {
        return 0;
    }
    match ctx.node.dbs[s].changelog.get(keys::seq_key(acked)) {
        Ok(Some(v)) => Change::decode(&v)
            .map(|c| now_millis().saturating_sub(c.clock >> 16))
            .unwrap_or(0),
        _ => 0,
    }
}
