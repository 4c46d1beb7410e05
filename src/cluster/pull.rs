//! The receiving side of a link, its I/O: dials a configured peer (reconnecting with capped
//! exponential backoff), authenticates, then drives the `inbound` state machine: reads the
//! peer's frames, hands them to it and carries out what it says (apply through the owner
//! shards' writers, make cursors durable, send, compute digests, report to `/status`). MQTT
//! messages the peer forwards go to our shards through `forward.rs`.

use super::digest;
use super::frame::{self, Frame, InterestChange};
use super::handshake::{self, PeerInfo};
use super::inbound::{Action, Inbound, Now, Report, Settings};
use super::state::PeerStatus;
use super::Ctx;
use crate::net::Io;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
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
        p.last_contact_ms = ctx.node.clock.now_millis();
        p.inbound.set_state("connected");
        p.inbound.caught_up = false;
        p.inbound.last_error.clear();
    });
    let result = stream_from(ctx, addr, &peer, &mut stream).await;
    // Until it announces them again, its members of shared subscriptions get nothing sent.
    ctx.mqtt.peer_groups.forget(peer.node_id);
    if let Err(e) = &result {
        if e.starts_with("bad frame") {
            ctx.state
                .dialed(addr, Some(peer.node_id), |p| p.inbound.bad_frames += 1);
        }
    }
    result
}

/// Hands the peer's frames to the state machine and carries out its actions, until the node
/// stops or the link fails.
async fn stream_from<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Rc<Ctx>,
    addr: &str,
    peer: &PeerInfo,
    s: &mut S,
) -> Result<(), String> {
    let settings = Settings {
        peer: peer.node_id,
        generation: peer.generation,
        shards: peer.shards,
        partitions: ctx.node.partitions,
        max_drift_ms: ctx.node.config.cluster.max_clock_drift_ms,
        repair_every_ms: super::REPAIR_EVERY.as_millis() as u64,
        faults: Default::default(),
    };
    let mut d = Driver {
        ctx,
        addr,
        peer,
        s,
        started: Instant::now(),
        repaired: 0,
    };
    let mut actions = Vec::new();
    let saved = |shard| ctx.cursors.get(peer.node_id, shard);
    let mut sm = Inbound::start(settings, saved, d.now(), &mut actions);
    d.carry_out(&mut sm, &mut actions).await?;
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let f = frame::read(d.s, ctx.max_frame)
            .await
            .map_err(|e| e.to_string())?;
        let wall = ctx.node.clock.now_millis();
        d.status(|p| p.last_contact_ms = wall);
        sm.on_frame(f, d.now(), &mut actions)?;
        d.carry_out(&mut sm, &mut actions).await?;
    }
}

