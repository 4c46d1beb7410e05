//! Reading a caching table, on any shard: a fresh stored record is served as is; a missing
//! or stale one is fetched by the owner shard of the key (asked directly when this shard
//! owns it, else through the owner's cache inbox), unless the read may be served stale
//! (stale-while-revalidate, stale-if-error, `only-if-cached`). REST `GET /{Table}/{id}` and
//! `Table::get_cached` both read through here.

use super::control::CacheControl;
use super::node::{count, CacheEntry, FillRequest};
use super::{Failure, Filled, Outcome};
use crate::app::shard::AppShard;
use crate::app::{Doc, Error, Table};
use crate::runtime::records;
use crate::storage::hlc::Version;
use crate::storage::shard_db::StoredRecord;
use std::rc::Rc;
use std::time::Duration;

/// How long a read waits for the owner's answer beyond the origin timeout (the store).
const STORE_WAIT: Duration = Duration::from_secs(10);

/// A record read from a caching table.
pub struct Cached {
    inner: Inner,
    stale: bool,
}

enum Inner {
    Stored(StoredRecord),
    Filled(Filled),
}

impl Cached {
    /// The document's JSON bytes.
    pub fn body(&self) -> &[u8] {
        match &self.inner {
            Inner::Stored(r) => r.body(),
            Inner::Filled(f) => &f.body,
        }
    }

    /// The stored version (its ETag); `None` for a fetched record that was not stored.
    pub fn version(&self) -> Option<Version> {
        match &self.inner {
            Inner::Stored(r) => Some(r.version),
            Inner::Filled(f) => f.version,
        }
    }

    /// Whether the record served is past its expiration (or the read's `max-age`).
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// The document parsed as `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(self.body()).map_err(|e| {
            Error::new(
                500,
                format!("a cached record is not the expected JSON: {e}"),
            )
        })
    }

    /// The document as a JSON object.
    pub fn doc(&self) -> Result<Doc, Error> {
        self.json()
    }
}

impl Table {
    /// Record `id` of a caching table: stored and fresh, or fetched from its source (the
    /// owner shard of the key fetches it once for every reader). `None` when the source has
    /// no such record. On a table that is not a caching table, this is `get`.
    pub async fn get_cached(&self, id: &str) -> Result<Option<Cached>, Error> {
        self.get_cached_with(id, &CacheControl::default()).await
    }

    /// `get_cached` with a reader's directives (`max-age`, `no-cache`, `only-if-cached`).
    pub async fn get_cached_with(
        &self,
        id: &str,
        cc: &CacheControl,
    ) -> Result<Option<Cached>, Error> {
        let shard = self.shard();
        match shard.caches.node.find(self.name()) {
            Some(cache) => read(shard, cache, id, cc).await,
            None => Ok(self.get(id)?.map(|r| Cached {
                inner: Inner::Stored(r.into_stored()),
                stale: false,
            })),
        }
    }
}

/// Reads record `id` of caching table `cache`. `Ok(None)`: the origin has no such record.
pub(crate) async fn read(
    shard: &Rc<AppShard>,
    cache: usize,
    id: &str,
    cc: &CacheControl,
) -> Result<Option<Cached>, Error> {
    let entry = &shard.caches.node.tables[cache];
    let spec = &entry.spec;
    let def = shard
        .table(&spec.table)
        .ok_or_else(|| Error::not_found(format!("table {:?} does not exist", spec.table)))?;
    let fresh_after = cc.fresh_after(crate::storage::now_millis(), spec.expiration);
    let Some(rec) = records::get(shard, &def, id)? else {
        if cc.only_if_cached {
            let m = format!("record {id:?} of table {:?} is not cached", spec.table);
            return Err(Error::new(504, m));
        }
        count(&entry.stats.misses);
        return fetched(entry, id, fill(shard, cache, id, fresh_after).await);
    };
    let fresh = rec.version.millis() >= fresh_after;
    if fresh || cc.only_if_cached {
        count(if fresh {
            &entry.stats.hits
        } else {
            &entry.stats.stale_served
        });
        return Ok(Some(stored(rec, !fresh)));
    }
    if spec.stale_while_revalidate && !cc.no_cache {
        refresh(shard, cache, id, fresh_after);
        count(&entry.stats.stale_served);
        return Ok(Some(stored(rec, true)));
    }
    count(&entry.stats.misses);
    match fill(shard, cache, id, fresh_after).await {
        Err(f) if spec.stale_if_error && f.stale_may_serve() => {
            count(&entry.stats.stale_served);
            Ok(Some(stored(rec, true)))
        }
        outcome => fetched(entry, id, outcome),
    }
}

fn stored(rec: StoredRecord, stale: bool) -> Cached {
    Cached {
        inner: Inner::Stored(rec),
        stale,
    }
}

/// A fetch's outcome as a read's answer.
fn fetched(entry: &CacheEntry, id: &str, outcome: Outcome) -> Result<Option<Cached>, Error> {
    match outcome {
        Ok(f) => Ok(Some(Cached {
            inner: Inner::Filled(f),
            stale: false,
        })),
        Err(Failure::NotFound) => Ok(None),
        Err(f) => Err(f.to_error(&entry.spec.table, id, entry.spec.timeout)),
    }
}

/// Asks the owner shard to fetch record `id` and waits for the outcome (bounded).
async fn fill(shard: &Rc<AppShard>, cache: usize, id: &str, fresh_after: u64) -> Outcome {
    let (tx, rx) = flume::bounded(1);
    ask(shard, cache, id, fresh_after, Some(tx))?;
    let wait = shard.caches.node.tables[cache].spec.timeout + STORE_WAIT;
    let answer = futures_lite::future::or(async { rx.recv_async().await.ok() }, async {
        glommio::timer::sleep(wait).await;
        Some(Err(Failure::Timeout))
    });
    answer.await.unwrap_or(Err(Failure::Stopping))
}

/// Asks the owner shard to refresh record `id` in the background.
fn refresh(shard: &Rc<AppShard>, cache: usize, id: &str, fresh_after: u64) {
    let _ = ask(shard, cache, id, fresh_after, None);
}

/// Hands a fetch request to the owner of record `id`: directly when it is this shard, else
/// through its cache inbox (full: busy, at once).
fn ask(
    shard: &Rc<AppShard>,
    cache: usize,
    id: &str,
    fresh_after: u64,
    reply: Option<flume::Sender<Outcome>>,
) -> Result<(), Failure> {
    let node = &shard.caches.node;
    let owner = records::locate(shard, &node.tables[cache].spec.table, id).owner;
    let req = FillRequest {
        cache,
        id: id.to_string(),
        fresh_after,
        reply,
    };
    if owner == shard.id {
        super::flight::request(shard, req);
        return Ok(());
    }
    node.inboxes[owner].try_send(req).map_err(|e| match e {
        flume::TrySendError::Full(_) => {
            count(&node.tables[cache].stats.busy);
            Failure::Busy(format!(
                "shard {owner}'s cache inbox is full; retry shortly"
            ))
        }
        flume::TrySendError::Disconnected(_) => Failure::Stopping,
    })
}
