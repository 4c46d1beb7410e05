//! The links of the simulated cluster: the acceptor side polled for what it sends, frames
//! put on the wire and delivered in order, reads the sending side asked for, and the dialer
//! side carrying out its state machine's actions one after another (applies and durable
//! cursors wait for the node's writer).

use super::{Ev, World};
use crate::node::Item;
use microlith::cluster::frame::Frame;
use microlith::cluster::inbound::{Action, Now};
use microlith::cluster::outbound::{self, Read};

impl World {
    /// The acceptor's side sends what its state machine says.
    pub(super) fn poll(&mut self, id: u64, now: Now) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let a = c.a;
        let node = &self.nodes[a].node;
        let mine = node
            .vol
            .as_ref()
            .map(|v| v.knowledge.mine.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        c.outbound.take_control(&mut out);
        if let Err(e) = c.outbound.poll(node, &mine, now, &mut out) {
            return self.reset(id, &format!("outbound: {e}"));
        }
        for f in out {
            self.send(id, true, f);
        }
    }

    /// Puts a frame on the wire: it arrives after the frames before it on this connection.
    pub(super) fn send(&mut self, id: u64, to_dialer: bool, f: Frame) {
        let delay = self.rng.range(50, 3_000);
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let last = c.wire.back().map_or(0, |w| w.0);
        let at = (self.t + delay).max(last);
        // Now and then a frame arrives twice in a row (a faulty middlebox): the receiving
        // state machine must refuse it or take it harmlessly.
        let twice = self.rng.chance(0.002);
        if twice {
            c.wire.push_back((at, to_dialer, f.clone()));
            self.stats.duplicates += 1;
        }
        c.wire.push_back((at, to_dialer, f));
        self.stats.frames += 1;
        let delay = at - self.t;
        self.at(delay, Ev::Deliver(id));
        if twice {
            self.at(delay, Ev::Deliver(id));
        }
    }

    pub(super) fn deliver(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some((at, _, _)) = c.wire.front() else {
            return;
        };
        if *at > self.t {
            return;
        }
        let (_, to_dialer, f) = c.wire.pop_front().expect("checked");
        if to_dialer {
            c.inbox.push_back(f);
            self.drive_inbound(id);
            return;
        }
        let a = c.a;
        let now = self.now(a);
        let c = self.conns.get_mut(&id).expect("present");
        match c.outbound.on_frame(f, now) {
            Ok(Some(read)) => self.start_read(id, read),
            Ok(None) => {}
            Err(e) => return self.reset(id, &format!("outbound: {e}")),
        }
        self.check_held_ranges(id);
    }

    /// However the peer asks, a link holds at most `MAX_RANGES` range answers (and the one
    /// being read): bounded memory at the sender.
    pub(super) fn check_held_ranges(&mut self, id: u64) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        let held = c.outbound.held_ranges();
        if held > outbound::MAX_RANGES + 1 {
            let a = self.nodes[c.a].node.id;
            self.v
                .add(format!("node {a} holds {held} range answers for one link"));
        }
    }

    pub(super) fn start_read(&mut self, id: u64, read: Read) {
        let c = self.conns.get_mut(&id).expect("present");
        assert!(c.reading.is_none(), "one read at a time per link");
        c.reading = Some(read);
        let d = self.rng.range(200, 5_000);
        self.at(d, Ev::ReadDone(id));
    }

    pub(super) fn read_done(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(read) = c.reading.take() else {
            return;
        };
        let node = &self.nodes[c.a].node;
        let next = match read {
            Read::Digests => {
                c.outbound.digests_ready(node.digests());
                None
            }
            Read::Range {
                table,
                partition,
                after,
            } => {
                let (records, more) =
                    node.range(&table, partition, after.as_deref(), c.outbound.page_bytes());
                c.outbound.range_ready(table, partition, records, more)
            }
        };
        if let Some(next) = next {
            self.start_read(id, next);
        }
        self.check_held_ranges(id);
    }

    /// The dialer's side: handles received frames one at a time, carrying out each action
    /// after the one before it finished (applies and durable cursors wait for the writer).
    pub(super) fn drive_inbound(&mut self, id: u64) {
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if c.waiting.is_some() {
                return;
            }
            if let Some(a) = c.pending.pop_front() {
                if let Err(e) = self.act(id, a) {
                    return self.reset(id, &e);
                }
                continue;
            }
            let Some(f) = c.inbox.pop_front() else {
                return;
            };
            let d = c.d;
            let now = self.now(d);
            let c = self.conns.get_mut(&id).expect("present");
            let mut out = Vec::new();
            let r = c.inbound.on_frame(f, now, &mut out);
            c.pending.extend(out);
            if let Err(e) = r {
                if e.starts_with("refused") {
                    self.stats.refusals += 1;
                }
                return self.reset(id, &format!("inbound: {e}"));
            }
        }
    }

    pub(super) fn act(&mut self, id: u64, a: Action) -> Result<(), String> {
        let c = self.conns.get_mut(&id).expect("present");
        let (d, peer) = (c.d, self.nodes[c.a].node.id);
        match a {
            Action::Send(f) => self.send(id, false, f),
            Action::Apply { changes, .. } => {
                let ticket = self.ticket();
                self.conns.get_mut(&id).expect("present").waiting = Some(ticket);
                self.enqueue(d, Item::Replicate { changes, ticket });
            }
            Action::SaveCursor {
                shard,
                cursor,
                soon,
            } => {
                let vol = self.nodes[d].node.vol();
                if let Some(prev) = vol.handed.get(&(peer, shard)) {
                    if prev.generation == cursor.generation && cursor.next < prev.next {
                        return Err(format!("cursor of {peer}/{shard} would move back"));
                    }
                }
                vol.handed.insert((peer, shard), cursor);
                let ticket = (!soon).then(|| self.ticket());
                self.conns.get_mut(&id).expect("present").waiting = ticket;
                self.enqueue(
                    d,
                    Item::Cursor {
                        peer,
                        shard,
                        cursor,
                        ticket,
                    },
                );
            }
            Action::Deliver(_) | Action::Interest { .. } | Action::Report(_) => {}
            Action::Learn(clock) => self.nodes[d].node.vol().knowledge.learn(peer, clock),
            Action::PeerView(view) => {
                self.nodes[d].node.vol().knowledge.views.insert(peer, view);
            }
            Action::CompareDigests => {
                let ours = self.nodes[d].node.digests();
                let c = self.conns.get_mut(&id).expect("present");
                let mut more = Vec::new();
                c.inbound.on_our_digests(&ours, &mut more);
                c.pending.extend(more);
            }
        }
        Ok(())
    }

    pub(super) fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// Ends a connection: what is on the wire is lost; the dialer dials again later.
    pub(super) fn reset(&mut self, id: u64, _why: &str) {
        if self.conns.remove(&id).is_some() {
            self.stats.resets += 1;
        }
    }
}
