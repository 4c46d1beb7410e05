//! The receiving side of a link as a state machine without I/O: it takes the peer's frames (and
//! the answers to what it asked its driver for) and returns `Action`s, which its driver
//! (`pull.rs` on a real socket, the simulator in tests) carries out in order. It owns the
//! stream cursors, what the peer reported of its lag and of what it holds, and the
//! anti-entropy repair in progress; it decides what to apply, what to acknowledge, when a
//! cursor may become durable (never before the data it covers) and when to repair.

use super::cursor::Cursor;
use super::digest::TableDigest;
use super::frame::{Entry, Frame, InterestChange, PartDigest, PeerMessage, RepairRecord};
use super::handshake::kind;
use crate::storage::changelog::{Change, ChangeOp};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Differing partitions asked for at once: each answer is a round trip, so a few in flight
/// keep a slow link busy (the sender accepts `outbound::MAX_RANGES`).
pub const RANGES_IN_FLIGHT: usize = 4;
/// Most origin clocks a `Stable` frame may carry.
const MAX_STABLE_CLOCKS: usize = 4096;

/// Time as the state machines see it: a monotonic reading for timers and the wall clock
/// for version checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: u64,
}

/// Deliberate mistakes a test may switch on to show that the simulator catches them; always
/// off outside tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Hand the cursor to the writer before the changes it covers are applied.
    pub cursor_before_data: bool,
    /// Behave as a hostile peer: keep 16 range requests in flight, not `RANGES_IN_FLIGHT`.
    pub greedy_ranges: bool,
}

/// What a link knows of its peer when it starts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub peer: u16,
    /// The peer's log generation.
    pub generation: u64,
    /// The peer's shard count.
    pub shards: u16,
    /// The cluster's partition count.
    pub partitions: u32,
    pub max_drift_ms: u64,
    /// How often digests are compared even with good cursors.
    pub repair_every_ms: u64,
    #[doc(hidden)]
    pub faults: Faults,
}

/// What `/status` should show, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Changes applied, with their write times (ms); what the peer had not acknowledged.
    Applied {
        written: Vec<u64>,
        lag_entries: u64,
        lag_ms: u64,
    },
    /// The link reached the end of every one of the peer's logs (once per link).
    CaughtUp,
    Repairing,
    /// A repair is done; the records it applied were counted by the driver.
    Repaired,
}

/// One step for the driver; each runs after the ones before it finished.
#[derive(Debug)]
pub enum Action {
    Send(Frame),
    /// Apply last-writer-wins through the owning writers; `repair` counts what wins.
    Apply {
        changes: Vec<Change>,
        repair: bool,
    },
    /// Make the cursor of (peer, shard) durable: with the writer's next group when `soon`,
    /// before the next action otherwise.
    SaveCursor {
        shard: u16,
        cursor: Cursor,
        soon: bool,
    },
    /// MQTT messages the peer forwarded (the driver checks and delivers them).
    Deliver(Vec<PeerMessage>),
    /// The peer's MQTT filter announcements (the driver checks and records them).
    Interest {
        reset: bool,
        changes: Vec<InterestChange>,
    },
    /// This node now holds every change the peer made with a clock below this.
    Learn(u64),
    /// What the peer reported holding, per origin (tombstone purge).
    PeerView(HashMap<u16, u64>),
    /// Compute this node's digests and hand them to `Inbound::on_our_digests`.
    CompareDigests,
    Report(Report),
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
}

/// The receiving side of one authenticated link.
pub struct Inbound {
    s: Settings,
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
    last_repair_ms: u64,
}

impl Inbound {
    /// Starts the link: subscribes to each of the peer's shards from the saved cursor (0 when
    /// there is none, or when it belongs to another generation of the peer's logs).
    pub fn start(
        s: Settings,
        saved: impl Fn(u16) -> Option<Cursor>,
        now: Now,
        out: &mut Vec<Action>,
    ) -> Inbound {
        let shards = s.shards as usize;
        let cursor: Vec<u64> = (0..s.shards)
            .map(|i| {
                saved(i)
                    .filter(|c| c.generation == s.generation)
                    .map_or(0, |c| c.next)
            })
            .collect();
        for (i, from) in cursor.iter().enumerate() {
            out.push(Action::Send(Frame::Subscribe {
                shard: i as u16,
                from: *from,
            }));
        }
        Inbound {
            s,
            cursor,
            peer_lag: vec![(0, 0); shards],
            caught_up: vec![false; shards],
            synced: false,
            stable: vec![0; shards],
            gaps: Vec::new(),
            repair: None,
            last_repair_ms: now.mono_ms,
        }
    }

