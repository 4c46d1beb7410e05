//! The simulated cluster: N nodes (`node.rs`) joined by links whose two sides are the real
//! replication state machines (`cluster::inbound` at the dialer, `cluster::outbound` at the
//! acceptor), driven here instead of by sockets. Time is simulated (microseconds); every choice
//! comes from the seed. The network delivers each connection's frames in order after a random
//! delay (TCP) or not at all: links are reset at random (a dropped frame ends a connection),
//! partitions cut node pairs, crashes end every link of a node. Frames of different links
//! interleave in any order; a batch not acknowledged before a reset is sent again on the next
//! connection (duplicates), and now and then a frame arrives twice in a row. The links
//! themselves are driven in `world/links.rs`. Clocks are skewed, jump, and now and then one runs far ahead.

mod links;

use crate::check::Violations;
use crate::node::{Committed, Item, Key, Node};
use crate::rng::Rng;
use microlith::cluster::frame::Frame;
use microlith::cluster::inbound::{self, Action, Inbound, Now};
use microlith::cluster::outbound::{self, Outbound, Read};
use microlith::storage::clock::Clock;
use microlith::storage::hlc::Version;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};

/// What one run looks like; everything else follows from the seed.
#[derive(Debug, Clone)]
pub struct Params {
    pub nodes: usize,
    /// Milliseconds of faults and writes, then of quiet (healed, every node up, no writes).
    pub busy_ms: u64,
    pub quiet_ms: u64,
    pub max_frame: usize,
    pub grace_ms: u64,
    pub max_drift_ms: u64,
    pub inbound_faults: inbound::Faults,
    pub outbound_faults: outbound::Faults,
    /// Node 1 pulls as a hostile peer (`inbound::Faults::greedy_ranges`); its links to the
    /// others break at every repair, so the run is judged only by the bounds it must hit.
    pub hostile_puller: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            nodes: 3,
            busy_ms: 8_000,
            quiet_ms: 12_000,
            max_frame: 2048,
            grace_ms: 300,
            max_drift_ms: 2_000,
            inbound_faults: Default::default(),
            outbound_faults: Default::default(),
            hostile_puller: false,
        }
    }
}

const MS: u64 = 1_000;
const TICK: u64 = 10 * MS;
const TABLES: [&str; 3] = ["Product", "Order", "_schema"];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Tick(usize),
    Commit(usize),
    Deliver(u64),
    ReadDone(u64),
    Client,
    Fault,
    Restart(usize),
    Heal,
}

/// A client write the cluster acknowledged.
#[derive(Debug, Clone)]
pub struct Acked {
    pub key: Key,
    pub version: Version,
}

/// One connection: `d` dialed `a` and pulls from it.
struct Conn {
    d: usize,
    a: usize,
    inbound: Inbound,
    outbound: Outbound,
    /// Frames on the wire, with when they arrive; `true`: towards the dialer.
    wire: VecDeque<(u64, bool, Frame)>,
    /// Frames the dialer received and has not handled yet (it handles one at a time).
    inbox: VecDeque<Frame>,
    pending: VecDeque<Action>,
    waiting: Option<u64>,
    reading: Option<Read>,
}

struct SimNode {
    node: Node,
    offset_ms: i64,
    max_wall: u64,
    committing: bool,
    next_dial: Vec<u64>,
}

pub struct World {
    pub p: Params,
    t: u64,
    rng: Rng,
    nodes: Vec<SimNode>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    events: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    cut: HashSet<(usize, usize)>,
    next_ticket: u64,
    pub acked: Vec<Acked>,
    pub v: Violations,
    pub stats: Stats,
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub writes: u64,
    pub frames: u64,
    pub crashes: u64,
    pub resets: u64,
    pub refusals: u64,
    pub purges: u64,
    pub duplicates: u64,
}

impl World {
    pub fn new(seed: u64, p: Params) -> World {
        let mut rng = Rng::new(seed);
        let nodes = (0..p.nodes)
            .map(|i| {
                let offset_ms = rng.range(0, 400) as i64 - 200;
                let shards = rng.range(1, 3) as usize;
                let keep = rng.range(20, 400);
                SimNode {
                    node: Node::new(i as u16 + 1, shards, keep, Clock::manual(0)),
                    offset_ms,
                    max_wall: 0,
                    committing: false,
                    next_dial: vec![0; p.nodes],
                }
            })
            .collect();
        let mut w = World {
            p,
            t: 0,
            rng,
            nodes,
            conns: BTreeMap::new(),
            next_conn: 1,
            events: BinaryHeap::new(),
            seq: 0,
            cut: HashSet::new(),
            next_ticket: 1,
            acked: Vec::new(),
            v: Violations::default(),
            stats: Stats::default(),
        };
        for n in 0..w.nodes.len() {
            let first = w.rng.range(0, TICK);
            w.at(first, Ev::Tick(n));
        }
        w.at(MS, Ev::Client);
        w.at(200 * MS, Ev::Fault);
        w
    }

