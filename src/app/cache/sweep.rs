//! Eviction: every shard periodically walks its own partitions of each caching table and
//! deletes the records older than expiration + eviction. The walk reads a bounded batch,
//! deletes what expired, and yields before the next batch; each delete is a compare-and-set
//! on the version the walk saw, so a record written meanwhile is never evicted.

use super::node::count;
use crate::app::shard::AppShard;
use crate::runtime::records::{self, Precondition, RecordError};
use crate::storage::envelope::Envelope;
use crate::storage::hlc::Version;
use crate::storage::keys;
use crate::storage::shard_db::{prefix_successor, ShardDb};
use std::ops::Bound;
use std::rc::Rc;
use std::time::Duration;

/// Records read per step of a walk.
const BATCH: usize = 256;

/// Sweeps caching table `cache` on this shard every period until the shard drains.
pub(crate) async fn run(shard: Rc<AppShard>, cache: usize) {
    let spec = &shard.caches.node.tables[cache].spec;
    let Some(eviction) = spec.eviction else {
        return;
    };
    let keep = spec.expiration + eviction;
    let every = spec.sweep_every(eviction);
    loop {
        glommio::timer::sleep(every).await;
        if shard.draining.get() {
            return;
        }
        walk(&shard, cache, keep).await;
    }
}

/// One walk over this shard's records of the table.
async fn walk(shard: &Rc<AppShard>, cache: usize, keep: Duration) {
    let entry = &shard.caches.node.tables[cache];
    let Some(def) = shard.table(&entry.spec.table) else {
        return;
    };
    let mut after: Option<Vec<u8>> = None;
    loop {
        let cutoff = crate::storage::now_millis().saturating_sub(keep.as_millis() as u64);
        let db = &shard.node.dbs[shard.id];
        let (expired, next) = match expired_batch(db, &def.name, after.as_deref(), cutoff) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(table = %def.name, "the eviction sweep cannot read: {e}");
                return;
            }
        };
        for (id, v) in expired {
            if shard.locate(&def.name, &id).1 != shard.id {
                continue;
            }
            let pre = Precondition::IfMatch {
                clock: v.clock,
                node: v.node,
            };
            match records::delete(shard, &def, &id, pre).await {
                Ok(_) => count(&entry.stats.evicted),
                // The writer is busy or stopping: the next walk tries again.
                Err(RecordError::Busy | RecordError::Stopping) => return,
                Err(_) => {}
            }
        }
        match next {
            Some(k) if !shard.draining.get() => after = Some(k),
            _ => return,
        }
        glommio::yield_if_needed().await;
    }
}

/// Up to `BATCH` records of `table` after key `after`: the (id, version) of those whose
/// version is older than `cutoff` (ms), and the key to go on from (`None`: the end).
type Batch = (Vec<(String, Version)>, Option<Vec<u8>>);

fn expired_batch(
    db: &ShardDb,
    table: &str,
    after: Option<&[u8]>,
    cutoff: u64,
) -> Result<Batch, fjall::Error> {
    let mut prefix = Vec::with_capacity(table.len() + 1);
    keys::table_prefix(table, &mut prefix);
    let lower = match after {
        Some(k) => Bound::Excluded(k.to_vec()),
        None => Bound::Included(prefix.clone()),
    };
    let upper = match prefix_successor(&prefix) {
        Some(s) => Bound::Excluded(s),
        None => Bound::Unbounded,
    };
    let mut expired = Vec::new();
    let mut last = None;
    for (read, guard) in db.records.range::<Vec<u8>, _>((lower, upper)).enumerate() {
        if read == BATCH {
            return Ok((expired, last));
        }
        let (k, v) = guard.into_inner()?;
        if let (Some(env), Some((_, _, id))) = (Envelope::decode(&v), keys::split_record_key(&k)) {
            if !env.tombstone && env.version.millis() < cutoff {
                expired.push((id.to_string(), env.version));
            }
        }
        last = Some(k.to_vec());
    }
    Ok((expired, None))
}
