//! One simulated node's storage and writer: records kept last-writer-wins, one change log per
//! shard (sequences from 1, trimmed to a bound but never emptied), durable cursors, and a
//! writer that commits queued work one item at a time. What is committed survives a crash
//! (the `sync` durability mode); the writer's queue, the clocks' memory and what the node
//! knows of its peers do not. Mirrors the real writer's rules (`storage/writer/replica.rs`,
//! `local.rs`, `maintenance.rs`) closely enough for the replication state machines to run on.

use microlith::cluster::cursor::Cursor;
use microlith::cluster::digest::{PartitionHasher, TableDigest};
use microlith::cluster::frame::{Entry, RepairRecord};
use microlith::cluster::outbound::{LogHead, LogView, MAX_BATCH};
use microlith::cluster::purge::Knowledge;
use microlith::storage::changelog::{Change, ChangeOp};
use microlith::storage::clock::Clock;
use microlith::storage::hlc::{Hlc, Version};
use microlith::storage::keys::partition_of;
use microlith::storage::layout::owner_of;
use std::collections::{BTreeMap, HashMap, VecDeque};

pub const PARTITIONS: u32 = 16;

/// (table, partition, id): the order records are stored and digested in.
pub type Key = (String, u16, String);

#[derive(Debug, Clone)]
pub struct Rec {
    pub version: Version,
    pub tombstone: bool,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct ShardLog {
    pub entries: BTreeMap<u64, Change>,
    pub next: u64,
    pub first: u64,
}

/// What a crash keeps.
#[derive(Debug, Clone)]
pub struct Durable {
    pub records: BTreeMap<Key, Rec>,
    pub logs: Vec<ShardLog>,
    pub cursors: HashMap<(u16, u16), Cursor>,
    pub generation: u64,
    /// Tombstones this node purged (newest version per key): not node state, the checker's
    /// memory of why a record is absent.
    pub purged: HashMap<Key, Version>,
}

/// Work for the writer.
#[derive(Debug)]
pub enum Item {
    Local {
        table: String,
        id: String,
        delete: bool,
        body: Vec<u8>,
    },
    Replicate {
        changes: Vec<Change>,
        ticket: u64,
    },
    Cursor {
        peer: u16,
        shard: u16,
        cursor: Cursor,
        ticket: Option<u64>,
    },
    Purge {
        key: Key,
        version: Version,
    },
}

/// What a commit did.
#[derive(Debug)]
pub enum Committed {
    /// A client's write, acknowledged now.
    Local {
        key: Key,
        version: Version,
    },
    /// Work a link waits for.
    Ticket(u64),
    Purged {
        key: Key,
        version: Version,
    },
    Nothing,
}

/// What a crash loses.
pub struct Volatile {
    pub hlcs: Vec<Hlc>,
    pub own_clock: Vec<u64>,
    pub queue: VecDeque<Item>,
    pub knowledge: Knowledge,
    /// The last cursor handed over per (peer, shard): within a generation it never goes back.
    pub handed: HashMap<(u16, u16), Cursor>,
}

pub struct Node {
    pub id: u16,
    pub durable: Durable,
    /// `None` while the node is down.
    pub vol: Option<Volatile>,
    pub clock: Clock,
    pub log_keep: u64,
}

impl Node {
    pub fn new(id: u16, shards: usize, log_keep: u64, clock: Clock) -> Node {
        let logs = (0..shards)
            .map(|_| ShardLog {
                entries: BTreeMap::new(),
                next: 1,
                first: 1,
            })
            .collect();
        let mut n = Node {
            id,
            durable: Durable {
                records: BTreeMap::new(),
                logs,
                cursors: HashMap::new(),
                generation: 1000 + id as u64,
                purged: HashMap::new(),
            },
            vol: None,
            clock,
            log_keep,
        };
        n.start();
        n
    }

    pub fn shards(&self) -> usize {
        self.durable.logs.len()
    }

    pub fn up(&self) -> bool {
        self.vol.is_some()
    }

    /// Starts (or restarts) from what is durable: each shard's clock observes every stored
    /// version, as the writer does at start.
    pub fn start(&mut self) {
        let shards = self.shards();
        let mut hlcs: Vec<Hlc> = (0..shards)
            .map(|_| Hlc::new(self.id, self.clock.clone()))
            .collect();
        for ((_, p, _), r) in &self.durable.records {
            hlcs[owner_of(*p, shards)].observe(r.version);
        }
        for (s, log) in self.durable.logs.iter().enumerate() {
            if let Some(c) = log.entries.values().next_back() {
                hlcs[s].observe(version_of(c));
            }
        }
        let own_clock = hlcs.iter_mut().map(|h| h.now().clock - 1).collect();
        self.vol = Some(Volatile {
            hlcs,
            own_clock,
            queue: VecDeque::new(),
            knowledge: Knowledge::default(),
            handed: HashMap::new(),
        });
    }

