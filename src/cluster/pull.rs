//! The receiving side of a link: dials a configured peer (reconnecting with capped exponential
//! backoff), authenticates, subscribes to each of the peer's shards from our durable cursor,
//! applies what arrives (last-writer-wins, on our owner shards), makes the cursor durable after
//! the data and acknowledges. On `Gap` (no cursor yet, or the peer's log was trimmed past it)
//! it runs anti-entropy repair: compares per-partition digests, pulls only the partitions that
//! differ, applies them LWW (so nothing only we hold is ever deleted), then resumes the stream.
//! MQTT messages the peer forwards (`Publish`) go to our shards through `forward.rs`.

use super::cursor::Cursor;
use super::digest;
use super::frame::{self, Frame};
use super::handshake::{self, kind, PeerInfo};
use super::Ctx;
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

async fn session(ctx: &Rc<Ctx>, addr: &str, authenticated: &mut bool) -> Result<(), String> {
    let mut stream = connect(addr).await?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(super::HANDSHAKE_TIMEOUT));
    let peer = handshake::dial(ctx, &mut stream).await?;
    *authenticated = true;
    ctx.knowledge
        .borrow_mut()
        .members
        .insert(addr.to_string(), peer.node_id);
    let _ = stream.set_read_timeout(Some(super::IDLE_TIMEOUT));
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
    let shards = peer.shards as usize;
    let mut cursor = vec![0u64; shards];
    // Per peer shard: (entries, ms) not acknowledged when the peer last sent.
    let mut peer_lag = vec![(0u64, 0u64); shards];
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
    // Per peer shard: whether this link has reached the end of the peer's log once.
    let mut caught_up = vec![false; shards];
    let mut synced = false;
    // Per peer shard: the peer's last `stable_below` (0: none yet).
    let mut stable = vec![0u64; shards];
    let mut gaps: Vec<(u16, u64)> = Vec::new();
    let mut repair: Option<Repair> = None;
    let mut last_repair = Instant::now();
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let f = frame::read(s, ctx.max_frame)
            .await
            .map_err(|e| e.to_string())?;
        ctx.state.dialed(addr, Some(peer.node_id), |p| {
            p.last_contact_ms = now_millis()
        });
        // Now and then compare everything, even with good cursors: the peer streams only its
        // own changes, so this is what brings changes of a node that is gone for good.
        if repair.is_none() && last_repair.elapsed() > super::REPAIR_EVERY {
            last_repair = Instant::now();
            repair = Some(start_repair(ctx, addr, peer, s, &mut gaps).await?);
        }
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
                if i >= shards || upto < cursor[i] {
                    return Err(format!("bad frame: Changes for shard {shard} up to {upto}"));
                }
                let mut changes = Vec::with_capacity(entries.len());
                let mut prev = cursor[i];
                for e in entries {
                    if e.seq < prev || e.seq >= upto || e.change.node != peer.node_id {
                        return Err("bad frame: entry out of order or not made by the peer".into());
                    }
                    prev = e.seq;
                    changes.push(e.change);
                }
                let n = changes.len() as u64;
                let written: Vec<u64> = changes.iter().map(|c| c.clock >> 16).collect();
                super::apply::apply(&ctx.node, changes).await?;
                let now = now_millis();
                // Everything before `upto` is applied now: so is every change the peer made on
                // that shard with a clock below `stable_below`.
                if stable_below > 0 {
                    stable[i] = stable[i].max(stable_below);
                    if stable.iter().all(|c| *c > 0) {
                        let min = stable.iter().copied().min().unwrap_or(0);
                        ctx.knowledge.borrow_mut().learn(peer.node_id, min);
                    }
                }
                if upto > cursor[i] {
                    ctx.cursors
                        .save_soon(
                            &ctx.node,
                            peer.node_id,
                            shard,
                            Cursor {
                                generation: peer.generation,
                                next: upto,
                            },
                        )
                        .await?;
                    cursor[i] = upto;
                }
                send(s, &Frame::Ack { shard, upto }).await?;
                caught_up[i] |= upto >= log_next;
                if !synced && repair.is_none() && caught_up.iter().all(|c| *c) {
                    synced = true;
                    ctx.synced.borrow_mut().insert(addr.to_string());
                    ctx.state
                        .dialed(addr, Some(peer.node_id), |p| p.inbound.caught_up = true);
                }
                // What the peer had beyond what it sent, plus what it had not heard acknowledged.
                peer_lag[i] = (lag_entries.max(log_next.saturating_sub(upto)), lag_ms);
                let entries: u64 = peer_lag.iter().map(|l| l.0).sum();
                let ms = peer_lag.iter().map(|l| l.1).max().unwrap_or(0);
                ctx.state.dialed(addr, Some(peer.node_id), |p| {
                    for ms in &written {
                        p.inbound.apply_lag.record(now.saturating_sub(*ms));
                    }
                    p.inbound.changes += n;
                    p.inbound.lag_entries = entries;
                    p.inbound.lag_ms = ms;
                });
            }
            Frame::Ping => send(s, &Frame::Ping).await?,
            Frame::Publish { messages } => {
                let n =
                    super::forward::receive(&ctx.node, &ctx.mqtt, peer.node_id, messages).await?;
                ctx.state
                    .dialed(addr, Some(peer.node_id), |p| p.publishes.received += n);
            }
            Frame::Interest { reset, changes } => {
                let checked =
                    super::interest::check(changes).map_err(|e| format!("bad frame: {e}"))?;
                let mut pi = ctx.peer_interest.borrow_mut();
                pi.apply(peer.node_id, reset, checked)
                    .map_err(|e| format!("bad frame: {e}"))?;
                let (mine, total) = (pi.count(peer.node_id) as u64, pi.total());
                drop(pi);
                if let Some(i) = &ctx.mqtt.interest {
                    i.peer_filters.store(total, Ordering::Relaxed);
                }
                ctx.state
                    .dialed(addr, Some(peer.node_id), |p| p.publishes.filters = mine);
            }
            Frame::Stable { clocks } => {
                if clocks.len() > 4096 {
                    return Err("bad frame: too many clocks".into());
                }
                let view = clocks.into_iter().map(|c| (c.origin, c.clock)).collect();
                ctx.knowledge.borrow_mut().views.insert(peer.node_id, view);
            }
            Frame::Gap { shard, resume_at } => {
                if shard as usize >= shards {
                    return Err(format!("bad frame: Gap for shard {shard}"));
                }
                tracing::info!(
                    peer = peer.node_id,
                    shard,
                    "no usable cursor or the peer's log was trimmed past it: anti-entropy repair"
                );
                gaps.push((shard, resume_at));
                caught_up[shard as usize] = false;
                if repair.is_none() {
                    repair = Some(start_repair(ctx, addr, peer, s, &mut gaps).await?);
                }
            }
            Frame::Digest { table, parts } => {
                let r = repair
                    .as_mut()
                    .filter(|r| !r.digests_done)
                    .ok_or("bad frame: Digest without a request")?;
                super::apply::check_table_name(&table).map_err(|e| format!("bad frame: {e}"))?;
                if r.theirs.len() + parts.len() > 1024 * ctx.node.partitions as usize {
                    return Err("bad frame: too many digests".into());
                }
                for p in parts {
                    r.theirs.insert((table.clone(), p.partition), p.hash);
                }
            }
            Frame::DigestDone => {
                let r = repair
                    .as_mut()
                    .filter(|r| !r.digests_done)
                    .ok_or("bad frame: DigestDone without a request")?;
                r.digests_done = true;
                let dbs = ctx.node.dbs.clone();
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
                    peer = peer.node_id,
                    partitions = r.queue.len(),
                    "repair: partitions that differ"
                );
                if next_range(s, r).await? {
                    finish_repair(ctx, addr, peer, s, &mut repair, &mut cursor, &mut gaps).await?;
                }
            }
            Frame::Range {
                table,
                partition,
                records,
                more,
            } => {
                let r = repair
                    .as_mut()
                    .ok_or("bad frame: Range without a request")?;
                if r.asked.front() != Some(&(table.clone(), partition)) {
                    return Err("bad frame: Range that was not asked for".into());
                }
                r.asked.pop_front();
                if let Some(after) = more.clone() {
                    // The rest of this partition: asked now, behind what is in flight.
                    ask(s, r, table.clone(), partition, Some(after)).await?;
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
                r.applied += super::apply::apply(&ctx.node, changes).await? as u64;
                if next_range(s, r).await? {
                    finish_repair(ctx, addr, peer, s, &mut repair, &mut cursor, &mut gaps).await?;
                }
            }
            other => return Err(format!("bad frame: unexpected {}", kind(&other))),
        }
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

