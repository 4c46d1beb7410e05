//! A shard's storage writer: the one thread that writes the shard's partitions. Shards send it
//! `WriterMsg`s over a bounded channel; it applies them in arrival order (so preconditions such
//! as `If-Match` are exact and `AddTo` is an exact counter), assigns versions from the shard's
//! hybrid logical clock, maintains secondary indexes and the change log, and commits each group
//! of waiting messages as one batch — one fsync per group in `sync` mode (group commit). It
//! runs on its own OS thread so fsync, write backpressure and compaction never stall a shard's
//! executor.
//!
//! This file owns the writer's messages, answers and settings and its receive loop. Inside:
//! `local` decides local writes (preconditions, operations, atomic batches), `check` runs the
//! checks installed above storage on them, `replica` decides replicated changes, `version`
//! stores whatever either decided, `group` commits a group and answers everyone in it,
//! `maintenance` trims the log and rebuilds tables.

use super::catalog::TableDef;
use super::changelog::ChangeBatch;
use super::envelope::Envelope;
use super::hlc::{Hlc, Version};
use super::index_key;
use super::keys;
use super::shard_db::ShardDb;
use crate::config::Durability;
use fjall::PersistMode;
use rkyv::{Archive, Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod check;
mod group;
mod local;
mod maintenance;
mod replica;
#[cfg(test)]
mod tests;
mod version;

/// What a write does. New variants go last: the order is part of the archived form.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Replace (or create) the record with this normalized JSON document.
    Put {
        body: Vec<u8>,
    },
    /// Create only: fails with `Exists` if a live record has the id.
    Create {
        body: Vec<u8>,
    },
    /// Shallow merge of these top-level fields (a JSON object) into the live record.
    Patch {
        fields: Vec<u8>,
    },
    Delete,
    /// Adds numbers to top-level fields of the live record: a JSON object of field → number.
    /// A missing field counts as 0. Integers stay integers while the sum fits in an i64;
    /// otherwise the sum is a float. Exact under concurrency: the writer orders it.
    AddTo {
        fields: Vec<u8>,
    },
}

/// A condition the current record must meet for the write to apply. "Current" includes the
/// earlier writes of the same group and of the same atomic batch. New variants go last.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// `If-Match`: the live record's version must be exactly this.
    IfMatch {
        clock: u64,
        node: u16,
    },
    /// `If-None-Match: *`: no live record may exist.
    IfAbsent,
    /// `If-Match: *`: a live record must exist.
    IfExists,
}

/// The message a shard sends to the owning writer.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WriteRequest {
    pub table: String,
    pub id: String,
    pub partition: u16,
    pub op: WriteOp,
    pub precondition: Precondition,
}

/// The writer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Written {
        version: Version,
        /// No live record had the id before.
        created: bool,
        /// The stored document when the caller did not send it whole (`Patch`, `AddTo`);
        /// `None` for the other operations.
        body: Option<Vec<u8>>,
    },
    NotFound,
    Exists,
    PreconditionFailed,
    /// The request was wrong (e.g. a PATCH body that is not an object).
    Invalid(String),
    /// Storage failed; the write did not happen.
    Failed(String),
    /// A check of the table (`WriteCheck`) refused the write, with this status and message.
    Rejected {
        status: u16,
        message: String,
    },
}

pub type Reply = flume::Sender<WriteOutcome>;

/// The writer's answer to an atomic batch: all of it was stored, or none of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtomicOutcome {
    /// Every write applied, in order, in one commit: one `Written` per write.
    Committed(Vec<WriteOutcome>),
    /// Write `index` did not apply (`outcome` says why); nothing of the batch was stored.
    Aborted { index: usize, outcome: WriteOutcome },
    /// Every write applied but the commit failed; nothing of the batch was stored.
    Failed(String),
}

pub type AtomicReply = flume::Sender<AtomicOutcome>;