    /// Whether a repair is running.
    pub fn repairing(&self) -> bool {
        self.repair.is_some()
    }

    /// Handles one frame from the peer. An error closes the link ("bad frame: ..." when the
    /// peer broke the protocol).
    pub fn on_frame(&mut self, f: Frame, now: Now, out: &mut Vec<Action>) -> Result<(), String> {
        // Now and then compare everything, even with good cursors: the peer streams only its
        // own changes, so this is what brings changes of a node that is gone for good.
        if self.repair.is_none()
            && now.mono_ms.saturating_sub(self.last_repair_ms) > self.s.repair_every_ms
        {
            self.start_repair(now.mono_ms, out);
        }
        match f {
            Frame::Changes {
                shard,
                from,
                entries,
                upto,
                log_next,
                lag_entries,
                lag_ms,
                stable_below,
            } => {
                let batch = Batch {
                    shard,
                    from,
                    upto,
                    log_next,
                };
                self.on_changes(batch, entries, now, out)?;
                let i = shard as usize;
                // What the peer had beyond what it sent, plus what it had not heard acknowledged.
                self.peer_lag[i] = (lag_entries.max(log_next.saturating_sub(upto)), lag_ms);
                self.learn_stable(i, stable_below, out);
            }
            Frame::Ping => out.push(Action::Send(Frame::Ping)),
            Frame::Publish { messages } => out.push(Action::Deliver(messages)),
            Frame::Interest { reset, changes } => out.push(Action::Interest { reset, changes }),
            Frame::Stable { clocks } => {
                if clocks.len() > MAX_STABLE_CLOCKS {
                    return Err("bad frame: too many clocks".into());
                }
                let view = clocks.into_iter().map(|c| (c.origin, c.clock)).collect();
                out.push(Action::PeerView(view));
            }
            Frame::Gap { shard, resume_at } => self.on_gap(shard, resume_at, now, out)?,
            Frame::Digest { table, parts } => self.on_digest(table, parts)?,
            Frame::DigestDone => self.on_digest_done(out)?,
            Frame::Range {
                table,
                partition,
                records,
                more,
            } => self.on_range(table, partition, records, more, now, out)?,
            other => return Err(format!("bad frame: unexpected {}", kind(&other))),
        }
        Ok(())
    }

    /// Checks a batch of changes, applies it, then moves the cursor and acknowledges.
    fn on_changes(
        &mut self,
        b: Batch,
        entries: Vec<Entry>,
        now: Now,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        let i = b.shard as usize;
        if i >= self.cursor.len() || b.from != self.cursor[i] || b.upto < b.from {
            return Err(format!(
                "bad frame: Changes for shard {} from {} up to {} (expected from {:?})",
                b.shard,
                b.from,
                b.upto,
                self.cursor.get(i)
            ));
        }
        let mut changes = Vec::with_capacity(entries.len());
        let mut next = b.from;
        for e in entries {
            if e.seq < next || e.seq >= b.upto || e.change.node != self.s.peer {
                return Err("bad frame: entry out of order or not made by the peer".into());
            }
            next = e.seq + 1;
            self.check_drift(&e.change, now)?;
            changes.push(e.change);
        }
        let written: Vec<u64> = changes.iter().map(|c| c.clock >> 16).collect();
        let save = (b.upto > self.cursor[i]).then_some(Action::SaveCursor {
            shard: b.shard,
            cursor: Cursor {
                generation: self.s.generation,
                next: b.upto,
            },
            soon: true,
        });
        let apply = (!changes.is_empty()).then_some(Action::Apply {
            changes,
            repair: false,
        });
        // The cursor is handed over only after the data committed, so it never runs ahead of
        // it: after a crash the link resumes from it and at worst receives changes twice.
        let (first, second) = match self.s.faults.cursor_before_data {
            false => (apply, save),
            true => (save, apply),
        };
        out.extend(first);
        out.extend(second);
        self.cursor[i] = b.upto;
        out.push(Action::Send(Frame::Ack {
            shard: b.shard,
            upto: b.upto,
        }));
        self.caught_up[i] |= b.upto >= b.log_next;
        self.note_synced(out);
        let entries_behind: u64 = self.peer_lag.iter().map(|l| l.0).sum();
        let ms = self.peer_lag.iter().map(|l| l.1).max().unwrap_or(0);
        out.push(Action::Report(Report::Applied {
            written,
            lag_entries: entries_behind,
            lag_ms: ms,
        }));
        Ok(())
    }

