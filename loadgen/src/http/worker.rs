//! One HTTP worker thread: connects its share of the connections, then paces requests
//! (open loop: fixed intended send times, latency measured from them; closed loop: a new
//! request as soon as a connection slot frees, or one think time after its answer when the
//! connections are virtual users), frames responses, enforces timeouts, reconnects, and
//! counts every request exactly once.

use super::conn::{Conn, InFlight, State};
use super::request::RequestGen;
use super::response::Parsed;
use crate::clock::now_ns;
use crate::net::{Poller, HANGUP, READABLE, WRITABLE};
use crate::pace::Pacer;
use crate::progress::{Pending, Progress};
use crate::stats::{new_histogram, Counts};
use hdrhistogram::Histogram;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Where a worker's requests come from.
pub enum Source {
    /// The configured workload, unbounded.
    Workload(RequestGen),
    /// The load phase: one PUT per key in `next..end`.
    Load {
        gen: RequestGen,
        next: u64,
        end: u64,
    },
}

impl Source {
    fn write_next(&mut self, out: &mut Vec<u8>) -> bool {
        match self {
            Source::Workload(g) => {
                g.next(out);
                true
            }
            Source::Load { gen, next, end } => {
                if *next >= *end {
                    return false;
                }
                gen.write(super::request::Op::Put, *next, out);
                *next += 1;
                true
            }
        }
    }
}

pub struct WorkerCfg {
    pub index: usize,
    pub addr: SocketAddr,
    pub conns: usize,
    pub depth: usize,
    /// Open loop: nanoseconds between this worker's intended sends.
    pub interval_ns: Option<f64>,
    /// Open loop: this worker's phase shift, so workers interleave.
    pub offset_ns: f64,
    /// Measured requests after which this worker stops.
    pub quota: Option<u64>,
    pub warmup_ns: u64,
    /// None = run until the source is exhausted (load phase).
    pub duration_ns: Option<u64>,
    pub timeout_ns: u64,
    pub connect_timeout_ns: u64,
    /// Never sleep in the poller (lowest latency floor, burns the core).
    pub busy_poll: bool,
    /// Closed loop with virtual users: a connection's next request waits this long after the
    /// answer to its last one (0: at once).
    pub think_ns: u64,
}

/// Cross-thread coordination: workers count themselves ready, the runner sets the start.
pub struct Shared {
    pub ready: AtomicUsize,
    pub start_ns: AtomicU64,
    pub abort: AtomicBool,
    pub progress: Arc<Progress>,
}

pub struct WorkerOut {
    pub counts: Counts,
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    /// When this worker stopped issuing measured requests.
    pub stop_ns: u64,
}

const RETRY_NS: u64 = 50_000_000;
const TICK_NS: u64 = 10_000_000;

struct Worker {
    cfg: WorkerCfg,
    poller: Poller,
    conns: Vec<Conn>,
    slots: VecDeque<u32>,
    /// Virtual users thinking: (when the connection's slot frees, connection), earliest first.
    thinking: BinaryHeap<Reverse<(u64, u32)>>,
    out: WorkerOut,
    pending: Pending,
    measure_from: u64,
    measure_to: u64,
    stopping: bool,
}

