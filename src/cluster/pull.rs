//! The receiving side of a link: dials a configured peer (reconnecting with capped exponential
//! backoff), authenticates, subscribes to each of the peer's shards from our durable cursor,
//! applies what arrives (last-writer-wins, on our owner shards), makes the cursor durable after
//! the data and acknowledges. On `Gap` (no cursor yet, or the peer's log was trimmed past it)
//! it runs anti-entropy repair: compares per-partition digests, pulls only the partitions that
//! differ, applies them LWW (so nothing only we hold is ever deleted), then resumes the stream.
//! MQTT messages the peer forwards (`Publish`) go to our shards through `forward.rs`.

use super::cursor::Cursor;
use super::digest;
use super::frame::{self, Entry, Frame, InterestChange, PartDigest, RepairRecord};
use super::handshake::{self, kind, PeerInfo};
use super::state::PeerStatus;
use super::Ctx;
use crate::net::Io;
use crate::storage::changelog::{Change, ChangeOp};
use crate::storage::now_millis;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::collections::{BTreeMap, VecDeque};
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Dials `addr` forever (until the node stops).
pub async fn run(ctx: Rc<Ctx>, addr: String) {
    let first = Duration::from_millis(100);
    let mut backoff = first;
    let mut last_error = String::new();
    while !ctx.stop.load(Ordering::Relaxed) {
        ctx.state
            .dialed(&addr, None, |p| p.inbound.set_state("connecting"));
        let mut authenticated = false;
        let err = match session(&ctx, &addr, &mut authenticated).await {
            Ok(()) => return,
            Err(e) => e,
        };
        if authenticated {
            backoff = first;
        }
        // Log each new failure once; a peer that stays down is not a log flood.
        if err != last_error {
            tracing::warn!(peer = %addr, "replication link: {err}");
            last_error = err.clone();
        }
        let refused = err.contains("refused") || err.contains("secret");
        ctx.state.dialed(&addr, None, |p| {
            p.inbound
                .set_state(if refused { "refused" } else { "disconnected" });
            p.inbound.last_error = err;
        });
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(ctx.reconnect_max);
    }
}

async fn connect(addr: &str) -> Result<TcpStream, String> {
    let a = addr.to_string();
    let addrs: Vec<std::net::SocketAddr> = glommio::executor()
        .spawn_blocking(move || a.to_socket_addrs().map(|i| i.collect::<Vec<_>>()))
        .await
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?;
    let mut last = format!("{addr} resolves to no address");
    for a in addrs {
        match TcpStream::connect_timeout(a, super::HANDSHAKE_TIMEOUT).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    Err(last)
}

/// An anti-entropy repair in progress.
#[derive(Default)]
struct Repair {
    /// Shards whose stream resumes when the repair is done, and where.
    covering: Vec<(u16, u64)>,
    theirs: BTreeMap<(String, u16), [u8; 32]>,
    queue: VecDeque<(String, u16)>,
    /// Ranges asked for and not answered yet, in the order asked (answers come in it).
    asked: VecDeque<(String, u16)>,
    digests_done: bool,
    applied: u64,
}

/// One connection to the peer: TCP, TLS over it when the links use it, then the link.
async fn session(ctx: &Rc<Ctx>, addr: &str, authenticated: &mut bool) -> Result<(), String> {
    let stream = connect(addr).await?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(super::HANDSHAKE_TIMEOUT));
    let Some(tls) = ctx.tls.clone() else {
        return link(ctx, addr, stream, authenticated).await;
    };
    let Some(peers) = &tls.configs().peers else {
        return Err("TLS on peer links has no CA".into());
    };
    let config = peers.dial.clone();
    let stream = crate::net::tls::connect(config, addr, stream, super::HANDSHAKE_TIMEOUT)
        .await
        .map_err(|e| match e.kind() {
            // What TLS itself refused (a certificate, a version, an alert from the peer).
            std::io::ErrorKind::InvalidData => format!("TLS handshake refused: {e}"),
            _ => format!("TLS handshake failed: {e}"),
        })?;
    link(ctx, addr, stream, authenticated).await
}