/// Everything a writer can be asked.
pub enum WriterMsg {
    Write {
        req: WriteRequest,
        table: Arc<TableDef>,
        reply: Reply,
    },
    /// Writes of one partition that apply together or not at all, in order: a later write sees
    /// the earlier ones (create then patch one id). The caller groups them by partition; the
    /// writer refuses a batch that spans partitions and stores nothing of it.
    WriteAtomic {
        writes: Vec<(WriteRequest, Arc<TableDef>)>,
        reply: AtomicReply,
    },
    /// Remove every record and index entry of a table.
    DropTable {
        table: String,
        done: flume::Sender<Result<(), String>>,
    },
    /// Rebuild the index entries of a table from its records (after indexes changed).
    Reindex {
        table: Arc<TableDef>,
        old_indexes: Vec<String>,
        done: flume::Sender<Result<(), String>>,
    },
    /// Put or delete keys of an auxiliary keyspace (MQTT state) as one atomic batch, in the
    /// order of arrival. Committed with the group it arrives in (`kv::Merged`); `done` is
    /// answered after that commit.
    KvBatch {
        ops: Vec<super::kv::KvOp>,
        done: Option<super::kv::KvReply>,
    },
    /// Flush everything to disk and stop.
    Stop { done: flume::Sender<()> },
    /// Changes made on other nodes: each is applied if its version is newer than the stored
    /// one (last-writer-wins), and observed by the clock either way. The reply comes after the
    /// commit that holds them (`Ok(applied)`), or says what stopped them (`ReplicateReply`).
    Replicate {
        changes: Vec<RemoteChange>,
        reply: ReplicateReply,
    },
    /// Removes tombstones that every node has (replication decides which): each key is removed
    /// only if it still holds a tombstone of exactly that version. Answers how many went.
    PurgeTombstones {
        keys: Vec<(Vec<u8>, Version)>,
        reply: flume::Sender<usize>,
    },
    /// Stores one value in another keyspace of this shard's database (replication cursors),
    /// committed with the group so it is durable once `done` answers.
    PutMeta {
        keyspace: fjall::Keyspace,
        key: Vec<u8>,
        value: Vec<u8>,
        done: flume::Sender<Result<(), String>>,
    },
}

pub use check::{Object, Refusal, WriteCheck};
pub use replica::{RemoteChange, ReplicateReply};

/// Counters a writer keeps, readable from any thread (status endpoint).
#[derive(Debug, Default)]
pub struct WriterStats {
    pub records: AtomicI64,
    pub writes: AtomicU64,
    pub batches: AtomicU64,
    pub changelog_first: AtomicU64,
    pub changelog_next: AtomicU64,
    pub failures: AtomicU64,
    /// Change batches a feed consumer was too slow to take.
    pub feed_drops: AtomicU64,
    /// Changes from other nodes that won last-writer-wins and were stored.
    pub replicated: AtomicU64,
    /// Changes from other nodes that lost to a newer stored version (or were duplicates).
    pub replicated_stale: AtomicU64,
    /// A clock such that every local change of this writer with a clock up to it is committed
    /// below `changelog_next`; stored after `changelog_next` (Release), between groups, so a
    /// reader that loads this first (Acquire) and then `changelog_next` may rely on it.
    pub own_clock: AtomicU64,
    pub tombstones_purged: AtomicU64,
    /// Commits that stored a change to an internal table (a name starting with `_`), counted
    /// after the commit: a reader that caches such a table reads it again when this moves.
    pub internal_commits: Lone,
    /// Messages per committed group (1 to 512: `MAX_GROUP`).
    pub group_sizes: GroupSizes,
    /// Microseconds each group's commit took: the batch write and, in `sync` mode, the fsync.
    pub commit_micros: CommitMicros,
}

/// Buckets of group sizes: up to 1, 2, 4 ... 512 messages.
pub type GroupSizes = super::pow2::Pow2Histogram<11>;
/// Buckets of commit times: up to 1 µs, 2 µs ... about 8.4 s, then above.
pub type CommitMicros = super::pow2::Pow2Histogram<25>;

/// A counter alone on its cache lines: other threads read it on every request, and the
/// writer's busy counters beside it must not make those reads miss.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Lone(pub AtomicU64);

/// Settings of a writer.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub node_id: u16,
    /// The wall clock the writer's HLC reads.
    pub clock: crate::storage::clock::Clock,
    pub durability: Durability,
    pub changelog_retention: Duration,
    pub changelog_max_entries: u64,
    /// How long the writer polls for more work before it blocks.
    pub spin: Duration,
}

/// Most writes committed as one batch.
const MAX_GROUP: usize = 512;

/// A running writer.
pub struct Writer {
    db: ShardDb,
    settings: WriterSettings,
    hlc: Hlc,
    next_seq: u64,
    first_seq: u64,
    stats: Arc<WriterStats>,
    /// Set when a commit since the last background fsync has not been synced yet.
    dirty: Arc<AtomicBool>,
    /// This writer's shard.
    shard: usize,
    /// Consumers of the change feed; each gets every committed batch while its interest
    /// count is above zero.
    feeds: Vec<FeedTarget>,
    /// Rung (never waited on) after a commit that logged a change made on this node.
    log_grew: Option<flume::Sender<()>>,
    /// The node's tables, for replicated changes that arrive without a definition.
    catalog: Option<crate::storage::catalog::SharedCatalog>,
    /// The check local writes must pass (`check.rs`); `None`: no table is checked.
    check: Option<Arc<dyn WriteCheck>>,
}

/// A consumer of a writer's change feed.
#[derive(Clone)]
pub struct FeedTarget {
    pub tx: flume::Sender<Arc<ChangeBatch>>,
    /// How many listeners the consumer has; the writer skips consumers with none.
    pub interest: Arc<AtomicU64>,
}