async fn start_repair<S: AsyncWrite + Unpin>(
    ctx: &Ctx,
    addr: &str,
    peer: &PeerInfo,
    s: &mut S,
    gaps: &mut Vec<(u16, u64)>,
) -> Result<Repair, String> {
    ctx.state.dialed(addr, Some(peer.node_id), |p| {
        p.inbound.set_state("repairing")
    });
    send(s, &Frame::DigestRequest).await?;
    Ok(Repair {
        covering: std::mem::take(gaps),
        ..Default::default()
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

/// Everything the peer held when the repair started is applied: resume the streams it covers.
async fn finish_repair<S: AsyncWrite + Unpin>(
    ctx: &Ctx,
    addr: &str,
    peer: &PeerInfo,
    s: &mut S,
    repair: &mut Option<Repair>,
    cursor: &mut [u64],
    gaps: &mut Vec<(u16, u64)>,
) -> Result<(), String> {
    let Some(r) = repair.take() else {
        return Ok(());
    };
    for (shard, resume_at) in &r.covering {
        ctx.cursors
            .save(
                &ctx.node,
                peer.node_id,
                *shard,
                Cursor {
                    generation: peer.generation,
                    next: *resume_at,
                },
            )
            .await?;
        cursor[*shard as usize] = *resume_at;
        send(
            s,
            &Frame::Subscribe {
                shard: *shard,
                from: *resume_at,
            },
        )
        .await?;
    }
    tracing::info!(peer = peer.node_id, applied = r.applied, "repair done");
    ctx.state.dialed(addr, Some(peer.node_id), |p| {
        p.repairs += 1;
        p.repaired_records += r.applied;
        p.inbound.set_state("connected");
    });
    if !gaps.is_empty() {
        *repair = Some(start_repair(ctx, addr, peer, s, gaps).await?);
    }
    Ok(())
}