    pub fn crash(&mut self) {
        self.vol = None;
    }

    pub fn vol(&mut self) -> &mut Volatile {
        self.vol.as_mut().expect("node is up")
    }

    pub fn enqueue(&mut self, item: Item) {
        self.vol().queue.push_back(item);
    }

    /// Commits the writer's next item, if any.
    pub fn commit_one(&mut self, grace_ms: u64) -> Option<Committed> {
        let item = self.vol().queue.pop_front()?;
        let done = match item {
            Item::Local {
                table,
                id,
                delete,
                body,
            } => self.local(table, id, delete, body),
            Item::Replicate { changes, ticket } => {
                for c in changes {
                    self.replicate(c);
                }
                Committed::Ticket(ticket)
            }
            Item::Cursor {
                peer,
                shard,
                cursor,
                ticket,
            } => {
                self.durable.cursors.insert((peer, shard), cursor);
                ticket.map_or(Committed::Nothing, Committed::Ticket)
            }
            Item::Purge { key, version } => self.purge(key, version, grace_ms),
        };
        // Between groups nothing is in flight: every own change up to here is in the logs.
        let vol = self.vol();
        for (s, h) in vol.hlcs.iter_mut().enumerate() {
            let c = h.now().clock - 1;
            vol.own_clock[s] = vol.own_clock[s].max(c);
        }
        self.trim();
        Some(done)
    }

    fn shard_of(&self, partition: u16) -> usize {
        owner_of(partition, self.shards())
    }

    /// A client's write: newer than what it replaces, even under clock skew.
    fn local(&mut self, table: String, id: String, delete: bool, body: Vec<u8>) -> Committed {
        let p = partition_of(&table, &id, PARTITIONS);
        let key = (table.clone(), p, id.clone());
        let s = self.shard_of(p);
        let old = self.durable.records.get(&key).map(|r| r.version);
        let hlc = &mut self.vol().hlcs[s];
        if let Some(v) = old {
            hlc.observe(v);
        }
        let version = hlc.now();
        assert!(
            old.is_none_or(|o| version > o),
            "a write on node {} is not newer than the version it replaces",
            self.id
        );
        let change = Change {
            table,
            id,
            clock: version.clock,
            node: self.id,
            op: if delete {
                ChangeOp::Delete
            } else {
                ChangeOp::Put
            },
            body: if delete { Vec::new() } else { body },
        };
        self.store(key.clone(), change);
        Committed::Local { key, version }
    }

    /// A change from another node, stored if it wins last-writer-wins.
    fn replicate(&mut self, c: Change) {
        let p = partition_of(&c.table, &c.id, PARTITIONS);
        let key = (c.table.clone(), p, c.id.clone());
        let s = self.shard_of(p);
        let incoming = version_of(&c);
        self.vol().hlcs[s].observe(incoming);
        if self
            .durable
            .records
            .get(&key)
            .is_some_and(|r| r.version >= incoming)
        {
            return;
        }
        self.store(key, c);
    }

    fn store(&mut self, key: Key, c: Change) {
        let s = self.shard_of(key.1);
        let tombstone = c.op == ChangeOp::Delete;
        self.durable.records.insert(
            key,
            Rec {
                version: version_of(&c),
                tombstone,
                body: c.body.clone(),
            },
        );
        let log = &mut self.durable.logs[s];
        log.entries.insert(log.next, c);
        log.next += 1;
    }

    /// Removes a tombstone if it still holds exactly that version and is past the grace.
    fn purge(&mut self, key: Key, version: Version, grace_ms: u64) -> Committed {
        let wall = self.clock.now_millis();
        let Some(r) = self.durable.records.get(&key) else {
            return Committed::Nothing;
        };
        if !r.tombstone || r.version != version || wall.saturating_sub(version.millis()) < grace_ms
        {
            return Committed::Nothing;
        }
        self.durable.records.remove(&key);
        let p = self.durable.purged.entry(key.clone()).or_default();
        *p = (*p).max(version);
        Committed::Purged { key, version }
    }

