//! A shard's end of the change feed: every writer hands each committed batch to every shard;
//! this task takes them in order and passes them to the shard's listeners (subscriptions of
//! its own connections). It tracks the last sequence seen per writer so a gap (a batch the
//! writer had to drop because this shard was too slow) is visible and can be filled from the
//! change log.

use super::shard::Shard;
use crate::storage::changelog::ChangeBatch;
use std::rc::Rc;
use std::sync::Arc;

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
        if expected != 0 && batch.first_seq != expected {
            tracing::warn!(
                shard = shard.id,
                writer = batch.shard,
                expected,
                got = batch.first_seq,
                "change feed gap"
            );
        }
        if let Some(next) = shard.feed_next_seq.borrow_mut().get_mut(batch.shard) {
            *next = batch.first_seq + batch.changes.len() as u64;
        }
        for listener in shard.feed_listeners.borrow().iter() {
            listener(&batch);
        }
    }
}