/// The I/O of one inbound link.
struct Driver<'a, S> {
    ctx: &'a Rc<Ctx>,
    addr: &'a str,
    peer: &'a PeerInfo,
    s: &'a mut S,
    started: Instant,
    /// Records the repair in progress applied (newer than ours).
    repaired: u64,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<'_, S> {
    fn now(&self) -> Now {
        Now {
            mono_ms: self.started.elapsed().as_millis() as u64,
            wall_ms: self.ctx.node.clock.now_millis(),
        }
    }

    /// Updates what `/status` shows of this peer.
    fn status(&self, f: impl FnOnce(&mut PeerStatus)) {
        self.ctx.state.dialed(self.addr, Some(self.peer.node_id), f);
    }

    /// Carries out `actions` in order, each after the one before it finished.
    async fn carry_out(
        &mut self,
        sm: &mut Inbound,
        actions: &mut Vec<Action>,
    ) -> Result<(), String> {
        // The same buffer every frame: only a repair's comparison adds actions (at the end).
        let mut batch = std::mem::take(actions);
        while !batch.is_empty() {
            let mut more = Vec::new();
            for a in batch.drain(..) {
                match a {
                    Action::CompareDigests => {
                        let ours = our_digests(self.ctx).await?;
                        let differ = sm.on_our_digests(&ours, &mut more);
                        tracing::info!(
                            peer = self.peer.node_id,
                            partitions = differ,
                            "repair: partitions that differ"
                        );
                    }
                    other => self.act(other).await?,
                }
            }
            batch.append(&mut more);
        }
        *actions = batch;
        Ok(())
    }

    async fn act(&mut self, a: Action) -> Result<(), String> {
        let (ctx, peer) = (self.ctx, self.peer.node_id);
        match a {
            Action::Send(f) => send(self.s, &f).await?,
            Action::Apply { changes, repair } => {
                let applied = super::apply::apply(&ctx.node, changes).await?;
                if repair {
                    self.repaired += applied as u64;
                }
            }
            Action::SaveCursor {
                shard,
                cursor,
                soon: true,
            } => {
                ctx.cursors
                    .save_soon(&ctx.node, peer, shard, cursor)
                    .await?
            }
            Action::SaveCursor {
                shard,
                cursor,
                soon: false,
            } => ctx.cursors.save(&ctx.node, peer, shard, cursor).await?,
            Action::Deliver(messages) => {
                let n = super::forward::receive(&ctx.node, &ctx.mqtt, peer, messages).await?;
                self.status(|p| p.publishes.received += n);
            }
            Action::Interest { reset, changes } => self.on_interest(reset, changes)?,
            Action::Learn(clock) => ctx.knowledge.borrow_mut().learn(peer, clock),
            Action::PeerView(view) => {
                ctx.knowledge.borrow_mut().views.insert(peer, view);
            }
            Action::CompareDigests => unreachable!("carried out by carry_out"),
            Action::Report(r) => self.report(r),
        }
        Ok(())
    }

    /// Shows on `/status` (and in the log) what the state machine reports.
    fn report(&mut self, r: Report) {
        let peer = self.peer.node_id;
        match r {
            Report::Applied {
                written,
                lag_entries,
                lag_ms,
            } => {
                let now = self.ctx.node.clock.now_millis();
                self.status(|p| {
                    for ms in &written {
                        p.inbound.apply_lag.record(now.saturating_sub(*ms));
                    }
                    p.inbound.changes += written.len() as u64;
                    p.inbound.lag_entries = lag_entries;
                    p.inbound.lag_ms = lag_ms;
                });
            }
            Report::CaughtUp => {
                self.ctx.synced.borrow_mut().insert(self.addr.to_string());
                self.status(|p| p.inbound.caught_up = true);
            }
            Report::Repairing => {
                tracing::info!(peer, "anti-entropy repair: comparing digests");
                self.status(|p| p.inbound.set_state("repairing"));
            }
            Report::Repaired => {
                let applied = std::mem::take(&mut self.repaired);
                tracing::info!(peer, applied, "repair done");
                self.status(|p| {
                    p.repairs += 1;
                    p.repaired_records += applied;
                    p.inbound.set_state("connected");
                });
            }
        }
    }

    fn on_interest(&self, reset: bool, changes: Vec<InterestChange>) -> Result<(), String> {
        let checked = super::interest::check(changes).map_err(|e| format!("bad frame: {e}"))?;
        // Its shared subscriptions, for the shards picking who serves each message.
        let groups = &self.ctx.mqtt.peer_groups;
        if reset {
            groups.forget(self.peer.node_id);
        }
        for (filter, add) in &checked {
            if crate::mqtt::topic::is_shared(filter) {
                groups.set(self.peer.node_id, filter, *add);
            }
        }
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
}

/// This node's digests, computed off the executor.
async fn our_digests(
    ctx: &Ctx,
) -> Result<std::collections::BTreeMap<String, digest::TableDigest>, String> {
    let dbs = ctx.node.dbs.clone();
    glommio::executor()
        .spawn_blocking(move || digest::compute(&dbs))
        .await
        .map_err(|e| format!("digest failed: {e}"))
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, f: &Frame) -> Result<(), String> {
    frame::write(s, f).await.map_err(|e| {
        if matches!(e, frame::WriteError::Encode(_)) {
            tracing::error!("closing link: {e}");
        }
        e.to_string()
    })
}
