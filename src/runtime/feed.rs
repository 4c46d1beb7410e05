//! A shard's end of the change feed: every writer hands each committed batch to every shard;
//! this task takes them in order and passes them to the shard's listeners (subscriptions of
//! its own connections). It tracks the last sequence seen per writer so a gap (a batch the
//! writer had to drop because this shard was too slow) is visible and can be filled from the
//! change log.

use super::shard::Shard;
use crate::storage::changelog::{Change, ChangeBatch};
use crate::storage::keys;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Most changes read back from a change log to fill one gap.
const MAX_GAP_FILL: u64 = 10_000;

/// A local consumer of committed changes (e.g. the subscription registry of a protocol).
pub type FeedListener = Box<dyn Fn(&Arc<ChangeBatch>)>;

pub async fn run(shard: Rc<Shard>, rx: flume::Receiver<Arc<ChangeBatch>>) {
    while let Ok(batch) = rx.recv_async().await {
        let expected = shard
            .feed_next_seq
            .borrow()
            .get(batch.shard)
            .copied()
            .unwrap_or(0);
        let end = batch.first_seq + batch.changes.len() as u64;
        if expected != 0 && end <= expected {
            // Committed before this shard's position was reset: already in what it read.
            continue;
        }
        if expected != 0 && batch.first_seq < expected {
            // A writer hands its batches over in commit order: an older one now is a bug.
            tracing::error!(
                shard = shard.id,
                writer = batch.shard,
                first_seq = batch.first_seq,
                expected,
                "change feed out of order: batch ignored"
            );
            debug_assert!(false, "change feed out of order");
            continue;
        }
        if expected != 0 && batch.first_seq > expected {
            fill_gap(&shard, batch.shard, expected, batch.first_seq);
        }
        if let Some(next) = shard.feed_next_seq.borrow_mut().get_mut(batch.shard) {
            *next = batch.first_seq + batch.changes.len() as u64;
        }
        for listener in shard.feed_listeners.borrow().iter() {
            listener(&batch);
        }
    }
}

/// Hands the listeners the changes `from..to` of writer `w` that the feed dropped, read back
/// from that shard's change log (what it still holds, at most `MAX_GAP_FILL`).
fn fill_gap(shard: &Shard, w: usize, from: u64, to: u64) {
    let start = from.max(to.saturating_sub(MAX_GAP_FILL));
    let mut changes = Vec::new();
    for seq in start..to {
        match shard.node.dbs[w].changelog.get(keys::seq_key(seq)) {
            Ok(Some(v)) => changes.extend(Change::decode(&v)),
            _ => break,
        }
    }
    if start > from || changes.len() as u64 != to - start {
        tracing::warn!(
            shard = shard.id,
            writer = w,
            from,
            to,
            filled = changes.len(),
            "change feed gap only partly filled from the change log"
        );
    }
    if changes.is_empty() {
        return;
    }
    let batch = Arc::new(ChangeBatch {
        shard: w,
        first_seq: start,
        changes,
    });
    for listener in shard.feed_listeners.borrow().iter() {
        listener(&batch);
    }
}

/// Restarts each writer's feed position at what it has committed now, for a listener that
/// starts after a time with no interest in the feed (the writers skipped this shard on
/// purpose). Call it after the interest is registered and before reading current state: a
/// group that began before the interest showed is not fed, but it commits at or past this
/// position, so the next batch shows the gap and it is read back from the change log; a group
/// committed before is in the state read after this (its commit precedes the Release store
/// of `changelog_next`). Changes seen both ways are deduplicated by version downstream.
pub fn reset_positions(shard: &Shard) {
    let stats = &shard.node.writer_stats;
    for (w, next) in shard.feed_next_seq.borrow_mut().iter_mut().enumerate() {
        *next = stats[w].changelog_next.load(Ordering::Acquire);
    }
}