    /// Refuses a change versioned further ahead of this node's clock than the bound allows.
    fn check_drift(&self, c: &Change, now: Now) -> Result<(), String> {
        let ahead = (c.clock >> 16).saturating_sub(now.wall_ms);
        if ahead > self.s.max_drift_ms {
            return Err(format!(
                "refused: node {}'s change to {}/{} is versioned {ahead} ms ahead of this node's clock (cluster.max_clock_drift_ms = {}); is one of the two clocks wrong?",
                c.node, c.table, c.id, self.s.max_drift_ms
            ));
        }
        Ok(())
    }

    /// Notes, once, that the link has reached the end of every one of the peer's logs.
    fn note_synced(&mut self, out: &mut Vec<Action>) {
        if !self.synced && self.repair.is_none() && self.caught_up.iter().all(|c| *c) {
            self.synced = true;
            out.push(Action::Report(Report::CaughtUp));
        }
    }

    /// Everything before the batch's end is applied: so is every change the peer made on that
    /// shard with a clock below `stable_below`.
    fn learn_stable(&mut self, i: usize, stable_below: u64, out: &mut Vec<Action>) {
        if stable_below == 0 {
            return;
        }
        self.stable[i] = self.stable[i].max(stable_below);
        if self.stable.iter().all(|c| *c > 0) {
            let min = self.stable.iter().copied().min().unwrap_or(0);
            out.push(Action::Learn(min));
        }
    }