    /// Keeps each log to `log_keep` entries, never fewer than one.
    fn trim(&mut self) {
        for log in &mut self.durable.logs {
            while log.next - log.first > self.log_keep.max(1) {
                log.entries.remove(&log.first);
                log.first += 1;
            }
        }
    }

    /// The newest version this node holds or held (purged) of `key`.
    pub fn effective(&self, key: &Key) -> Option<Version> {
        let held = self.durable.records.get(key).map(|r| r.version);
        held.max(self.durable.purged.get(key).copied())
    }

    /// Every table's partition digests.
    pub fn digests(&self) -> BTreeMap<String, TableDigest> {
        let mut out: BTreeMap<String, TableDigest> = BTreeMap::new();
        let mut current: Option<(String, u16, PartitionHasher)> = None;
        for ((t, p, id), r) in &self.durable.records {
            if !matches!(&current, Some((ct, cp, _)) if ct == t && cp == p) {
                if let Some((ct, cp, h)) = current.take() {
                    out.entry(ct).or_default().parts.insert(cp, h.finish());
                }
                current = Some((t.clone(), *p, PartitionHasher::default()));
            }
            if let Some((_, _, h)) = current.as_mut() {
                h.add(id, r.version, r.tombstone);
            }
        }
        if let Some((ct, cp, h)) = current.take() {
            out.entry(ct).or_default().parts.insert(cp, h.finish());
        }
        out
    }

    /// One page of a partition after `after`, as the real range read pages it.
    pub fn range(
        &self,
        table: &str,
        partition: u16,
        after: Option<&str>,
        max_bytes: usize,
    ) -> (Vec<RepairRecord>, Option<String>) {
        let lo = (
            table.to_string(),
            partition,
            after.unwrap_or("").to_string(),
        );
        let mut out: Vec<RepairRecord> = Vec::new();
        let mut bytes = 0usize;
        for ((t, p, id), r) in self.durable.records.range(lo..) {
            if t != table || *p != partition {
                break;
            }
            if after == Some(id.as_str()) {
                continue;
            }
            let size = r.body.len() + id.len() + 64;
            if bytes > 0 && bytes + size > max_bytes {
                return (out.clone(), out.last().map(|r| r.id.clone()));
            }
            bytes += size;
            out.push(RepairRecord {
                id: id.clone(),
                clock: r.version.clock,
                node: r.version.node,
                tombstone: r.tombstone,
                body: r.body.clone(),
            });
        }
        (out, None)
    }

    /// Tombstones that may go: below the purge bound and past the grace.
    pub fn purgeable(&self, bound: u64, grace_ms: u64) -> Vec<(Key, Version)> {
        let wall = self.clock.now_millis();
        self.durable
            .records
            .iter()
            .filter(|(_, r)| {
                r.tombstone
                    && r.version.clock < bound
                    && wall.saturating_sub(r.version.millis()) >= grace_ms
            })
            .map(|(k, r)| (k.clone(), r.version))
            .collect()
    }
}

pub fn version_of(c: &Change) -> Version {
    Version {
        clock: c.clock,
        node: c.node,
    }
}

impl LogView for Node {
    fn head(&self, shard: usize) -> LogHead {
        let log = &self.durable.logs[shard];
        LogHead {
            own_clock: self.vol.as_ref().map_or(0, |v| v.own_clock[shard]),
            next: log.next,
            first: log.first,
        }
    }

    fn read_batch(
        &self,
        shard: usize,
        from: u64,
        next: u64,
        max_bytes: usize,
    ) -> Result<Option<(Vec<Entry>, u64)>, String> {
        let log = &self.durable.logs[shard];
        if from < log.first || from >= next {
            return Ok(None);
        }
        let (mut entries, mut upto, mut bytes) = (Vec::new(), from, 0usize);
        for (seq, c) in log.entries.range(from..next) {
            let size = c.body.len() + c.id.len() + c.table.len() + 32;
            if bytes > 0 && (bytes + size > max_bytes || (upto - from) as usize >= MAX_BATCH) {
                break;
            }
            upto = seq + 1;
            bytes += size;
            if c.node == self.id {
                entries.push(Entry {
                    seq: *seq,
                    change: c.clone(),
                });
            }
        }
        Ok(Some((entries, upto)))
    }

    fn written_ms(&self, shard: usize, seq: u64) -> Option<u64> {
        self.durable.logs[shard]
            .entries
            .get(&seq)
            .map(|c| c.clock >> 16)
    }
}