/// Authenticates with the peer, then pulls from it until the link ends.
async fn link<S: Io>(
    ctx: &Rc<Ctx>,
    addr: &str,
    mut stream: S,
    authenticated: &mut bool,
) -> Result<(), String> {
    let peer = handshake::dial(ctx, &mut stream).await.map_err(|e| {
        // Over TLS 1.3 the acceptor checks our certificate after our side of the handshake
        // ended: its refusal (an alert) arrives as the first read fails.
        match ctx.tls.is_some() && e.contains("alert") {
            true => format!("TLS handshake refused by the peer: {e}"),
            false => e,
        }
    })?;
    *authenticated = true;
    ctx.knowledge
        .borrow_mut()
        .members
        .insert(addr.to_string(), peer.node_id);
    let _ = stream.tcp().set_read_timeout(Some(super::IDLE_TIMEOUT));
    tracing::info!(peer = peer.node_id, name = %peer.name, %addr, "peer link up");
    ctx.state.dialed(addr, Some(peer.node_id), |p| {
        p.name = peer.name.clone();
        p.last_contact_ms = now_millis();
        p.inbound.set_state("connected");
        p.inbound.caught_up = false;
        p.inbound.last_error.clear();
    });
    let result = stream_from(ctx, addr, &peer, &mut stream).await;
    if let Err(e) = &result {
        if e.starts_with("bad frame") {
            ctx.state
                .dialed(addr, Some(peer.node_id), |p| p.inbound.bad_frames += 1);
        }
    }
    result
}

async fn stream_from<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Rc<Ctx>,
    addr: &str,
    peer: &PeerInfo,
    s: &mut S,
) -> Result<(), String> {
    let cursor = subscribe(ctx, peer, s).await?;
    let shards = cursor.len();
    let link = Link {
        ctx,
        addr,
        peer,
        s,
        cursor,
        peer_lag: vec![(0, 0); shards],
        caught_up: vec![false; shards],
        synced: false,
        stable: vec![0; shards],
        gaps: Vec::new(),
        repair: None,
        last_repair: Instant::now(),
    };
    link.run().await
}

/// Subscribes to each of the peer's shards from our durable cursor (0 when there is none, or
/// when it belongs to another generation of the peer's logs); returns the cursors.
async fn subscribe<S: AsyncWrite + Unpin>(
    ctx: &Ctx,
    peer: &PeerInfo,
    s: &mut S,
) -> Result<Vec<u64>, String> {
    let mut cursor = vec![0u64; peer.shards as usize];
    for (i, c) in cursor.iter_mut().enumerate() {
        *c = ctx
            .cursors
            .get(peer.node_id, i as u16)
            .filter(|c| c.generation == peer.generation)
            .map_or(0, |c| c.next);
        send(
            s,
            &Frame::Subscribe {
                shard: i as u16,
                from: *c,
            },
        )
        .await?;
    }
    Ok(cursor)
}