pub fn run(cfg: WorkerCfg, mut source: Source, shared: Arc<Shared>) -> std::io::Result<WorkerOut> {
    let poller = Poller::new(cfg.conns * 2 + 16)?;
    let conns = (0..cfg.conns).map(|_| Conn::new()).collect();
    let mut w = Worker {
        poller,
        conns,
        slots: VecDeque::with_capacity(cfg.conns * cfg.depth),
        thinking: BinaryHeap::with_capacity(cfg.conns * cfg.depth),
        out: WorkerOut {
            counts: Counts::default(),
            latency: new_histogram(),
            service: new_histogram(),
            stop_ns: 0,
        },
        pending: Pending::default(),
        measure_from: 0,
        measure_to: u64::MAX,
        stopping: false,
        cfg,
    };
    // Connect everything, then report ready once each connection opened or failed once.
    let now = now_ns();
    for i in 0..w.conns.len() {
        w.connect(i, now);
    }
    let mut ready_sent = false;
    let start = loop {
        let start = shared.start_ns.load(Ordering::Acquire);
        if shared.abort.load(Ordering::Relaxed) {
            return Ok(w.out);
        }
        if !ready_sent
            && w.conns
                .iter()
                .all(|c| !matches!(c.state, State::Connecting { .. }))
        {
            shared.ready.fetch_add(1, Ordering::AcqRel);
            ready_sent = true;
        }
        if start != 0 && ready_sent {
            break start;
        }
        w.poll_once(1_000_000)?;
        w.housekeeping(now_ns());
    };
    // Everyone begins at the same instant.
    while now_ns() < start {
        w.poll_once(start.saturating_sub(now_ns()))?;
    }
    w.measure_from = start + w.cfg.warmup_ns;
    w.measure_to = w.cfg.duration_ns.map_or(u64::MAX, |d| w.measure_from + d);
    let mut k: u64 = 0;
    let mut next_intended = start + w.cfg.offset_ns as u64;
    let mut last_tick = 0u64;
    let mut drain_deadline = u64::MAX;
    let mut pacer = Pacer::new(w.cfg.busy_poll);
    loop {
        let now = now_ns();
        if !w.stopping {
            let quota_hit = w.cfg.quota.is_some_and(|q| w.out.counts.requests >= q);
            if now >= w.measure_to || quota_hit || shared.abort.load(Ordering::Relaxed) {
                w.stop(now.min(w.measure_to));
                if let (Some(iv), false) = (w.cfg.interval_ns, quota_hit) {
                    // Intended sends inside the window that never went out.
                    while next_intended < w.measure_to {
                        if next_intended >= w.measure_from {
                            w.out.counts.unsent += 1;
                        }
                        k += 1;
                        next_intended = start + (w.cfg.offset_ns + k as f64 * iv) as u64;
                    }
                }
                drain_deadline = now + w.cfg.timeout_ns;
            }
        }
        if !w.stopping {
            w.wake_thinkers(now_ns());
            // Dispatch every due request that has a free slot.
            // Each request is stamped just before it is written (a connection's
            // consecutive requests go out in one write).
            let mut unflushed: Option<u32> = None;
            while let Some(&ci) = w.slots.front() {
                let t = now_ns();
                let intended = match w.cfg.interval_ns {
                    Some(_) if next_intended > t => break,
                    Some(_) => next_intended,
                    None => t,
                };
                w.slots.pop_front();
                let c = &mut w.conns[ci as usize];
                if c.state != State::Open || c.inflight.len() >= w.cfg.depth || c.closing {
                    continue;
                }
                if !source.write_next(&mut c.wire.wbuf) {
                    w.slots.push_front(ci);
                    w.stop(now);
                    drain_deadline = now + w.cfg.timeout_ns;
                    break;
                }
                let measured = intended >= w.measure_from && intended < w.measure_to;
                c.inflight.push_back(InFlight {
                    intended,
                    sent: t,
                    measured,
                });
                if measured {
                    w.out.counts.requests += 1;
                }
                if let Some(prev) = unflushed.replace(ci).filter(|p| *p != ci) {
                    w.flush(prev as usize);
                }
                if let Some(iv) = w.cfg.interval_ns {
                    k += 1;
                    next_intended = start + (w.cfg.offset_ns + k as f64 * iv) as u64;
                }
                if w.cfg.quota.is_some_and(|q| w.out.counts.requests >= q) {
                    break;
                }
            }
            if let Some(last) = unflushed {
                w.flush(last as usize);
            }
        } else if w.conns.iter().all(|c| c.inflight.is_empty()) || now >= drain_deadline {
            for i in 0..w.conns.len() {
                let n = w.conns[i].inflight.drain(..).filter(|f| f.measured).count() as u64;
                w.out.counts.timeout += n;
                w.pending.errors += n;
            }
            break;
        }
        // Open loop with a free slot: sleep until just before the next intended send.
        let until_send = match (w.cfg.interval_ns, w.stopping, w.slots.is_empty()) {
            (Some(_), false, false) => Some(next_intended.saturating_sub(now)),
            _ => w.next_thinker_ns(now),
        };
        let wait = pacer.timeout(now, until_send, TICK_NS);
        let events = w.poll_once(wait)?;
        pacer.woke(now_ns(), events > 0);
        let now = now_ns();
        if now >= last_tick + TICK_NS {
            last_tick = now;
            w.housekeeping(now);
            shared
                .progress
                .flush(w.cfg.index, &mut w.pending, now, false);
        }
    }
    shared
        .progress
        .flush(w.cfg.index, &mut w.pending, now_ns(), true);
    for i in 0..w.conns.len() {
        w.conns[i].close(&w.poller, 0);
    }
    Ok(w.out)
}

impl Worker {
    /// Makes a request slot of connection `i` free at `at` (now, or after a think time).
    fn free_slot_at(&mut self, i: usize, at: u64) {
        match self.cfg.think_ns {
            0 => self.slots.push_back(i as u32),
            _ => self.thinking.push(Reverse((at, i as u32))),
        }
    }

    /// Frees the slots of the virtual users whose think time is over.
    fn wake_thinkers(&mut self, now: u64) {
        while let Some(&Reverse((at, i))) = self.thinking.peek() {
            if at > now {
                break;
            }
            self.thinking.pop();
            self.slots.push_back(i);
        }
    }

    /// Time until the next virtual user is done thinking, if one is.
    fn next_thinker_ns(&self, now: u64) -> Option<u64> {
        let Reverse((at, _)) = self.thinking.peek()?;
        Some(at.saturating_sub(now))
    }

    fn stop(&mut self, at: u64) {
        self.stopping = true;
        self.out.stop_ns = at;
    }

    fn connect(&mut self, i: usize, now: u64) {
        let addr = self.cfg.addr;
        if self.conns[i]
            .start_connect(i, &addr, &self.poller, now)
            .is_err()
        {
            self.connect_failed(i, now);
        }
    }

