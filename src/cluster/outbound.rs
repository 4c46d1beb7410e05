//! The sending side of a link as a state machine without I/O: it takes the peer's frames and
//! the answers to the reads it asked its driver for, and, when polled with a view of this
//! node's change logs, says which frames go out. It owns the streams (each shard's position,
//! acknowledgements and unacknowledged batches), when a stream needs repair (`Gap`), the
//! digest and range answers waiting to be sent, and heartbeats. Its driver is `push.rs` on a
//! real socket, the simulator in tests.

use super::digest::TableDigest;
use super::frame::{Entry, Frame, OriginClock, PartDigest, RepairRecord};
use super::handshake::kind;
use super::inbound::Now;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// How often a peer is told how far this node holds each origin's changes (ms).
const STABLE_EVERY_MS: u64 = 500;
/// A stream with nothing new sends an empty batch this often (ms); a link with nothing to
/// send pings this often.
const HEARTBEAT_MS: u64 = 1_000;
/// Unacknowledged batches per shard stream.
const WINDOW: usize = 8;
/// Entries that make a batch worth sending while another is unacknowledged.
const COALESCE: u64 = 64;
/// Most entries read per batch.
pub const MAX_BATCH: usize = 512;
/// Control frames (repair answers) waiting to be sent; more means the peer misbehaves.
const MAX_CONTROL: usize = 64;
/// Range requests a peer may have outstanding (pipelined repair; see
/// `inbound::RANGES_IN_FLIGHT`).
pub const MAX_RANGES: usize = 8;
/// Digests per `Digest` frame.
const DIGESTS_PER_FRAME: usize = 4096;

/// Where one shard's change log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// Every change this node made on the shard with a clock up to this is below `next`.
    /// Read before `next`.
    pub own_clock: u64,
    /// The next sequence the log will hold.
    pub next: u64,
    /// The oldest sequence the log still holds.
    pub first: u64,
}

/// This node's change logs, as the sending side reads them.
pub trait LogView {
    fn head(&self, shard: usize) -> LogHead;
    /// Entries of `[from, next)`, at most `MAX_BATCH` or about `max_bytes`, only those made on
    /// this node, and the sequence after the last one read. `None`: the log no longer holds
    /// `from`.
    fn read_batch(
        &self,
        shard: usize,
        from: u64,
        next: u64,
        max_bytes: usize,
    ) -> Result<Option<(Vec<Entry>, u64)>, String>;
    /// The wall time (ms) the entry at `seq` was written, if the log holds it.
    fn written_ms(&self, shard: usize, seq: u64) -> Option<u64>;
}

/// Deliberate mistakes a test may switch on to show that the simulator catches them; always
/// off outside tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Claim `stable_below` on every batch, not only on one that reaches the end of the log.
    pub stable_on_every_batch: bool,
    /// Count only the range requests not yet read against `MAX_RANGES`, not the answers
    /// waiting to be sent.
    pub uncounted_answers: bool,
}

/// A read the driver carries out off the executor and hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Every partition digest of every table: `digests_ready`.
    Digests,
    /// One page of a partition: `range_ready`.
    Range {
        table: String,
        partition: u16,
        after: Option<String>,
    },
}

struct Sub {
    next: u64,
    acked: u64,
    inflight: VecDeque<u64>,
    /// When this stream last sent a frame (a quiet stream sends one a second).
    last_frame_ms: u64,
}

/// The sending side of one authenticated link.
pub struct Outbound {
    subs: Vec<Option<Sub>>,
    /// Repair answers waiting to be sent.
    control: VecDeque<Frame>,
    /// Digests are being computed.
    digesting: bool,
    /// Range requests not answered yet, in arrival order (answered in that order).
    ranges: VecDeque<(String, u16, Option<String>)>,
    /// A range is being read.
    ranging: bool,
    partitions: u32,
    max_frame: usize,
    last_sent_ms: u64,
    last_stable_ms: u64,
    faults: Faults,
}

/// What one poll sent of the change logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub changes: u64,
}

impl Outbound {
    pub fn new(shards: usize, partitions: u32, max_frame: usize, now: Now) -> Outbound {
        Outbound {
            subs: (0..shards).map(|_| None).collect(),
            control: VecDeque::new(),
            digesting: false,
            ranges: VecDeque::new(),
            ranging: false,
            partitions,
            max_frame,
            last_sent_ms: now.mono_ms,
            last_stable_ms: now.mono_ms,
            faults: Faults::default(),
        }
    }

    #[doc(hidden)]
    pub fn with_faults(mut self, faults: Faults) -> Outbound {
        self.faults = faults;
        self
    }

