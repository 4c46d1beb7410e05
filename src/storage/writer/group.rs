//! One group commit: the messages that were waiting when the writer woke, applied in order into
//! one fjall batch, committed (and made durable) once, then answered — every reply after the
//! commit, or every reply failed if the commit failed. Then the group's changes go to the feed.

use super::version::Overlay;
use super::{AtomicOutcome, AtomicReply, ReplicateReply, Reply, WriteOutcome, Writer, WriterMsg};
use crate::config::Durability;
use crate::storage::changelog::{Change, ChangeBatch};
use crate::storage::kv;
use fjall::PersistMode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a group stored so far and who waits for its commit.
pub(super) struct Group {
    pub batch: fjall::OwnedWriteBatch,
    /// Record values stored by this group: later writes of the group read them first.
    pub overlay: Overlay,
    /// Sequence of the group's first change-log entry.
    pub first_seq: u64,
    /// Change-log entries stored; they hold `first_seq..first_seq + logged`.
    pub logged: u64,
    /// Whether the group's changes are kept for the feed (decided once, so a published batch
    /// holds every change of its sequence range or none).
    pub feeding: bool,
    /// The group's changes, in sequence order, when `feeding`.
    pub changes: Vec<Change>,
    /// A change made on this node was logged.
    pub logged_own: bool,
    /// A change to an internal table (`_schema`, `_users`...) was stored.
    pub internal: bool,
    pub record_delta: i64,
    /// Local writes stored.
    pub written: u64,
    pub purged: u64,
    /// Auxiliary batches (MQTT state), merged into the commit at its end.
    pub aux: kv::Merged,
    pub replies: Replies,
    pub stop: Option<flume::Sender<()>>,
}

/// One answer waiting for the commit, as it will be sent if the commit succeeds.
enum Waiting {
    Write(Reply, WriteOutcome),
    Atomic(AtomicReply, AtomicOutcome),
    Replicate(ReplicateReply, Result<usize, String>),
    Done(flume::Sender<Result<(), String>>, Result<(), String>),
    Purge(flume::Sender<usize>, usize),
}

/// Every answer a group owes, in arrival order.
pub(super) struct Replies(Vec<Waiting>);

impl Replies {
    /// The commit failed: nothing the group stored exists. Answers that reported something
    /// stored now say it failed; refusals (not found, precondition...) stay as they were.
    fn fail_all(&mut self, why: &str) {
        for w in &mut self.0 {
            match w {
                Waiting::Write(_, o @ WriteOutcome::Written { .. }) => {
                    *o = WriteOutcome::Failed(why.to_string())
                }
                Waiting::Atomic(_, o @ AtomicOutcome::Committed(_)) => {
                    *o = AtomicOutcome::Failed(why.to_string())
                }
                Waiting::Replicate(_, r) => *r = Err(why.to_string()),
                Waiting::Done(_, r) => *r = Err(why.to_string()),
                Waiting::Purge(_, n) => *n = 0,
                Waiting::Write(..) | Waiting::Atomic(..) => {}
            }
        }
    }

    /// Sends every answer. A requester that gave up is no error.
    fn send_all(self) {
        for w in self.0 {
            match w {
                Waiting::Write(tx, o) => drop(tx.send(o)),
                Waiting::Atomic(tx, o) => drop(tx.send(o)),
                Waiting::Replicate(tx, r) => drop(tx.send(r)),
                Waiting::Done(tx, r) => drop(tx.send(r)),
                Waiting::Purge(tx, n) => drop(tx.send(n)),
            }
        }
    }
}

impl Writer {
    /// Applies a group of messages, commits it and answers it; returns true when asked to stop.
    pub(super) fn handle_group(&mut self, msgs: &mut Vec<WriterMsg>) -> bool {
        let mut g = self.start_group(msgs.len());
        for msg in msgs.drain(..) {
            self.take(msg, &mut g);
        }
        let stop = g.stop.take();
        self.commit(g).send_all();
        match stop {
            Some(done) => {
                self.flush();
                let _ = done.send(());
                true
            }
            None => false,
        }
    }

    fn start_group(&self, len: usize) -> Group {
        Group {
            batch: self.db.db.batch(),
            overlay: Overlay::new(),
            first_seq: self.next_seq,
            logged: 0,
            feeding: self
                .feeds
                .iter()
                .any(|f| f.interest.load(Ordering::Relaxed) > 0),
            changes: Vec::new(),
            logged_own: false,
            internal: false,
            record_delta: 0,
            written: 0,
            purged: 0,
            aux: kv::Merged::default(),
            replies: Replies(Vec::with_capacity(len)),
            stop: None,
        }
    }