    fn connect_failed(&mut self, i: usize, now: u64) {
        self.out.counts.connect += 1;
        self.pending.errors += 1;
        self.conns[i].close(&self.poller, now + RETRY_NS);
    }

    fn poll_once(&mut self, wait_ns: u64) -> std::io::Result<usize> {
        let n = self.poller.wait(Some(wait_ns))?;
        for e in 0..n {
            let (token, flags) = self.poller.event(e);
            let i = (token & 0xffff_ffff) as usize;
            if i >= self.conns.len() || self.conns[i].generation != (token >> 32) as u32 {
                continue;
            }
            self.on_event(i, flags);
        }
        Ok(n)
    }

    fn on_event(&mut self, i: usize, flags: u32) {
        let now = now_ns();
        if let State::Connecting { .. } = self.conns[i].state {
            if flags & (WRITABLE | HANGUP) == 0 {
                return;
            }
            if self.conns[i].finish_connect().is_err() {
                self.connect_failed(i, now);
                return;
            }
            // Virtual users start spread over one think time.
            let first = now + self.cfg.think_ns * i as u64 / self.conns.len().max(1) as u64;
            for _ in 0..self.cfg.depth {
                self.free_slot_at(i, first);
            }
        }
        if self.conns[i].state != State::Open {
            return;
        }
        if flags & WRITABLE != 0 && self.conns[i].wire.has_unsent() {
            self.flush(i);
        }
        if flags & (READABLE | HANGUP) != 0 {
            self.read(i, flags & HANGUP != 0);
        }
    }

    fn flush(&mut self, i: usize) {
        if self.conns[i].wire.flush().is_err() {
            self.fail(i, FailKind::Io);
        }
    }

    fn read(&mut self, i: usize, hup: bool) {
        if self.conns[i].wire.fill(hup).is_err() {
            self.fail(i, FailKind::Io);
            return;
        }
        loop {
            match self.conns[i].next_response() {
                Parsed::Done { status, .. } => {
                    let now = now_ns();
                    let Some(f) = self.conns[i].inflight.pop_front() else {
                        self.fail(i, FailKind::Parse);
                        return;
                    };
                    self.record(f, status, now);
                    if !self.conns[i].closing && !self.stopping {
                        self.free_slot_at(i, now + self.cfg.think_ns);
                    }
                }
                Parsed::Partial | Parsed::Interim { .. } => break,
                Parsed::Error(_) => {
                    self.fail(i, FailKind::Parse);
                    return;
                }
            }
        }
        let c = &self.conns[i];
        if c.wire.eof || (c.closing && c.inflight.is_empty()) {
            self.fail(i, FailKind::Io);
        }
    }

    fn record(&mut self, f: InFlight, status: u16, now: u64) {
        self.pending.done += 1;
        let lat = now.saturating_sub(f.intended).max(1);
        if f.measured {
            let c = &mut self.out.counts;
            c.responses += 1;
            if (200..400).contains(&status) {
                c.ok += 1;
            } else {
                *c.status.entry(status).or_default() += 1;
                self.pending.errors += 1;
            }
            self.out.latency.saturating_record(lat);
            self.out
                .service
                .saturating_record(now.saturating_sub(f.sent).max(1));
        }
        self.pending.hist.saturating_record(lat);
    }

    /// Closes connection `i`; its requests in flight count as `kind` errors (the first
    /// one) and I/O errors (the rest, lost with the connection); reconnects.
    fn fail(&mut self, i: usize, kind: FailKind) {
        let now = now_ns();
        let mut first = true;
        while let Some(f) = self.conns[i].inflight.pop_front() {
            if f.measured {
                let c = &mut self.out.counts;
                match (first, kind) {
                    (true, FailKind::Parse) => c.parse += 1,
                    _ => c.io += 1,
                }
                self.pending.errors += 1;
            }
            first = false;
        }
        self.conns[i].close(&self.poller, now);
        if !self.stopping {
            self.connect(i, now);
        }
    }

    /// Timeouts of requests and connects; due reconnects.
    fn housekeeping(&mut self, now: u64) {
        for i in 0..self.conns.len() {
            match self.conns[i].state {
                State::Open => {
                    if let Some(f) = self.conns[i].inflight.front() {
                        if now.saturating_sub(f.sent) > self.cfg.timeout_ns {
                            let n = self.conns[i].inflight.len();
                            // Every request queued on a timed-out connection timed out.
                            for _ in 0..n {
                                let f = self.conns[i].inflight.pop_front().unwrap();
                                if f.measured {
                                    self.out.counts.timeout += 1;
                                    self.pending.errors += 1;
                                }
                            }
                            self.conns[i].close(&self.poller, now);
                            if !self.stopping {
                                self.connect(i, now);
                            }
                        }
                    }
                }
                State::Connecting { since } => {
                    if now.saturating_sub(since) > self.cfg.connect_timeout_ns {
                        self.connect_failed(i, now);
                    }
                }
                State::Down { retry_at } => {
                    if !self.stopping && now >= retry_at {
                        self.connect(i, now);
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum FailKind {
    Io,
    Parse,
}
