//! The owner shard's fetches: one per key at a time. A request joins the fetch running for
//! its key, or is answered at once (a failure still remembered, a record filled since the
//! reader looked, the shard at its bound of origin calls), or starts the fetch. The fetched
//! record is stored with a compare-and-set against the version it replaces (absent, or the
//! stale version seen when the fetch started): when a newer write landed meanwhile, the fill
//! is dropped and the newer record is the answer. Every waiter gets the one outcome.

use super::node::{count, CacheEntry, FillRequest};
use super::shard::{TableState, Waiters};
use super::{Failure, Filled, Outcome};
use crate::app::shard::AppShard;
use crate::app::Doc;
use crate::runtime::records::{self, Precondition, RecordError};
use crate::storage::catalog::TableDef;
use crate::storage::hlc::Version;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// Most reads waiting for one fetch; past it a read is answered 503.
pub const MAX_WAITERS: usize = 4096;

/// Serves a fetch request on the shard that owns its record (never waits).
pub(crate) fn request(shard: &Rc<AppShard>, req: FillRequest) {
    let entry = &shard.caches.node.tables[req.cache];
    let state = &shard.caches.tables[req.cache];
    if let Some(f) = state.negative.borrow_mut().get(&req.id, Instant::now()) {
        return answer(req.reply, Err(f));
    }
    let mut flights = state.flights.borrow_mut();
    if let Some(waiters) = flights.get_mut(&req.id) {
        return join(waiters, req.reply, entry);
    }
    let Some(def) = shard.table(&entry.spec.table) else {
        let m = format!("table {:?} does not exist", entry.spec.table);
        return answer(req.reply, Err(Failure::Origin(m)));
    };
    let current = records::get(shard, &def, &req.id).ok().flatten();
    if let Some(rec) = current
        .as_ref()
        .filter(|r| r.version.millis() >= req.fresh_after)
    {
        let filled = Filled {
            version: Some(rec.version),
            body: Arc::from(rec.body()),
        };
        return answer(req.reply, Ok(filled));
    }
    if flights.len() >= entry.spec.max_fetches {
        count(&entry.stats.busy);
        let m = format!(
            "table {:?} is at its bound of {} origin calls on this shard; retry shortly",
            entry.spec.table, entry.spec.max_fetches
        );
        return answer(req.reply, Err(Failure::Busy(m)));
    }
    flights.insert(req.id.clone(), req.reply.into_iter().collect());
    // glommio runs a spawned task at once, and it may end at once (a function source).
    drop(flights);
    let replacing = current.map(|r| r.version);
    let task = run(shard.clone(), req.cache, def, req.id, replacing);
    glommio::spawn_local(task).detach();
}

/// Adds a reader to a running fetch (a background refresh needs nothing more).
fn join(waiters: &mut Waiters, reply: Option<flume::Sender<Outcome>>, entry: &CacheEntry) {
    let Some(reply) = reply else { return };
    if waiters.len() >= MAX_WAITERS {
        count(&entry.stats.busy);
        let m = format!(
            "too many reads wait for one record of {:?}",
            entry.spec.table
        );
        return answer(Some(reply), Err(Failure::Busy(m)));
    }
    waiters.push(reply);
}

fn answer(reply: Option<flume::Sender<Outcome>>, outcome: Outcome) {
    if let Some(r) = reply {
        let _ = r.try_send(outcome);
    }
}

/// One fetch: the origin call, the compare-and-set, then the outcome to every waiter.
async fn run(
    shard: Rc<AppShard>,
    cache: usize,
    def: Arc<TableDef>,
    id: String,
    replacing: Option<Version>,
) {
    let landing = Landing {
        shard: shard.clone(),
        cache,
        id,
        outcome: None,
    };
    let entry = &shard.caches.node.tables[cache];
    count(&entry.stats.origin_calls);
    let outcome = match super::origin::fetch(&shard, entry, &landing.id).await {
        Ok(Some(doc)) => store(&shard, entry, &def, &landing.id, doc, replacing).await,
        Ok(None) => {
            forget(&shard, &def, &landing.id, replacing).await;
            Err(Failure::NotFound)
        }
        Err(f) => {
            let c = match f {
                Failure::Timeout => &entry.stats.timeouts,
                _ => &entry.stats.origin_errors,
            };
            count(c);
            Err(f)
        }
    };
    landing.finish(outcome);
}

/// Stores a fetched record unless a newer write landed since the fetch started; the record
/// to serve either way.
async fn store(
    shard: &AppShard,
    entry: &CacheEntry,
    def: &Arc<TableDef>,
    id: &str,
    doc: Doc,
    replacing: Option<Version>,
) -> Outcome {
    let stored = records::with_key(doc, &def.primary_key, id)
        .map_err(|e| Failure::Origin(format!("the origin's record cannot be stored: {e}")))?;
    let body: Arc<[u8]> = serde_json::to_vec(&stored)
        .map_err(|e| Failure::Origin(e.to_string()))?
        .into();
    let pre = match replacing {
        Some(v) => Precondition::IfMatch {
            clock: v.clock,
            node: v.node,
        },
        None => Precondition::IfAbsent,
    };
    match records::put(shard, def, id, stored, pre).await {
        Ok(w) => Ok(Filled {
            version: Some(w.version),
            body,
        }),
        Err(RecordError::PreconditionFailed | RecordError::Exists) => {
            count(&entry.stats.fills_discarded);
            Ok(newer(shard, def, id).unwrap_or(Filled {
                version: None,
                body,
            }))
        }
        Err(e @ (RecordError::Invalid(_) | RecordError::Rejected { .. })) => Err(Failure::Origin(
            format!("the origin's record cannot be stored: {e}"),
        )),
        Err(e) => {
            tracing::warn!(table = %def.name, id, "a fetched record was served but not stored: {e}");
            Ok(Filled {
                version: None,
                body,
            })
        }
    }
}

/// The record a newer write left, if it left one (a newer delete leaves none).
fn newer(shard: &AppShard, def: &TableDef, id: &str) -> Option<Filled> {
    let rec = records::get(shard, def, id).ok().flatten()?;
    Some(Filled {
        version: Some(rec.version),
        body: Arc::from(rec.body()),
    })
}

/// The origin has no record `id`: the stale copy it replaced goes too (unless rewritten).
async fn forget(shard: &AppShard, def: &Arc<TableDef>, id: &str, replacing: Option<Version>) {
    if let Some(v) = replacing {
        let pre = Precondition::IfMatch {
            clock: v.clock,
            node: v.node,
        };
        let _ = records::delete(shard, def, id, pre).await;
    }
}

/// A fetch on its way: when it ends, however it ends (finished, or dropped with its shard),
/// its key's entry goes and every waiter is answered; a failure is remembered.
struct Landing {
    shard: Rc<AppShard>,
    cache: usize,
    id: String,
    outcome: Option<Outcome>,
}

impl Landing {
    fn finish(mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or(Err(Failure::Stopping));
        let entry = &self.shard.caches.node.tables[self.cache];
        let state: &TableState = &self.shard.caches.tables[self.cache];
        if let Err(f) = &outcome {
            if f.remembered() {
                let now = Instant::now();
                let until = now + entry.spec.negative_ttl;
                state
                    .negative
                    .borrow_mut()
                    .insert(&self.id, f.clone(), now, until);
            }
        }
        let waiters = state.flights.borrow_mut().remove(&self.id);
        for w in waiters.into_iter().flatten() {
            let _ = w.try_send(outcome.clone());
        }
    }
}
