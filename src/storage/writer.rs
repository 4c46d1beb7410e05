//! A shard's storage writer: the one thread that writes the shard's partitions. Shards send
//! it `WriteCmd`s over a bounded channel; it applies them in arrival order (so preconditions
//! such as `If-Match` are exact), assigns versions from the shard's hybrid logical clock,
//! maintains secondary indexes and the change log, and commits each group of waiting writes
//! as one batch — one fsync per group in `sync` mode (group commit). It runs on its own OS
//! thread so fsync, write backpressure and compaction never stall a shard's executor.

use super::catalog::TableDef;
use super::changelog::{Change, ChangeBatch, ChangeOp};
use super::envelope::Envelope;
use super::hlc::{Hlc, Version};
use super::index_key;
use super::keys;
use super::shard_db::ShardDb;
use crate::config::Durability;
use fjall::PersistMode;
use rkyv::{Archive, Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod maintenance;
mod replica;

/// What a write does.
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
}

/// A condition the current record must meet for the write to apply.
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
        created: bool,
    },
    NotFound,
    Exists,
    PreconditionFailed,
    /// The request was wrong (e.g. a PATCH body that is not an object).
    Invalid(String),
    /// Storage failed; the write did not happen.
    Failed(String),
}

pub type Reply = flume::Sender<WriteOutcome>;

/// Everything a writer can be asked.
pub enum WriterMsg {
    Write {
        req: WriteRequest,
        table: Arc<TableDef>,
        reply: Reply,
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
    /// commit that holds them (`Ok(applied)`), or says why nothing was stored.
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
}

/// Settings of a writer.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub node_id: u16,
    pub clock_offset_ms: i64,
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
    /// Changes of the group being committed.
    pending: Vec<Change>,
    /// Rung (never waited on) after a commit that logged a change made on this node.
    log_grew: Option<flume::Sender<()>>,
    /// The group being committed logged a change made on this node.
    logged_own: bool,
    /// The node's tables, for replicated changes that arrive without a definition.
    catalog: Option<crate::storage::catalog::SharedCatalog>,
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
        let mut hlc = Hlc::new(settings.node_id, settings.clock_offset_ms);
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
            pending: Vec::new(),
            log_grew: None,
            logged_own: false,
            catalog: None,
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