    fn at(&mut self, delay: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((self.t + delay, self.seq, ev)));
    }

    /// Runs the busy phase, heals everything, runs the quiet phase.
    pub fn run(&mut self) {
        let busy_end = self.p.busy_ms * MS;
        self.run_until(busy_end, true);
        self.heal_all();
        let end = busy_end + self.p.quiet_ms * MS;
        self.run_until(end, false);
    }

    fn run_until(&mut self, end: u64, busy: bool) {
        while let Some(Reverse((t, _, ev))) = self.events.pop() {
            if t > end {
                self.events.push(Reverse((t, 0, ev)));
                self.t = end;
                return;
            }
            self.t = t;
            if !busy && matches!(ev, Ev::Client | Ev::Fault) {
                continue;
            }
            self.handle(ev);
            if !self.v.is_empty() {
                return;
            }
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick(n) => self.tick(n),
            Ev::Commit(n) => self.commit(n),
            Ev::Deliver(c) => self.deliver(c),
            Ev::ReadDone(c) => self.read_done(c),
            Ev::Client => self.client(),
            Ev::Fault => self.fault(),
            Ev::Restart(n) => self.restart(n),
            Ev::Heal => self.cut.clear(),
        }
    }

    /// Sets node `n`'s clock to now and returns the time as its state machines see it.
    fn now(&mut self, n: usize) -> Now {
        let s = &mut self.nodes[n];
        let wall = (self.t / MS) as i64 + 1_700_000_000_000 + s.offset_ms;
        let wall = wall.max(0) as u64;
        s.node.clock.set(wall);
        s.max_wall = s.max_wall.max(wall);
        Now {
            mono_ms: self.t / MS,
            wall_ms: wall,
        }
    }

    fn linked(&self, a: usize, b: usize) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b)))
            && self.nodes[a].node.up()
            && self.nodes[b].node.up()
    }

    // ----- node upkeep -----

    fn tick(&mut self, n: usize) {
        self.at(TICK, Ev::Tick(n));
        if !self.nodes[n].node.up() {
            return;
        }
        let now = self.now(n);
        self.dial(n, now);
        let ids: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.a == n)
            .map(|(i, _)| *i)
            .collect();
        for id in ids {
            self.poll(id, now);
        }
        if self.rng.chance(0.04) {
            self.purge_round(n);
        }
        self.check_drift(n);
    }

    /// Dials every peer this node has no link to (backoff after a failure).
    fn dial(&mut self, d: usize, now: Now) {
        for a in 0..self.nodes.len() {
            let linked = self.conns.values().any(|c| c.d == d && c.a == a);
            if a == d || linked || !self.linked(d, a) || self.nodes[d].next_dial[a] > self.t {
                continue;
            }
            self.nodes[d].next_dial[a] = self.t + self.rng.range(50, 500) * MS;
            self.connect(d, a, now);
        }
    }

    fn connect(&mut self, d: usize, a: usize, now: Now) {
        let (dn, an) = (&self.nodes[d].node, &self.nodes[a].node);
        let settings = inbound::Settings {
            peer: an.id,
            generation: an.durable.generation,
            shards: an.shards() as u16,
            partitions: crate::node::PARTITIONS,
            max_drift_ms: self.p.max_drift_ms,
            repair_every_ms: 600_000,
            faults: inbound::Faults {
                greedy_ranges: self.p.hostile_puller && d == 0,
                ..self.p.inbound_faults
            },
        };
        let cursors = dn.durable.cursors.clone();
        let peer = an.id;
        let mut actions = Vec::new();
        let inbound = Inbound::start(
            settings,
            |s| cursors.get(&(peer, s)).copied(),
            now,
            &mut actions,
        );
        let now_a = self.now(a);
        let outbound = Outbound::new(
            self.nodes[a].node.shards(),
            crate::node::PARTITIONS,
            self.p.max_frame,
            now_a,
        )
        .with_faults(self.p.outbound_faults);
        let addr = format!("n{peer}");
        self.nodes[d]
            .node
            .vol()
            .knowledge
            .members
            .insert(addr, peer);
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                d,
                a,
                inbound,
                outbound,
                wire: VecDeque::new(),
                inbox: VecDeque::new(),
                pending: actions.into(),
                waiting: None,
                reading: None,
            },
        );
        self.drive_inbound(id);
    }

    fn commit(&mut self, n: usize) {
        self.nodes[n].committing = false;
        if !self.nodes[n].node.up() {
            return;
        }
        self.now(n);
        let grace = self.p.grace_ms;
        let Some(done) = self.nodes[n].node.commit_one(grace) else {
            return;
        };
        match done {
            Committed::Local { key, version, .. } => {
                self.stats.writes += 1;
                self.acked.push(Acked { key, version });
            }
            Committed::Ticket(t) => {
                let waiting: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.d == n && c.waiting == Some(t))
                    .map(|(i, _)| *i)
                    .collect();
                for id in waiting {
                    self.conns.get_mut(&id).expect("listed").waiting = None;
                    self.drive_inbound(id);
                }
            }
            Committed::Purged { key, version } => {
                self.stats.purges += 1;
                crate::check::purge_was_safe(self, n, &key, version);
            }
            Committed::Nothing => {}
        }
        self.check_drift(n);
        self.schedule_commit(n);
    }

    fn schedule_commit(&mut self, n: usize) {
        let s = &self.nodes[n];
        if s.committing || s.node.vol.as_ref().is_none_or(|v| v.queue.is_empty()) {
            return;
        }
        self.nodes[n].committing = true;
        let d = self.rng.range(100, 2_000);
        self.at(d, Ev::Commit(n));
    }

    fn enqueue(&mut self, n: usize, item: Item) {
        self.nodes[n].node.enqueue(item);
        self.schedule_commit(n);
    }

    /// Purges what the node's knowledge allows, through its writer.
    fn purge_round(&mut self, n: usize) {
        let me = self.nodes[n].node.id;
        let configured: Vec<String> = (0..self.nodes.len())
            .filter(|i| *i != n)
            .map(|i| format!("n{}", self.nodes[i].node.id))
            .collect();
        let node = &mut self.nodes[n].node;
        let Ok(bound) = node.vol().knowledge.bound(me, &configured) else {
            return;
        };
        for (key, version) in node.purgeable(bound, self.p.grace_ms) {
            self.enqueue(n, Item::Purge { key, version });
        }
    }

    /// A node's clocks may run at most the drift bound ahead of the latest wall time it saw.
    fn check_drift(&mut self, n: usize) {
        let s = &self.nodes[n];
        let Some(vol) = &s.node.vol else {
            return;
        };
        for h in &vol.hlcs {
            let ahead = (h.last() >> 16).saturating_sub(s.max_wall);
            if ahead > self.p.max_drift_ms {
                let msg = format!(
                    "node {}'s clock was dragged {ahead} ms ahead of its wall clock",
                    s.node.id
                );
                self.v.add(msg);
            }
        }
    }

    // ----- clients and faults -----

    fn client(&mut self) {
        let gap = self.rng.range(1, 12) * MS;
        self.at(gap, Ev::Client);
        let n = self.rng.range(0, self.nodes.len() as u64 - 1) as usize;
        if !self.nodes[n].node.up() {
            return;
        }
        self.now(n);
        let table = self.rng.pick(&TABLES).to_string();
        let id = format!("k{}", self.rng.range(0, 24));
        let delete = self.rng.chance(0.3);
        let body = format!("{{\"n\":{}}}", self.rng.next() % 1000).into_bytes();
        self.enqueue(
            n,
            Item::Local {
                table,
                id,
                delete,
                body,
            },
        );
    }

    fn fault(&mut self) {
        let gap = self.rng.range(100, 900) * MS;
        self.at(gap, Ev::Fault);
        let n = self.rng.range(0, self.nodes.len() as u64 - 1) as usize;
        match self.rng.range(0, 9) {
            0..=2 => {
                // A dropped frame: the connection ends.
                if let Some(id) = self.random_conn() {
                    self.reset(id, "dropped frame");
                }
            }
            3 | 4 => self.crash(n),
            5 => {
                let m = (n + 1) % self.nodes.len();
                self.cut.insert((n.min(m), n.max(m)));
                self.cut_links();
                let d = self.rng.range(200, 3_000) * MS;
                self.at(d, Ev::Heal);
            }
            6 | 7 => {
                let jump = self.rng.range(0, 1_000) as i64 - 500;
                self.nodes[n].offset_ms = (self.nodes[n].offset_ms + jump).clamp(-1_500, 1_500);
            }
            _ => {
                // A clock far ahead for a while.
                self.nodes[n].offset_ms = (self.p.max_drift_ms + self.rng.range(500, 3_000)) as i64;
            }
        }
    }

    fn random_conn(&mut self) -> Option<u64> {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        (!ids.is_empty()).then(|| *self.rng.pick(&ids))
    }

    fn cut_links(&mut self) {
        let gone: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| !self.linked(c.d, c.a))
            .map(|(i, _)| *i)
            .collect();
        for id in gone {
            self.reset(id, "partition");
        }
    }

    fn crash(&mut self, n: usize) {
        if !self.nodes[n].node.up() {
            return;
        }
        self.stats.crashes += 1;
        self.nodes[n].node.crash();
        self.cut_links();
        crate::check::cursors_behind_data(self, n);
        let down = self.rng.range(50, 2_000) * MS;
        self.at(down, Ev::Restart(n));
    }

    fn restart(&mut self, n: usize) {
        if self.nodes[n].node.up() {
            return;
        }
        self.now(n);
        self.nodes[n].node.start();
    }

    fn heal_all(&mut self) {
        self.cut.clear();
        for n in 0..self.nodes.len() {
            let o = self.nodes[n].offset_ms;
            self.nodes[n].offset_ms = o.clamp(-200, 200);
            if !self.nodes[n].node.up() {
                self.restart(n);
            }
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().map(|s| &s.node)
    }

    pub fn node(&self, n: usize) -> &Node {
        &self.nodes[n].node
    }
}