    /// Applies one message into the group; table upkeep runs (and is answered) at once.
    fn take(&mut self, msg: WriterMsg, g: &mut Group) {
        let waiting = match msg {
            WriterMsg::Write { req, table, reply } => {
                Waiting::Write(reply, self.write_one(&req, &table, g))
            }
            WriterMsg::WriteAtomic { writes, reply } => {
                Waiting::Atomic(reply, self.write_atomic(&writes, g))
            }
            WriterMsg::Replicate { changes, reply } => {
                Waiting::Replicate(reply, self.replicate(changes, g))
            }
            WriterMsg::PutMeta {
                keyspace,
                key,
                value,
                done,
            } => {
                g.batch.insert(&keyspace, key, value);
                Waiting::Done(done, Ok(()))
            }
            WriterMsg::PurgeTombstones { keys, reply } => {
                let n = self.purge(&keys, g);
                Waiting::Purge(reply, n)
            }
            WriterMsg::KvBatch { ops, done } => {
                // Into the group's commit: one journal write (one fsync in sync mode) for
                // every batch that queued up while the previous group was written.
                g.aux.add(ops);
                let Some(done) = done else { return };
                Waiting::Done(done, Ok(()))
            }
            WriterMsg::DropTable { table, done } => {
                let _ = done.send(self.drop_table(&table).map_err(|e| e.to_string()));
                return;
            }
            WriterMsg::Reindex {
                table,
                old_indexes,
                done,
            } => {
                let r = self.reindex(&table, &old_indexes);
                let _ = done.send(r.map_err(|e| e.to_string()));
                return;
            }
            WriterMsg::Stop { done } => {
                g.stop = Some(done);
                return;
            }
        };
        g.replies.0.push(waiting);
    }

    /// Commits what the group stored (if anything); returns the answers to send.
    fn commit(&mut self, mut g: Group) -> Replies {
        g.aux.write_into(&self.db, &mut g.batch);
        if g.batch.is_empty() {
            return g.replies;
        }
        assert_eq!(
            g.first_seq + g.logged,
            self.next_seq,
            "a group's change-log sequences must be contiguous"
        );
        let started = std::time::Instant::now();
        let result = g
            .batch
            .commit()
            .and_then(|_| self.db.db.persist(self.persist_mode()));
        match result {
            Ok(()) => {
                let micros = started.elapsed().as_micros();
                self.stats.commit_micros.record(micros as u64);
                self.stats.group_sizes.record(g.replies.0.len() as u64);
                self.count_commit(g.record_delta, g.written, g.purged);
                if g.internal {
                    self.stats
                        .internal_commits
                        .0
                        .fetch_add(1, Ordering::Release);
                }
                self.publish(g.first_seq, g.changes, g.logged_own);
            }
            Err(e) => {
                // Nothing of the group is stored: reuse its sequence numbers.
                self.next_seq = g.first_seq;
                tracing::error!("commit of a group of {} writes failed: {e}", g.written);
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                g.replies.fail_all(&format!("storage commit failed: {e}"));
            }
        }
        g.replies
    }

    fn persist_mode(&self) -> PersistMode {
        match self.settings.durability {
            Durability::Sync => PersistMode::SyncData,
            // In the OS's hands: a killed process loses nothing; a power loss loses what the
            // background fsync has not covered yet.
            Durability::Buffered => PersistMode::Buffer,
        }
    }

    fn count_commit(&self, record_delta: i64, written: u64, purged: u64) {
        self.dirty.store(true, Ordering::Release);
        let s = &self.stats;
        s.records.fetch_add(record_delta, Ordering::Relaxed);
        s.writes.fetch_add(written, Ordering::Relaxed);
        s.batches.fetch_add(1, Ordering::Relaxed);
        // Release: a reader that loads it (Acquire) sees the group's commit (`feed::reset_positions`).
        s.changelog_next.store(self.next_seq, Ordering::Release);
        s.tombstones_purged.fetch_add(purged, Ordering::Relaxed);
    }

    /// Hands a committed group's changes to every feed consumer with listeners.
    fn publish(&mut self, first_seq: u64, changes: Vec<Change>, logged_own: bool) {
        if let (Some(tx), true) = (&self.log_grew, logged_own) {
            // Full means it is rung already and not yet answered: nothing to add.
            let _ = tx.try_send(());
        }
        if changes.is_empty() {
            return;
        }
        assert_eq!(
            first_seq + changes.len() as u64,
            self.next_seq,
            "a published change batch must hold exactly the sequences its group logged"
        );
        let batch = Arc::new(ChangeBatch {
            shard: self.shard,
            first_seq,
            changes,
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