    /// Applies a group; returns true when asked to stop.
    fn handle_group(&mut self, group: &mut Vec<WriterMsg>) -> bool {
        let mut batch = self.db.db.batch();
        let mut overlay: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
        let mut replies: Vec<(Reply, WriteOutcome)> = Vec::with_capacity(group.len());
        let mut stop = None;
        let mut record_delta = 0i64;
        // Replicated changes and meta values in this group (they need a commit too).
        let mut other_writes = 0usize;
        let mut remote_replies: Vec<(ReplicateReply, Result<usize, String>)> = Vec::new();
        let mut meta_replies: Vec<flume::Sender<Result<(), String>>> = Vec::new();
        let mut purge_replies: Vec<(flume::Sender<usize>, usize)> = Vec::new();
        // Auxiliary batches (MQTT state) of this group, committed with it, and their replies.
        let mut aux = super::kv::Merged::default();
        let mut aux_replies: Vec<super::kv::KvReply> = Vec::new();
        let first_seq = self.next_seq;
        self.pending.clear();
        for msg in group.drain(..) {
            match msg {
                WriterMsg::Write { req, table, reply } => {
                    let outcome =
                        self.apply(&req, &table, &mut batch, &mut overlay, &mut record_delta);
                    replies.push((reply, outcome));
                }
                WriterMsg::DropTable { table, done } => {
                    let _ = done.send(self.drop_table(&table).map_err(|e| e.to_string()));
                }
                WriterMsg::Reindex {
                    table,
                    old_indexes,
                    done,
                } => {
                    let _ = done.send(
                        self.reindex(&table, &old_indexes)
                            .map_err(|e| e.to_string()),
                    );
                }
                WriterMsg::KvBatch { ops, done } => {
                    // Into the group's commit: one journal write (one fsync in sync mode) for
                    // every batch that queued up while the previous group was written.
                    aux.add(ops);
                    aux_replies.extend(done);
                }
                WriterMsg::Stop { done } => stop = Some(done),
                WriterMsg::Replicate { changes, reply } => {
                    let mut applied = 0usize;
                    let mut failed = None;
                    for rc in &changes {
                        match self.apply_remote(rc, &mut batch, &mut overlay, &mut record_delta) {
                            Ok(true) => applied += 1,
                            Ok(false) => {}
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    self.stats
                        .replicated
                        .fetch_add(applied as u64, Ordering::Relaxed);
                    self.stats
                        .replicated_stale
                        .fetch_add((changes.len() - applied) as u64, Ordering::Relaxed);
                    other_writes += applied;
                    remote_replies.push((reply, failed.map_or(Ok(applied), Err)));
                }
                WriterMsg::PutMeta {
                    keyspace,
                    key,
                    value,
                    done,
                } => {
                    batch.insert(&keyspace, key, value);
                    other_writes += 1;
                    meta_replies.push(done);
                }
                WriterMsg::PurgeTombstones { keys, reply } => {
                    let n = self.purge(&keys, &mut batch, &mut overlay);
                    other_writes += n;
                    purge_replies.push((reply, n));
                }
            }
        }
        other_writes += aux.write_into(&self.db, &mut batch);
        let written = replies
            .iter()
            .filter(|(_, o)| matches!(o, WriteOutcome::Written { .. }))
            .count();
        if written + other_writes > 0 {
            let mode = match self.settings.durability {
                Durability::Sync => PersistMode::SyncData,
                // In the OS's hands: a killed process loses nothing; a power loss loses what
                // the background fsync has not covered yet.
                Durability::Buffered => PersistMode::Buffer,
            };
            let result = batch.commit().and_then(|_| self.db.db.persist(mode));
            match result {
                Ok(()) => {
                    self.dirty.store(true, Ordering::Release);
                    self.stats
                        .records
                        .fetch_add(record_delta, Ordering::Relaxed);
                    self.stats
                        .writes
                        .fetch_add(written as u64, Ordering::Relaxed);
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .changelog_next
                        .store(self.next_seq, Ordering::Relaxed);
                    let purged: usize = purge_replies.iter().map(|(_, n)| n).sum();
                    self.stats
                        .tombstones_purged
                        .fetch_add(purged as u64, Ordering::Relaxed);
                    self.publish(first_seq);
                }
                Err(e) => {
                    // Nothing of the group is stored: reuse its sequence numbers.
                    self.next_seq = first_seq;
                    self.pending.clear();
                    tracing::error!("commit of {written} writes failed: {e}");
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    for (_, o) in replies.iter_mut() {
                        if matches!(o, WriteOutcome::Written { .. }) {
                            *o = WriteOutcome::Failed(format!("storage commit failed: {e}"));
                        }
                    }
                    for (_, o) in remote_replies.iter_mut() {
                        *o = Err(format!("storage commit failed: {e}"));
                    }
                    for (_, n) in purge_replies.iter_mut() {
                        *n = 0;
                    }
                    for done in meta_replies.drain(..).chain(aux_replies.drain(..)) {
                        let _ = done.send(Err(format!("storage commit failed: {e}")));
                    }
                }
            }
        }
        for (reply, outcome) in remote_replies {
            let _ = reply.send(outcome);
        }
        for done in meta_replies.into_iter().chain(aux_replies) {
            let _ = done.send(Ok(()));
        }
        for (reply, n) in purge_replies {
            let _ = reply.send(n);
        }
        for (reply, outcome) in replies {
            let _ = reply.send(outcome);
        }
        if let Some(done) = stop {
            self.flush();
            let _ = done.send(());
            return true;
        }
        false
    }

    /// Applies one write into the batch; the overlay holds this group's earlier writes.
    fn apply(
        &mut self,
        req: &WriteRequest,
        table: &TableDef,
        batch: &mut fjall::OwnedWriteBatch,
        overlay: &mut HashMap<Vec<u8>, Option<Vec<u8>>>,
        record_delta: &mut i64,
    ) -> WriteOutcome {
        let key = keys::record_key(&req.table, req.partition, &req.id);
        let current: Option<Vec<u8>> = match overlay.get(&key) {
            Some(v) => v.clone(),
            None => match self.db.records.get(&key) {
                Ok(v) => v.map(|s| s.to_vec()),
                Err(e) => return WriteOutcome::Failed(format!("read failed: {e}")),
            },
        };
        let stored_env = current.as_deref().and_then(Envelope::decode);
        if let Some(e) = stored_env {
            // A replicated version may come from a clock ahead of ours: the new one must be newer.
            self.hlc.observe(e.version);
        }
        let live = stored_env.filter(|e| !e.tombstone);
        match req.precondition {
            Precondition::None => {}
            Precondition::IfMatch { clock, node } => {
                if live.map(|e| e.version) != Some(Version { clock, node }) {
                    return WriteOutcome::PreconditionFailed;
                }
            }
            Precondition::IfAbsent => {
                if live.is_some() {
                    return WriteOutcome::PreconditionFailed;
                }
            }
            Precondition::IfExists => {
                if live.is_none() {
                    return WriteOutcome::PreconditionFailed;
                }
            }
        }
        let new_body: Option<Vec<u8>> = match &req.op {
            WriteOp::Put { body } => Some(body.clone()),
            WriteOp::Create { body } => {
                if live.is_some() {
                    return WriteOutcome::Exists;
                }
                Some(body.clone())
            }
            WriteOp::Patch { fields } => {
                let Some(old) = live else {
                    return WriteOutcome::NotFound;
                };
                match merge_patch(old.body, fields) {
                    Ok(b) => Some(b),
                    Err(m) => return WriteOutcome::Invalid(m),
                }
            }
            WriteOp::Delete => {
                if live.is_none() {
                    return WriteOutcome::NotFound;
                }
                None
            }
        };
        let version = self.hlc.now();
        let created = live.is_none();
        // Index maintenance: remove terms the old document had and the new one lacks, add the rest.
        if !table.indexes.is_empty() {
            let old_doc: Option<Value> = live.and_then(|e| serde_json::from_slice(e.body).ok());
            let new_doc: Option<Value> = new_body
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok());
            for attr in &table.indexes {
                let old_terms = index_entries(&req.table, attr, old_doc.as_ref(), &req.id);
                let new_terms = index_entries(&req.table, attr, new_doc.as_ref(), &req.id);
                for k in old_terms.difference(&new_terms) {
                    batch.remove(&self.db.index, k.clone());
                }
                for k in new_terms.difference(&old_terms) {
                    batch.insert(&self.db.index, k.clone(), b"".to_vec());
                }
            }
        }
        let stored = Envelope::encode(
            version,
            new_body.is_none(),
            new_body.as_deref().unwrap_or(b""),
        );
        batch.insert(&self.db.records, key.clone(), stored.clone());
        overlay.insert(key, Some(stored));
        let change = Change {
            table: req.table.clone(),
            id: req.id.clone(),
            clock: version.clock,
            node: version.node,
            op: if new_body.is_some() {
                ChangeOp::Put
            } else {
                ChangeOp::Delete
            },
            body: new_body.unwrap_or_default(),
        };
        batch.insert(
            &self.db.changelog,
            keys::seq_key(self.next_seq).to_vec(),
            change.encode(),
        );
        self.next_seq += 1;
        self.logged_own = true;
        let op = change.op;
        if self
            .feeds
            .iter()
            .any(|f| f.interest.load(Ordering::Relaxed) > 0)
        {
            self.pending.push(change);
        }
        *record_delta += match (created, op) {
            (true, ChangeOp::Put) => 1,
            (false, ChangeOp::Delete) => -1,
            _ => 0,
        };
        WriteOutcome::Written { version, created }
    }

    /// Hands the committed group to every feed consumer.
    fn publish(&mut self, first_seq: u64) {
        if let (Some(tx), true) = (&self.log_grew, std::mem::take(&mut self.logged_own)) {
            // Full means it is rung already and not yet answered: nothing to add.
            let _ = tx.try_send(());
        }
        if self.feeds.is_empty() || self.pending.is_empty() {
            return;
        }
        let batch = Arc::new(ChangeBatch {
            shard: self.shard,
            first_seq,
            changes: std::mem::take(&mut self.pending),
        });
        for feed in &self.feeds {
            if feed.interest.load(Ordering::Relaxed) == 0 {
                continue;
            }
            // Never wait for a consumer: a writer that blocked here would stall every write of
            // its shard. A consumer that falls behind sees the gap in sequence numbers and
            // reads the change log instead.
            if feed.tx.try_send(batch.clone()).is_err() {
                self.stats.feed_drops.fetch_add(1, Ordering::Relaxed);
            }
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

/// Shallow merge: top-level fields of `fields` replace those of `old`.
fn merge_patch(old: &[u8], fields: &[u8]) -> Result<Vec<u8>, String> {
    let mut doc: serde_json::Map<String, Value> = serde_json::from_slice(old)
        .map_err(|e| format!("stored record is not a JSON object: {e}"))?;
    let patch: serde_json::Map<String, Value> = serde_json::from_slice(fields)
        .map_err(|e| format!("PATCH body must be a JSON object: {e}"))?;
    for (k, v) in patch {
        doc.insert(k, v);
    }
    serde_json::to_vec(&doc).map_err(|e| e.to_string())
}

/// Counter shared by a shard's senders: how many writes are queued (for 503 decisions).
pub type QueueGauge = Arc<AtomicU64>;