impl Writer {
    /// Prepares a writer: reads the last change to seed the clock and sequence, counts records.
    pub fn new(
        db: ShardDb,
        settings: WriterSettings,
        dirty: Arc<AtomicBool>,
    ) -> fjall::Result<Writer> {
        let mut hlc = Hlc::new(settings.node_id, settings.clock.clone());
        let (next_seq, first_seq) = match db.last_change()? {
            Some((seq, v)) => {
                hlc.observe(v);
                (seq + 1, db.first_seq()?.unwrap_or(seq))
            }
            None => (1, 1),
        };
        let stats = Arc::new(WriterStats::default());
        let mut live = 0i64;
        for guard in db.records.iter() {
            let (_, v) = guard.into_inner()?;
            if let Some(env) = Envelope::decode(&v) {
                hlc.observe(env.version);
                if !env.tombstone {
                    live += 1;
                }
            }
        }
        stats.records.store(live, Ordering::Relaxed);
        // Nothing is in flight yet: every change with a clock up to here is committed.
        stats
            .own_clock
            .store(hlc.now().clock.saturating_sub(1), Ordering::Relaxed);
        stats.changelog_first.store(first_seq, Ordering::Relaxed);
        stats.changelog_next.store(next_seq, Ordering::Relaxed);
        Ok(Writer {
            db,
            settings,
            hlc,
            next_seq,
            first_seq,
            stats,
            dirty,
            shard: 0,
            feeds: Vec::new(),
            log_grew: None,
            catalog: None,
            check: None,
        })
    }

    /// Sets the shard this writer serves and the consumers of its change feed.
    pub fn with_feeds(mut self, shard: usize, feeds: Vec<FeedTarget>) -> Writer {
        self.shard = shard;
        self.feeds = feeds;
        self
    }

    /// Sets the signal rung when local changes reach the change log (replication streams).
    pub fn with_log_signal(mut self, tx: Option<flume::Sender<()>>) -> Writer {
        self.log_grew = tx;
        self
    }

    /// Sets the node catalog consulted for replicated changes of tables the sender did not
    /// know (a table created here after the change was routed).
    pub fn with_catalog(mut self, catalog: crate::storage::catalog::SharedCatalog) -> Writer {
        self.catalog = Some(catalog);
        self
    }

    pub fn stats(&self) -> Arc<WriterStats> {
        self.stats.clone()
    }

    /// Runs until `Stop` arrives or every sender is gone.
    pub fn run(mut self, rx: flume::Receiver<WriterMsg>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        let mut last_trim = Instant::now();
        loop {
            let first = match spin_recv(&rx, self.settings.spin) {
                Some(m) => Some(m),
                None => match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(m) => Some(m),
                    Err(flume::RecvTimeoutError::Timeout) => None,
                    Err(flume::RecvTimeoutError::Disconnected) => break,
                },
            };
            if let Some(first) = first {
                group.push(first);
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(m) => group.push(m),
                        Err(_) => break,
                    }
                }
                if self.handle_group(&mut group) {
                    return;
                }
            }
            self.publish_own_clock();
            if last_trim.elapsed() > Duration::from_secs(1) {
                last_trim = Instant::now();
                if let Err(e) = self.trim_changelog() {
                    tracing::warn!("change log trim failed: {e}");
                }
            }
        }
        self.flush();
    }

    fn flush(&self) {
        if let Err(e) = self.db.db.persist(PersistMode::SyncAll) {
            tracing::error!("final flush failed: {e}");
        }
    }
}

/// The index keys a document contributes for one attribute.
pub fn index_entries(table: &str, attr: &str, doc: Option<&Value>, id: &str) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    let Some(value) = doc.and_then(|d| d.get(attr)) else {
        return out;
    };
    let prefix = keys::index_prefix(table, attr);
    for term in index_key::index_terms(value) {
        let mut k = prefix.clone();
        if index_key::encode_value(term, &mut k) {
            k.extend_from_slice(id.as_bytes());
            out.insert(k);
        }
    }
    out
}

/// Polls the queue for up to `spin` before the caller blocks: under load the next write
/// arrives within microseconds, and a futex sleep and wake-up per group would cost more.
fn spin_recv(rx: &flume::Receiver<WriterMsg>, spin: Duration) -> Option<WriterMsg> {
    if spin.is_zero() {
        return None;
    }
    let until = Instant::now() + spin;
    loop {
        if let Ok(m) = rx.try_recv() {
            return Some(m);
        }
        if Instant::now() >= until {
            return None;
        }
        std::hint::spin_loop();
    }
}

/// Counter shared by a shard's senders: how many writes are queued (for 503 decisions).
pub type QueueGauge = Arc<AtomicU64>;
