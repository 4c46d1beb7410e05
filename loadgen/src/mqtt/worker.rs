//! One MQTT worker thread: owns a share of the publishers and subscribers, sets up their
//! sessions, paces publications (open loop at intended times, or closed loop bounded by
//! the QoS and end-to-end delivery windows), drains deliveries after the end, clears
//! retained messages, and hands back what its clients observed.

use super::client::{Client, Phase, Role, Sink};
use super::codec;
use super::plan::{Plan, Shared};
use super::tracker::PubReceipts;
use crate::clock::now_ns;
use crate::net::{Poller, HANGUP, READABLE, WRITABLE};
use crate::pace::Pacer;
use crate::progress::Pending;
use crate::stats::new_histogram;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub struct PubOut {
    pub index: usize,
    pub sent_per_topic: Vec<u64>,
    pub published_measured: u64,
    pub acked: u64,
}

pub struct SubOut {
    pub index: usize,
    pub receipts: Vec<PubReceipts>,
    pub delivered_measured: u64,
    pub stale: u64,
}

pub struct WorkerOut {
    pub latency: Histogram<u64>,
    pub ack_latency: [Histogram<u64>; 3],
    pub publishers: Vec<PubOut>,
    pub subscribers: Vec<SubOut>,
    pub errors: BTreeMap<String, u64>,
    /// When this worker's publishers stopped (0 if it has none).
    pub stop_ns: u64,
}

const RETRY_NS: u64 = 100_000_000;
const TICK_NS: u64 = 10_000_000;
const BATCH: usize = 64;
const MAX_UNSENT: usize = 256 * 1024;

struct Worker {
    index: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    poller: Poller,
    clients: Vec<Client>,
    latency: Histogram<u64>,
    ack_latency: [Histogram<u64>; 3],
    pending: Pending,
    errors: BTreeMap<String, u64>,
    measure_from: u64,
    measure_to: u64,
    start: u64,
    running: bool,
}

pub fn run(
    index: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    pubs: Vec<usize>,
    subs: Vec<usize>,
) -> std::io::Result<WorkerOut> {
    let mut clients: Vec<Client> = subs.iter().map(|s| Client::subscriber(*s, &plan)).collect();
    clients.extend(pubs.iter().map(|p| Client::publisher(*p, &plan)));
    let mut w = Worker {
        index,
        poller: Poller::new(clients.len() * 2 + 16)?,
        clients,
        latency: new_histogram(),
        ack_latency: [new_histogram(), new_histogram(), new_histogram()],
        pending: Pending::default(),
        errors: BTreeMap::new(),
        measure_from: 0,
        measure_to: u64::MAX,
        start: 0,
        running: false,
        plan,
        shared,
    };
    let now = now_ns();
    for i in 0..w.clients.len() {
        w.connect(i, now);
    }
    // Sessions up (and subscribed) before anyone publishes.
    let mut counted = vec![false; w.clients.len()];
    let start = loop {
        if w.shared.abort.load(Ordering::Relaxed) {
            return Ok(w.finish(0));
        }
        for (i, c) in w.clients.iter().enumerate() {
            if c.phase == Phase::Ready && !counted[i] {
                counted[i] = true;
                w.shared.ready.fetch_add(1, Ordering::AcqRel);
            }
        }
        let start = w.shared.start_ns.load(Ordering::Acquire);
        if start != 0 {
            break start;
        }
        w.poll(1_000_000)?;
        w.housekeeping(now_ns());
    };
    while now_ns() < start {
        w.poll(start.saturating_sub(now_ns()))?;
    }
    w.start = start;
    w.measure_from = start + w.plan.warmup_ns;
    w.measure_to = w.measure_from + w.plan.duration_ns;
    w.running = true;
    for c in &mut w.clients {
        if let Role::Pub(p) = &mut c.role {
            let pp = &w.plan.publishers[p.index];
            p.next_intended = start + pp.offset_ns as u64;
            p.last_progress_ns = start;
        }
    }
    let has_pubs = !pubs.is_empty();
    let mut stop_ns = 0u64;
    let mut last_tick = 0;
    let mut pacer = Pacer::new(w.plan.busy_poll);
    loop {
        let now = now_ns();
        if w.running {
            w.publish_due(now);
            if w.clients
                .iter()
                .all(|c| !matches!(&c.role, Role::Pub(p) if !p.done))
            {
                w.running = false;
                stop_ns = if has_pubs { now.min(w.measure_to) } else { 0 };
                if w.shared.done_publishing.fetch_add(1, Ordering::AcqRel) + 1 == w.shared.workers {
                    w.shared.all_stopped_ns.store(now, Ordering::Release);
                }
            }
        } else if w.drained(now) {
            break;
        }
        let (until_send, idle) = if w.running {
            w.next_wake(now)
        } else {
            (None, TICK_NS)
        };
        let wait = pacer.timeout(now, until_send, idle);
        let events = w.poll(wait)?;
        pacer.woke(now_ns(), events > 0);
        let now = now_ns();
        if now >= last_tick + TICK_NS {
            last_tick = now;
            w.housekeeping(now);
            w.shared.progress.flush(w.index, &mut w.pending, now, false);
        }
    }
    w.teardown();
    w.shared
        .progress
        .flush(w.index, &mut w.pending, now_ns(), true);
    Ok(w.finish(stop_ns))
}