    /// Handles one frame from the peer; returns a read to start, if any. An error closes the
    /// link.
    pub fn on_frame(&mut self, f: Frame, now: Now) -> Result<Option<Read>, String> {
        let read = match f {
            Frame::Subscribe { shard, from } => {
                self.subscribe(shard, from, now)?;
                None
            }
            Frame::Ack { shard, upto } => {
                self.ack(shard, upto)?;
                None
            }
            Frame::Ping => None,
            Frame::DigestRequest => {
                if std::mem::replace(&mut self.digesting, true) {
                    return Err("second repair request while one is answered".into());
                }
                Some(Read::Digests)
            }
            Frame::RangeRequest {
                table,
                partition,
                after,
            } => self.range_request(table, partition, after)?,
            other => return Err(format!("unexpected {} from a pulling peer", kind(&other))),
        };
        if self.control.len() > MAX_CONTROL {
            return Err("too many requests in flight".into());
        }
        Ok(read)
    }

    /// (Re)starts the stream of one shard from `from`.
    fn subscribe(&mut self, shard: u16, from: u64, now: Now) -> Result<(), String> {
        let shards = self.subs.len();
        let slot = self
            .subs
            .get_mut(shard as usize)
            .ok_or_else(|| format!("Subscribe for shard {shard} of {shards}"))?;
        *slot = Some(Sub {
            next: from,
            acked: from,
            inflight: VecDeque::new(),
            last_frame_ms: now.mono_ms,
        });
        Ok(())
    }

    fn ack(&mut self, shard: u16, upto: u64) -> Result<(), String> {
        if let Some(Some(sub)) = self.subs.get_mut(shard as usize) {
            if upto > sub.next {
                return Err(format!("Ack past what was sent on shard {shard}"));
            }
            sub.acked = sub.acked.max(upto);
            while sub.inflight.front().is_some_and(|u| *u <= upto) {
                sub.inflight.pop_front();
            }
        }
        Ok(())
    }

    /// Queues a range request; the first one starts a read.
    fn range_request(
        &mut self,
        table: String,
        partition: u16,
        after: Option<String>,
    ) -> Result<Option<Read>, String> {
        super::apply::check_table_name(&table)?;
        if partition as u32 >= self.partitions {
            return Err(format!("RangeRequest for partition {partition}"));
        }
        // Answers not yet sent count too (they wait in `control`, up to half a frame each):
        // a peer that asks without reading cannot pile them up.
        let waiting = match self.faults.uncounted_answers {
            false => self.control.len(),
            true => 0,
        };
        if self.ranges.len() + waiting >= MAX_RANGES {
            return Err(format!("more than {MAX_RANGES} range requests in flight"));
        }
        self.ranges.push_back((table, partition, after));
        Ok(self.next_read())
    }

    /// The next range to read, unless one is being read.
    fn next_read(&mut self) -> Option<Read> {
        if self.ranging {
            return None;
        }
        let (table, partition, after) = self.ranges.pop_front()?;
        self.ranging = true;
        Some(Read::Range {
            table,
            partition,
            after,
        })
    }

    /// This node's digests are computed: queues them, then `DigestDone`.
    pub fn digests_ready(&mut self, tables: BTreeMap<String, TableDigest>) {
        self.digesting = false;
        for (table, d) in tables {
            let parts: Vec<PartDigest> = d
                .parts
                .into_iter()
                .map(|(partition, hash)| PartDigest { partition, hash })
                .collect();
            for chunk in parts.chunks(DIGESTS_PER_FRAME) {
                self.control.push_back(Frame::Digest {
                    table: table.clone(),
                    parts: chunk.to_vec(),
                });
            }
        }
        self.control.push_back(Frame::DigestDone);
    }

    /// A range read is done: queues its answer; returns the next read, if any.
    pub fn range_ready(
        &mut self,
        table: String,
        partition: u16,
        records: Vec<RepairRecord>,
        more: Option<String>,
    ) -> Option<Read> {
        self.ranging = false;
        self.control.push_back(Frame::Range {
            table,
            partition,
            records,
            more,
        });
        self.next_read()
    }

    /// Range answers this link holds: asked and not read yet, being read, or read and not
    /// sent. At most `MAX_RANGES + 1` (the one being read), whatever the peer does.
    pub fn held_ranges(&self) -> usize {
        let unsent = self
            .control
            .iter()
            .filter(|f| matches!(f, Frame::Range { .. }));
        self.ranges.len() + self.ranging as usize + unsent.count()
    }

    /// Half a frame: the most one batch or one repair page carries.
    pub fn page_bytes(&self) -> usize {
        self.max_frame / 2
    }

    /// Moves the repair answers waiting to be sent into `out`.
    pub fn take_control(&mut self, out: &mut Vec<Frame>) {
        out.extend(self.control.drain(..));
    }

    /// Adds to `out` (which may hold frames the driver sends with these) what the streams
    /// send now, a ping when the link has been quiet, and now and then what this node holds
    /// of each origin (`mine`).
    pub fn poll(
        &mut self,
        log: &impl LogView,
        mine: &HashMap<u16, u64>,
        now: Now,
        out: &mut Vec<Frame>,
    ) -> Result<Sent, String> {
        let mut sent = Sent::default();
        for s in 0..self.subs.len() {
            sent.changes += self.stream_shard(log, s, now, out)?;
        }
        if out.is_empty() && now.mono_ms.saturating_sub(self.last_sent_ms) > HEARTBEAT_MS {
            out.push(Frame::Ping);
        }
        if now.mono_ms.saturating_sub(self.last_stable_ms) > STABLE_EVERY_MS {
            self.last_stable_ms = now.mono_ms;
            out.push(stable_frame(mine));
        }
        if !out.is_empty() {
            self.last_sent_ms = now.mono_ms;
        }
        Ok(sent)
    }