/// The receiving side of an authenticated link: what it has applied, acknowledged and learnt
/// of the peer, and the repair in progress.
struct Link<'a, S> {
    ctx: &'a Rc<Ctx>,
    addr: &'a str,
    peer: &'a PeerInfo,
    s: &'a mut S,
    /// Per peer shard: the next sequence to receive.
    cursor: Vec<u64>,
    /// Per peer shard: (entries, ms) not acknowledged when the peer last sent.
    peer_lag: Vec<(u64, u64)>,
    /// Per peer shard: whether this link has reached the end of the peer's log once.
    caught_up: Vec<bool>,
    synced: bool,
    /// Per peer shard: the peer's last `stable_below` (0: none yet).
    stable: Vec<u64>,
    gaps: Vec<(u16, u64)>,
    repair: Option<Repair>,
    last_repair: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<'_, S> {
    /// Reads and handles frames until the node stops or the link fails.
    async fn run(mut self) -> Result<(), String> {
        loop {
            if self.ctx.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let f = frame::read(self.s, self.ctx.max_frame)
                .await
                .map_err(|e| e.to_string())?;
            self.status(|p| p.last_contact_ms = now_millis());
            // Now and then compare everything, even with good cursors: the peer streams only its
            // own changes, so this is what brings changes of a node that is gone for good.
            if self.repair.is_none() && self.last_repair.elapsed() > super::REPAIR_EVERY {
                self.last_repair = Instant::now();
                self.start_repair().await?;
            }
            self.on_frame(f).await?;
        }
    }

    /// Updates what `/status` shows of this peer.
    fn status(&self, f: impl FnOnce(&mut PeerStatus)) {
        self.ctx.state.dialed(self.addr, Some(self.peer.node_id), f);
    }

    /// Handles one frame from the peer.
    async fn on_frame(&mut self, f: Frame) -> Result<(), String> {
        match f {
            Frame::Changes {
                shard,
                entries,
                upto,
                log_next,
                lag_entries,
                lag_ms,
                stable_below,
            } => {
                let i = shard as usize;
                let (written, now) = self.apply_changes(shard, entries, upto).await?;
                self.learn_stable(i, stable_below);
                self.acknowledge(shard, upto, log_next).await?;
                // What the peer had beyond what it sent, plus what it had not heard acknowledged.
                self.peer_lag[i] = (lag_entries.max(log_next.saturating_sub(upto)), lag_ms);
                self.report_applied(&written, now);
            }
            Frame::Ping => send(self.s, &Frame::Ping).await?,
            Frame::Publish { messages } => {
                let (ctx, node_id) = (self.ctx, self.peer.node_id);
                let n = super::forward::receive(&ctx.node, &ctx.mqtt, node_id, messages).await?;
                self.status(|p| p.publishes.received += n);
            }
            Frame::Interest { reset, changes } => self.on_interest(reset, changes)?,
            Frame::Stable { clocks } => {
                if clocks.len() > 4096 {
                    return Err("bad frame: too many clocks".into());
                }
                let view = clocks.into_iter().map(|c| (c.origin, c.clock)).collect();
                let peer = self.peer.node_id;
                self.ctx.knowledge.borrow_mut().views.insert(peer, view);
            }
            Frame::Gap { shard, resume_at } => self.on_gap(shard, resume_at).await?,
            Frame::Digest { table, parts } => self.on_digest(table, parts)?,
            Frame::DigestDone => self.on_digest_done().await?,
            Frame::Range {
                table,
                partition,
                records,
                more,
            } => self.on_range(table, partition, records, more).await?,
            other => return Err(format!("bad frame: unexpected {}", kind(&other))),
        }
        Ok(())
    }

    /// Checks a batch of `Changes` and applies it; returns the write times of its changes and
    /// when they were applied.
    async fn apply_changes(
        &self,
        shard: u16,
        entries: Vec<Entry>,
        upto: u64,
    ) -> Result<(Vec<u64>, u64), String> {
        let i = shard as usize;
        if i >= self.cursor.len() || upto < self.cursor[i] {
            return Err(format!("bad frame: Changes for shard {shard} up to {upto}"));
        }
        let mut changes = Vec::with_capacity(entries.len());
        let mut prev = self.cursor[i];
        for e in entries {
            if e.seq < prev || e.seq >= upto || e.change.node != self.peer.node_id {
                return Err("bad frame: entry out of order or not made by the peer".into());
            }
            prev = e.seq;
            changes.push(e.change);
        }
        let written: Vec<u64> = changes.iter().map(|c| c.clock >> 16).collect();
        super::apply::apply(&self.ctx.node, changes).await?;
        Ok((written, now_millis()))
    }

    /// Everything before `upto` is applied now: so is every change the peer made on that shard
    /// with a clock below `stable_below`.
    fn learn_stable(&mut self, i: usize, stable_below: u64) {
        if stable_below > 0 {
            self.stable[i] = self.stable[i].max(stable_below);
            if self.stable.iter().all(|c| *c > 0) {
                let min = self.stable.iter().copied().min().unwrap_or(0);
                self.ctx
                    .knowledge
                    .borrow_mut()
                    .learn(self.peer.node_id, min);
            }
        }
    }

    /// Hands the cursor to the writer (after the data), acknowledges, and notes when the link
    /// has reached the end of every one of the peer's logs.
    async fn acknowledge(&mut self, shard: u16, upto: u64, log_next: u64) -> Result<(), String> {
        let i = shard as usize;
        if upto > self.cursor[i] {
            let cursor = Cursor {
                generation: self.peer.generation,
                next: upto,
            };
            let ctx = self.ctx;
            ctx.cursors
                .save_soon(&ctx.node, self.peer.node_id, shard, cursor)
                .await?;
            self.cursor[i] = upto;
        }
        send(self.s, &Frame::Ack { shard, upto }).await?;
        self.caught_up[i] |= upto >= log_next;
        if !self.synced && self.repair.is_none() && self.caught_up.iter().all(|c| *c) {
            self.synced = true;
            self.ctx.synced.borrow_mut().insert(self.addr.to_string());
            self.status(|p| p.inbound.caught_up = true);
        }
        Ok(())
    }

    /// Shows the changes applied at `now` (their write times in `written`) and the peer's lag.
    fn report_applied(&self, written: &[u64], now: u64) {
        let entries: u64 = self.peer_lag.iter().map(|l| l.0).sum();
        let ms = self.peer_lag.iter().map(|l| l.1).max().unwrap_or(0);
        self.status(|p| {
            for ms in written {
                p.inbound.apply_lag.record(now.saturating_sub(*ms));
            }
            p.inbound.changes += written.len() as u64;
            p.inbound.lag_entries = entries;
            p.inbound.lag_ms = ms;
        });
    }

    fn on_interest(&self, reset: bool, changes: Vec<InterestChange>) -> Result<(), String> {
        let checked = super::interest::check(changes).map_err(|e| format!("bad frame: {e}"))?;
        let mut pi = self.ctx.peer_interest.borrow_mut();
        pi.apply(self.peer.node_id, reset, checked)
            .map_err(|e| format!("bad frame: {e}"))?;
        let (mine, total) = (pi.count(self.peer.node_id) as u64, pi.total());
        drop(pi);
        if let Some(i) = &self.ctx.mqtt.interest {
            i.peer_filters.store(total, Ordering::Relaxed);
        }
        self.status(|p| p.publishes.filters = mine);
        Ok(())
    }

    async fn on_gap(&mut self, shard: u16, resume_at: u64) -> Result<(), String> {
        if shard as usize >= self.cursor.len() {
            return Err(format!("bad frame: Gap for shard {shard}"));
        }
        tracing::info!(
            peer = self.peer.node_id,
            shard,
            "no usable cursor or the peer's log was trimmed past it: anti-entropy repair"
        );
        self.gaps.push((shard, resume_at));
        self.caught_up[shard as usize] = false;
        if self.repair.is_none() {
            self.start_repair().await?;
        }
        Ok(())
    }

    fn on_digest(&mut self, table: String, parts: Vec<PartDigest>) -> Result<(), String> {
        let r = self
            .repair
            .as_mut()
            .filter(|r| !r.digests_done)
            .ok_or("bad frame: Digest without a request")?;
        super::apply::check_table_name(&table).map_err(|e| format!("bad frame: {e}"))?;
        if r.theirs.len() + parts.len() > 1024 * self.ctx.node.partitions as usize {
            return Err("bad frame: too many digests".into());
        }
        for p in parts {
            r.theirs.insert((table.clone(), p.partition), p.hash);
        }
        Ok(())
    }

    /// The peer's digests are all in: compares them with ours and asks for what differs.
    async fn on_digest_done(&mut self) -> Result<(), String> {
        let r = self
            .repair
            .as_mut()
            .filter(|r| !r.digests_done)
            .ok_or("bad frame: DigestDone without a request")?;
        r.digests_done = true;
        let dbs = self.ctx.node.dbs.clone();
        let ours = glommio::executor()
            .spawn_blocking(move || digest::compute(&dbs))
            .await
            .map_err(|e| format!("digest failed: {e}"))?;
        for ((table, p), hash) in &r.theirs {
            let same = ours
                .get(table)
                .and_then(|t| t.parts.get(p))
                .is_some_and(|h| h == hash);
            if !same {
                r.queue.push_back((table.clone(), *p));
            }
        }
        tracing::info!(
            peer = self.peer.node_id,
            partitions = r.queue.len(),
            "repair: partitions that differ"
        );
        if next_range(self.s, r).await? {
            self.finish_repair().await?;
        }
        Ok(())
    }

    /// Applies a page of a partition that was asked for, and asks for more.
    async fn on_range(
        &mut self,
        table: String,
        partition: u16,
        records: Vec<RepairRecord>,
        more: Option<String>,
    ) -> Result<(), String> {
        let r = self
            .repair
            .as_mut()
            .ok_or("bad frame: Range without a request")?;
        if r.asked.front() != Some(&(table.clone(), partition)) {
            return Err("bad frame: Range that was not asked for".into());
        }
        r.asked.pop_front();
        if let Some(after) = more.clone() {
            // The rest of this partition: asked now, behind what is in flight.
            ask(self.s, r, table.clone(), partition, Some(after)).await?;
        }
        let changes: Vec<Change> = records
            .into_iter()
            .map(|rec| Change {
                table: table.clone(),
                id: rec.id,
                clock: rec.clock,
                node: rec.node,
                op: if rec.tombstone {
                    ChangeOp::Delete
                } else {
                    ChangeOp::Put
                },
                body: if rec.tombstone { Vec::new() } else { rec.body },
            })
            .collect();
        r.applied += super::apply::apply(&self.ctx.node, changes).await? as u64;
        if next_range(self.s, r).await? {
            self.finish_repair().await?;
        }
        Ok(())
    }

    /// Asks for the peer's digests; the repair covers the streams that had a gap so far.
    async fn start_repair(&mut self) -> Result<(), String> {
        self.status(|p| p.inbound.set_state("repairing"));
        send(self.s, &Frame::DigestRequest).await?;
        self.repair = Some(Repair {
            covering: std::mem::take(&mut self.gaps),
            ..Default::default()
        });
        Ok(())
    }

    /// Everything the peer held when the repair started is applied: resume the streams it
    /// covers.
    async fn finish_repair(&mut self) -> Result<(), String> {
        let Some(r) = self.repair.take() else {
            return Ok(());
        };
        let (ctx, peer) = (self.ctx, self.peer);
        for (shard, resume_at) in &r.covering {
            let cursor = Cursor {
                generation: peer.generation,
                next: *resume_at,
            };
            ctx.cursors
                .save(&ctx.node, peer.node_id, *shard, cursor)
                .await?;
            self.cursor[*shard as usize] = *resume_at;
            send(
                self.s,
                &Frame::Subscribe {
                    shard: *shard,
                    from: *resume_at,
                },
            )
            .await?;
        }
        tracing::info!(peer = peer.node_id, applied = r.applied, "repair done");
        self.status(|p| {
            p.repairs += 1;
            p.repaired_records += r.applied;
            p.inbound.set_state("connected");
        });
        if !self.gaps.is_empty() {
            self.start_repair().await?;
        }
        Ok(())
    }
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, f: &Frame) -> Result<(), String> {
    frame::write(s, f).await.map_err(|e| {
        if matches!(e, frame::WriteError::Encode(_)) {
            tracing::error!("closing link: {e}");
        }
        e.to_string()
    })
}

/// Differing partitions asked for at once: each answer is a round trip, so a few in flight
/// keep a slow link busy (the sender accepts `push::MAX_RANGES`).
const RANGES_IN_FLIGHT: usize = 4;

/// Asks for one range and notes it as in flight.
async fn ask<S: AsyncWrite + Unpin>(
    s: &mut S,
    r: &mut Repair,
    table: String,
    partition: u16,
    after: Option<String>,
) -> Result<(), String> {
    r.asked.push_back((table.clone(), partition));
    send(
        s,
        &Frame::RangeRequest {
            table,
            partition,
            after,
        },
    )
    .await
}

/// Keeps up to `RANGES_IN_FLIGHT` ranges asked for; true when nothing is left to ask or await.
async fn next_range<S: AsyncWrite + Unpin>(s: &mut S, r: &mut Repair) -> Result<bool, String> {
    while r.asked.len() < RANGES_IN_FLIGHT {
        let Some((table, partition)) = r.queue.pop_front() else {
            break;
        };
        ask(s, r, table, partition, None).await?;
    }
    Ok(r.asked.is_empty())
}