impl Worker {
    fn sink<'a>(
        plan: &'a Plan,
        shared: &'a Shared,
        latency: &'a mut Histogram<u64>,
        ack_latency: &'a mut [Histogram<u64>; 3],
        pending: &'a mut Pending,
        errors: &'a mut BTreeMap<String, u64>,
        measure: (u64, u64),
    ) -> Sink<'a> {
        Sink {
            plan,
            shared,
            latency,
            ack_latency,
            pending,
            errors,
            measure_from: measure.0,
            measure_to: measure.1,
        }
    }

    fn connect(&mut self, i: usize, now: u64) {
        if self.clients[i]
            .start_connect(i, &self.plan, &self.poller, now)
            .is_err()
        {
            self.down(i, now, "connect");
        }
    }

    fn down(&mut self, i: usize, now: u64, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
        self.pending.errors += 1;
        self.clients[i].close(&self.poller, now + RETRY_NS);
    }

    fn poll(&mut self, wait_ns: u64) -> std::io::Result<usize> {
        let n = self.poller.wait(Some(wait_ns))?;
        for e in 0..n {
            let (token, flags) = self.poller.event(e);
            let i = (token & 0xffff_ffff) as usize;
            if i < self.clients.len() && self.clients[i].generation == (token >> 32) as u32 {
                self.on_event(i, flags);
            }
        }
        Ok(n)
    }

    fn on_event(&mut self, i: usize, flags: u32) {
        let now = now_ns();
        if let Phase::Connecting { .. } = self.clients[i].phase {
            if flags & (WRITABLE | HANGUP) == 0 {
                return;
            }
            if self.clients[i].on_connected(&self.plan, now).is_err() {
                self.down(i, now, "connect");
                return;
            }
        }
        if matches!(self.clients[i].phase, Phase::Down { .. }) {
            return;
        }
        if flags & (READABLE | HANGUP) != 0 {
            if self.clients[i].wire.fill(flags & HANGUP != 0).is_err() {
                self.lost(i, now, "connection reset".into());
                return;
            }
            let measure = (self.measure_from, self.measure_to);
            let mut sink = Self::sink(
                &self.plan,
                &self.shared,
                &mut self.latency,
                &mut self.ack_latency,
                &mut self.pending,
                &mut self.errors,
                measure,
            );
            if let Err(msg) = self.clients[i].process(&mut sink, now) {
                self.lost(i, now, msg);
                return;
            }
            if self.clients[i].wire.eof {
                self.lost(i, now, "broker closed the connection".into());
                return;
            }
        }
        if self.clients[i].wire.has_unsent() && self.clients[i].wire.flush().is_err() {
            self.lost(i, now, "write failed".into());
        }
    }

    /// A session ended unexpectedly: fatal during setup, counted (and reconnected) later.
    fn lost(&mut self, i: usize, now: u64, why: String) {
        if !self.running && self.shared.start_ns.load(Ordering::Acquire) == 0 {
            self.shared
                .fail(format!("client {}: {why}", self.clients[i].client_id));
        }
        if let Role::Pub(p) = &mut self.clients[i].role {
            p.outstanding.clear();
        }
        self.down(i, now, "disconnected");
    }

    fn publish_due(&mut self, now: u64) {
        let measure = (self.measure_from, self.measure_to);
        for i in 0..self.clients.len() {
            let c = &mut self.clients[i];
            let Role::Pub(p) = &c.role else { continue };
            if p.done || c.phase != Phase::Ready {
                continue;
            }
            let pp = &self.plan.publishers[p.index];
            let mut sink = Self::sink(
                &self.plan,
                &self.shared,
                &mut self.latency,
                &mut self.ack_latency,
                &mut self.pending,
                &mut self.errors,
                measure,
            );
            let mut sent = 0;
            while let Role::Pub(p) = &mut c.role {
                let quota_hit = pp.quota.is_some_and(|q| p.published_measured >= q);
                let t = now_ns();
                let intended = match pp.interval_ns {
                    Some(_) => p.next_intended,
                    None => t,
                };
                if quota_hit || intended >= measure.1 || now >= measure.1 {
                    if let (Some(iv), false) = (pp.interval_ns, quota_hit) {
                        while p.next_intended < measure.1 {
                            if p.next_intended >= measure.0 {
                                sink.error("unsent_rate_not_reached");
                            }
                            p.k += 1;
                            p.next_intended = self.start + (pp.offset_ns + p.k as f64 * iv) as u64;
                        }
                    }
                    p.done = true;
                    break;
                }
                if intended > t || sent >= BATCH || c.wire.unsent() > MAX_UNSENT {
                    break;
                }
                if !c.can_publish(&sink, pp.interval_ns.is_none()) {
                    break;
                }
                c.publish(&mut sink, intended, t);
                sent += 1;
                if let (Role::Pub(p), Some(iv)) = (&mut c.role, pp.interval_ns) {
                    p.k += 1;
                    p.next_intended = self.start + (pp.offset_ns + p.k as f64 * iv) as u64;
                }
            }
            if c.wire.has_unsent() && c.wire.flush().is_err() {
                self.lost(i, now, "write failed".into());
            }
        }
    }

    /// How long to sleep: until the next intended send, at most one tick.
    /// Time until the next intended send (open loop), and how long to sleep at most
    /// otherwise.
    fn next_wake(&self, now: u64) -> (Option<u64>, u64) {
        let mut until_send: Option<u64> = None;
        let mut idle = TICK_NS;
        for c in &self.clients {
            if let Role::Pub(p) = &c.role {
                if p.done || c.phase != Phase::Ready {
                    continue;
                }
                match self.plan.publishers[p.index].interval_ns {
                    Some(_) => {
                        let left = p.next_intended.saturating_sub(now);
                        until_send = Some(until_send.map_or(left, |u| u.min(left)));
                    }
                    // Closed loop: acks wake us, but deliveries seen by other threads
                    // do not: look again soon when the delivery window is what blocks.
                    None => idle = idle.min(50_000),
                }
            }
        }
        (until_send, idle)
    }

    /// Publishing is over everywhere and either every owed delivery arrived and every
    /// QoS handshake finished, or the drain time ran out.
    fn drained(&self, now: u64) -> bool {
        let deadline = self.shared.all_stopped_ns.load(Ordering::Acquire);
        if deadline == 0 {
            return now > self.measure_to + self.plan.drain_ns + self.plan.timeout_ns;
        }
        if now > deadline + self.plan.drain_ns {
            return true;
        }
        let delivered = self
            .shared
            .expected
            .iter()
            .zip(&self.shared.delivered)
            .all(|(e, d)| d.load(Ordering::Relaxed) >= e.load(Ordering::Relaxed));
        let acked = self
            .clients
            .iter()
            .all(|c| !matches!(&c.role, Role::Pub(p) if !p.outstanding.is_empty()));
        delivered && acked
    }

    /// Ack timeouts, keep-alive pings, setup timeouts, reconnects, stalled windows.
    fn housekeeping(&mut self, now: u64) {
        let timeout = self.plan.timeout_ns;
        for i in 0..self.clients.len() {
            let c = &mut self.clients[i];
            match c.phase {
                Phase::Connecting { since }
                | Phase::AwaitConnAck { since }
                | Phase::AwaitSubAck { since } => {
                    if now.saturating_sub(since) > self.plan.connect_timeout_ns {
                        self.down(i, now, "connect_timeout");
                    }
                }
                Phase::Down { retry_at } => {
                    if now >= retry_at
                        && (self.running || self.shared.start_ns.load(Ordering::Relaxed) == 0)
                    {
                        self.connect(i, now);
                    }
                }
                Phase::Ready => {
                    if now.saturating_sub(c.last_write_ns)
                        > self.plan.keepalive as u64 * 500_000_000
                        && self.plan.keepalive > 0
                    {
                        codec::pingreq(&mut c.wire.wbuf);
                        c.last_write_ns = now;
                        let _ = c.wire.flush();
                    }
                    if let Role::Pub(p) = &mut c.role {
                        let before = p.outstanding.len();
                        p.outstanding
                            .retain(|_, o| now.saturating_sub(o.sent_ns) <= timeout);
                        let expired = (before - p.outstanding.len()) as u64;
                        if expired > 0 {
                            *self.errors.entry("ack_timeout".into()).or_default() += expired;
                            self.pending.errors += expired;
                        }
                        // Closed loop: a delivery window with no progress for a timeout is
                        // written off (those messages are lost) so publishing goes on.
                        let d = self.shared.delivered[p.index].load(Ordering::Relaxed);
                        if d != p.last_delivered {
                            p.last_delivered = d;
                            p.last_progress_ns = now;
                        } else if self.running && now.saturating_sub(p.last_progress_ns) > timeout {
                            let owed = p.owed.saturating_sub(d + p.written_off);
                            if owed > 0 && self.plan.publishers[p.index].interval_ns.is_none() {
                                p.written_off += owed;
                                *self
                                    .errors
                                    .entry("delivery_window_timeout".into())
                                    .or_default() += 1;
                                self.pending.errors += 1;
                            }
                            p.last_progress_ns = now;
                        }
                    }
                }
            }
        }
    }

    /// Clears retained messages (empty retained publish per topic) and disconnects.
    fn teardown(&mut self) {
        for c in &mut self.clients {
            if c.phase != Phase::Ready {
                continue;
            }
            if let (Role::Pub(p), true) = (&c.role, self.plan.retain) {
                for topic in &self.plan.publishers[p.index].topics {
                    codec::publish(&mut c.wire.wbuf, self.plan.version, topic, 0, true, 0, &[]);
                }
            }
            codec::disconnect(&mut c.wire.wbuf);
            let _ = c.wire.flush();
        }
        // Give the broker a moment to take the last bytes before the sockets close.
        let deadline = now_ns() + 200_000_000;
        while self.clients.iter().any(|c| c.wire.has_unsent()) && now_ns() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
            for c in &mut self.clients {
                let _ = c.wire.flush();
            }
        }
        for i in 0..self.clients.len() {
            self.clients[i].close(&self.poller, 0);
        }
    }

    fn finish(self, stop_ns: u64) -> WorkerOut {
        let mut out = WorkerOut {
            latency: self.latency,
            ack_latency: self.ack_latency,
            publishers: Vec::new(),
            subscribers: Vec::new(),
            errors: self.errors,
            stop_ns,
        };
        for c in self.clients {
            match c.role {
                Role::Pub(p) => out.publishers.push(PubOut {
                    index: p.index,
                    sent_per_topic: p.sent_per_topic,
                    published_measured: p.published_measured,
                    acked: p.acked,
                }),
                Role::Sub(s) => out.subscribers.push(SubOut {
                    index: s.index,
                    receipts: s.receipts,
                    delivered_measured: s.delivered_measured,
                    stale: s.stale,
                }),
            }
        }
        out
    }
}