    /// What shard `s`'s stream sends now, into `out`: a `Gap` (which ends the stream), the
    /// next batch of changes, a heartbeat, or nothing. Returns how many changes it sends.
    fn stream_shard(
        &mut self,
        log: &impl LogView,
        s: usize,
        now: Now,
        out: &mut Vec<Frame>,
    ) -> Result<u64, String> {
        let head = log.head(s);
        let stable_anyway = self.faults.stable_on_every_batch;
        let stable = |upto: u64| match upto == head.next || stable_anyway {
            true => head.own_clock + 1,
            false => 0,
        };
        let budget = self.page_bytes();
        let Some(sub) = self.subs[s].as_mut() else {
            return Ok(0);
        };
        let gap = Frame::Gap {
            shard: s as u16,
            resume_at: head.next,
        };
        // No cursor, a cursor the log was trimmed past, or one ahead of the log (the peer
        // saw an earlier incarnation of this node's log): repair first.
        if sub.next == 0 || sub.next < head.first || sub.next > head.next {
            out.push(gap);
            self.subs[s] = None;
            return Ok(0);
        }
        if sub.inflight.len() >= WINDOW {
            return Ok(0);
        }
        // With a batch in flight, the next one waits for its acknowledgement unless it would
        // be large: at low rates every change goes at once, under load batches grow to what
        // the receiver keeps up with (fewer commits and frames per change).
        if !sub.inflight.is_empty() && head.next - sub.next < COALESCE {
            return Ok(0);
        }
        if sub.next < head.next {
            let Some((entries, upto)) = log.read_batch(s, sub.next, head.next, budget)? else {
                out.push(gap);
                self.subs[s] = None;
                return Ok(0);
            };
            let n = entries.len() as u64;
            let from = std::mem::replace(&mut sub.next, upto);
            sub.inflight.push_back(upto);
            sub.last_frame_ms = now.mono_ms;
            out.push(changes_frame(sub, log, s, from, entries, head.next, now).with(stable(upto)));
            return Ok(n);
        }
        if now.mono_ms.saturating_sub(sub.last_frame_ms) > HEARTBEAT_MS {
            sub.last_frame_ms = now.mono_ms;
            let from = sub.next;
            out.push(
                changes_frame(sub, log, s, from, Vec::new(), head.next, now).with(stable(from)),
            );
        }
        Ok(0)
    }

    /// How far the peer is behind on this link: unacknowledged entries over every stream, and
    /// the age (ms) of the oldest.
    pub fn lag(&self, log: &impl LogView, now: Now) -> (u64, u64) {
        let (mut entries, mut ms) = (0u64, 0u64);
        for (s, sub) in self.subs.iter().enumerate() {
            if let Some(sub) = sub {
                let next = log.head(s).next;
                entries += next.saturating_sub(sub.acked);
                ms = ms.max(lag_ms(log, s, sub.acked, next, now));
            }
        }
        (entries, ms)
    }
}

/// A `Changes` frame still missing its `stable_below`.
struct Unstable(Frame);

impl Unstable {
    fn with(self, stable: u64) -> Frame {
        let mut f = self.0;
        if let Frame::Changes { stable_below, .. } = &mut f {
            *stable_below = stable;
        }
        f
    }
}

/// A `Changes` frame of shard `s` with `entries` in `[from, sub.next)`.
fn changes_frame(
    sub: &Sub,
    log: &impl LogView,
    s: usize,
    from: u64,
    entries: Vec<Entry>,
    log_next: u64,
    now: Now,
) -> Unstable {
    Unstable(Frame::Changes {
        shard: s as u16,
        from,
        entries,
        upto: sub.next,
        log_next,
        lag_entries: log_next.saturating_sub(sub.acked),
        lag_ms: lag_ms(log, s, sub.acked, log_next, now),
        stable_below: 0,
    })
}

/// Age of the oldest entry the peer has not acknowledged (0 when caught up).
fn lag_ms(log: &impl LogView, s: usize, acked: u64, log_next: u64, now: Now) -> u64 {
    if acked >= log_next {
        return 0;
    }
    log.written_ms(s, acked)
        .map_or(0, |ms| now.wall_ms.saturating_sub(ms))
}

/// How far this node holds each origin's changes.
fn stable_frame(mine: &HashMap<u16, u64>) -> Frame {
    let clocks = mine
        .iter()
        .map(|(origin, clock)| OriginClock {
            origin: *origin,
            clock: *clock,
        })
        .collect();
    Frame::Stable { clocks }
}