    fn on_gap(
        &mut self,
        shard: u16,
        resume_at: u64,
        now: Now,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        if shard as usize >= self.cursor.len() {
            return Err(format!("bad frame: Gap for shard {shard}"));
        }
        self.gaps.push((shard, resume_at));
        self.caught_up[shard as usize] = false;
        if self.repair.is_none() {
            self.start_repair(now.mono_ms, out);
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
        if r.theirs.len() + parts.len() > 1024 * self.s.partitions as usize {
            return Err("bad frame: too many digests".into());
        }
        for p in parts {
            r.theirs.insert((table.clone(), p.partition), p.hash);
        }
        Ok(())
    }

    /// The peer's digests are all in: the driver computes ours.
    fn on_digest_done(&mut self, out: &mut Vec<Action>) -> Result<(), String> {
        let r = self
            .repair
            .as_mut()
            .filter(|r| !r.digests_done)
            .ok_or("bad frame: DigestDone without a request")?;
        r.digests_done = true;
        out.push(Action::CompareDigests);
        Ok(())
    }

    /// Compares this node's digests with the peer's and asks for what differs; returns how
    /// many partitions differ.
    pub fn on_our_digests(
        &mut self,
        ours: &BTreeMap<String, TableDigest>,
        out: &mut Vec<Action>,
    ) -> usize {
        let Some(r) = self.repair.as_mut() else {
            return 0;
        };
        for ((table, p), hash) in &r.theirs {
            let same = ours
                .get(table)
                .and_then(|t| t.parts.get(p))
                .is_some_and(|h| h == hash);
            if !same {
                r.queue.push_back((table.clone(), *p));
            }
        }
        let differ = r.queue.len();
        if next_ranges(r, self.s.faults, out) {
            self.finish_repair(out);
        }
        differ
    }

    /// Applies a page of a partition that was asked for, and asks for more.
    fn on_range(
        &mut self,
        table: String,
        partition: u16,
        records: Vec<RepairRecord>,
        more: Option<String>,
        now: Now,
        out: &mut Vec<Action>,
    ) -> Result<(), String> {
        let r = self
            .repair
            .as_mut()
            .ok_or("bad frame: Range without a request")?;
        if r.asked.front().map(|(t, p)| (t.as_str(), *p)) != Some((table.as_str(), partition)) {
            return Err("bad frame: Range that was not asked for".into());
        }
        r.asked.pop_front();
        let changes: Vec<Change> = records
            .into_iter()
            .map(|rec| repaired_change(&table, rec))
            .collect();
        for c in &changes {
            self.check_drift(c, now)?;
        }
        let r = self.repair.as_mut().expect("checked above");
        if let Some(after) = more {
            // The rest of this partition: asked now, behind what is in flight.
            ask(r, table, partition, Some(after), out);
        }
        if !changes.is_empty() {
            out.push(Action::Apply {
                changes,
                repair: true,
            });
        }
        if next_ranges(r, self.s.faults, out) {
            self.finish_repair(out);
        }
        Ok(())
    }

    /// Asks for the peer's digests; the repair covers the streams that had a gap so far.
    fn start_repair(&mut self, mono_ms: u64, out: &mut Vec<Action>) {
        self.last_repair_ms = mono_ms;
        out.push(Action::Report(Report::Repairing));
        out.push(Action::Send(Frame::DigestRequest));
        self.repair = Some(Repair {
            covering: std::mem::take(&mut self.gaps),
            ..Default::default()
        });
    }

    /// Everything the peer held when the repair started is applied: resume the streams it
    /// covers from where the peer's log stood then.
    fn finish_repair(&mut self, out: &mut Vec<Action>) {
        let Some(r) = self.repair.take() else {
            return;
        };
        for (shard, resume_at) in r.covering {
            let cursor = Cursor {
                generation: self.s.generation,
                next: resume_at,
            };
            out.push(Action::SaveCursor {
                shard,
                cursor,
                soon: false,
            });
            self.cursor[shard as usize] = resume_at;
            out.push(Action::Send(Frame::Subscribe {
                shard,
                from: resume_at,
            }));
        }
        out.push(Action::Report(Report::Repaired));
        if !self.gaps.is_empty() {
            // Gaps that came while this repair ran were not covered by its digests.
            self.start_repair(self.last_repair_ms, out);
        }
    }
}

/// Where a `Changes` frame sits in its stream.
struct Batch {
    shard: u16,
    from: u64,
    upto: u64,
    log_next: u64,
}

/// A repaired record as a change to apply last-writer-wins.
fn repaired_change(table: &str, rec: RepairRecord) -> Change {
    Change {
        table: table.to_string(),
        id: rec.id,
        clock: rec.clock,
        node: rec.node,
        op: if rec.tombstone {
            ChangeOp::Delete
        } else {
            ChangeOp::Put
        },
        body: if rec.tombstone { Vec::new() } else { rec.body },
    }
}

/// Asks for one range and notes it as in flight.
fn ask(
    r: &mut Repair,
    table: String,
    partition: u16,
    after: Option<String>,
    out: &mut Vec<Action>,
) {
    r.asked.push_back((table.clone(), partition));
    out.push(Action::Send(Frame::RangeRequest {
        table,
        partition,
        after,
    }));
}

/// Keeps up to `RANGES_IN_FLIGHT` ranges asked for; true when nothing is left to ask or await.
fn next_ranges(r: &mut Repair, faults: Faults, out: &mut Vec<Action>) -> bool {
    let in_flight = match faults.greedy_ranges {
        false => RANGES_IN_FLIGHT,
        true => 16,
    };
    while r.asked.len() < in_flight {
        let Some((table, partition)) = r.queue.pop_front() else {
            break;
        };
        ask(r, table, partition, None, out);
    }
    r.asked.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALL: u64 = 1_700_000_000_000;

    fn now() -> Now {
        Now {
            mono_ms: 0,
            wall_ms: WALL,
        }
    }

    fn link(saved: Option<u64>) -> (Inbound, Vec<Action>) {
        let s = Settings {
            peer: 2,
            generation: 7,
            shards: 1,
            partitions: 16,
            max_drift_ms: 1_000,
            repair_every_ms: 600_000,
            faults: Faults::default(),
        };
        let saved = |_| {
            saved.map(|next| Cursor {
                generation: 7,
                next,
            })
        };
        let mut out = Vec::new();
        let sm = Inbound::start(s, saved, now(), &mut out);
        (sm, out)
    }

    fn change(id: &str, ms: u64) -> Change {
        Change {
            table: "T".into(),
            id: id.into(),
            clock: ms << 16,
            node: 2,
            op: ChangeOp::Put,
            body: b"{}".to_vec(),
        }
    }

    fn batch(from: u64, changes: Vec<Change>) -> Frame {
        let upto = from + changes.len() as u64;
        let entries = (from..)
            .zip(changes)
            .map(|(seq, change)| Entry { seq, change })
            .collect();
        Frame::Changes {
            shard: 0,
            from,
            entries,
            upto,
            log_next: upto,
            lag_entries: 0,
            lag_ms: 0,
            stable_below: 0,
        }
    }

    #[test]
    fn a_link_subscribes_from_its_saved_cursor() {
        let (_, out) = link(Some(5));
        assert!(matches!(
            out.as_slice(),
            [Action::Send(Frame::Subscribe { shard: 0, from: 5 })]
        ));
    }

    #[test]
    fn a_batch_is_applied_before_its_cursor_is_saved_and_acknowledged() {
        let (mut sm, _) = link(Some(5));
        let mut out = Vec::new();
        sm.on_frame(batch(5, vec![change("a", WALL)]), now(), &mut out)
            .unwrap();
        let apply = out.iter().position(|a| matches!(a, Action::Apply { .. }));
        let save = out
            .iter()
            .position(|a| matches!(a, Action::SaveCursor { cursor, .. } if cursor.next == 6));
        let ack = out
            .iter()
            .position(|a| matches!(a, Action::Send(Frame::Ack { upto: 6, .. })));
        assert!(apply < save && save < ack, "{out:?}");
    }

    #[test]
    fn a_batch_that_does_not_continue_the_stream_closes_the_link() {
        let (mut sm, _) = link(Some(5));
        let mut out = Vec::new();
        let skipped = sm.on_frame(batch(6, vec![change("a", WALL)]), now(), &mut out);
        assert!(skipped.unwrap_err().starts_with("bad frame"));
        let (mut sm, _) = link(Some(5));
        sm.on_frame(batch(5, vec![change("a", WALL)]), now(), &mut out)
            .unwrap();
        let repeated = sm.on_frame(batch(5, vec![change("a", WALL)]), now(), &mut out);
        assert!(repeated.unwrap_err().starts_with("bad frame"));
    }

    #[test]
    fn a_change_versioned_past_the_drift_bound_is_refused_not_applied() {
        let (mut sm, _) = link(Some(5));
        let mut out = Vec::new();
        let ahead = change("a", WALL + 1_001);
        let e = sm
            .on_frame(batch(5, vec![ahead]), now(), &mut out)
            .unwrap_err();
        assert!(
            e.starts_with("refused") && e.contains("1001 ms ahead"),
            "{e}"
        );
        assert!(out.is_empty(), "nothing applied or acknowledged: {out:?}");
        sm.on_frame(batch(5, vec![change("a", WALL + 1_000)]), now(), &mut out)
            .unwrap();
    }

    #[test]
    fn a_gap_repairs_then_resumes_where_the_peer_stood() {
        let (mut sm, _) = link(None);
        let mut out = Vec::new();
        let gap = Frame::Gap {
            shard: 0,
            resume_at: 40,
        };
        sm.on_frame(gap, now(), &mut out).unwrap();
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Send(Frame::DigestRequest))));
        sm.on_frame(Frame::DigestDone, now(), &mut out).unwrap();
        out.clear();
        assert_eq!(sm.on_our_digests(&BTreeMap::new(), &mut out), 0);
        assert!(!sm.repairing());
        assert!(out.iter().any(|a| matches!(
            a,
            Action::SaveCursor { cursor, soon: false, .. } if cursor.next == 40
        )));
        assert!(out
            .iter()
            .any(|a| matches!(a, Action::Send(Frame::Subscribe { from: 40, .. }))));
    }
}
