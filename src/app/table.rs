//! A table as a component calls it: the record API with the same semantics as REST (reads
//! from the owner's storage without a hop or a copy, writes on the owner's writer with exact
//! preconditions), searches in the Harper query language, atomic multi-record writes within
//! one partition, and subscriptions to a record's or the table's changes.

use super::shard::AppShard;
use super::Error;
use crate::mqtt::watch::Watch;
use crate::runtime::records::{self, Doc, Precondition, RecordWrite, Written};
use crate::storage::catalog::TableDef;
use crate::storage::hlc::Version;
use crate::storage::shard_db::StoredRecord;
use serde_json::Value;
use std::rc::Rc;
use std::sync::Arc;

/// A table of this node.
#[derive(Clone)]
pub struct Table {
    shard: Rc<AppShard>,
    def: Arc<TableDef>,
}

/// A stored record, read in place.
pub struct Record(StoredRecord);

impl Record {
    /// The document's JSON bytes, as stored.
    pub fn body(&self) -> &[u8] {
        self.0.body()
    }

    /// The record's version (its ETag).
    pub fn version(&self) -> Version {
        self.0.version
    }

    /// The document parsed as `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(self.body()).map_err(|e| {
            Error::new(
                500,
                format!("a stored record is not the expected JSON: {e}"),
            )
        })
    }

    /// The document as a JSON object.
    pub fn doc(&self) -> Result<Doc, Error> {
        self.json()
    }

    pub(crate) fn into_stored(self) -> StoredRecord {
        self.0
    }
}

impl Table {
    pub(crate) fn new(shard: Rc<AppShard>, def: Arc<TableDef>) -> Table {
        Table { shard, def }
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The attribute that names records.
    pub fn primary_key(&self) -> &str {
        &self.def.primary_key
    }

    /// The live record `id`, read from its owner's storage on this thread.
    pub fn get(&self, id: &str) -> Result<Option<Record>, Error> {
        Ok(records::get(&self.shard, &self.def, id)?.map(Record))
    }

    /// The records a Harper query matches (`category=home&sort(-price)&limit(10)`), from
    /// every shard, with the bounds REST has (`http.max_query_rows`).
    pub async fn search(&self, query: &str) -> Result<Vec<Value>, Error> {
        records::search(&self.shard, &self.def.name, query)
            .await
            .map_err(|f| match f {
                records::QueryFailure::Bad(m) => Error::bad_request(m),
                records::QueryFailure::Busy => Error {
                    retry_after: Some(1),
                    ..Error::new(503, "a shard's queue is full; retry shortly")
                },
                records::QueryFailure::Internal(m) => Error::new(500, m),
            })
    }

    /// Replaces (or creates) record `id`.
    pub async fn put(&self, id: &str, doc: Doc) -> Result<Written, Error> {
        self.put_if(id, doc, Precondition::None).await
    }

    /// Replaces record `id` if `pre` holds (a version, exists, absent), exactly.
    pub async fn put_if(&self, id: &str, doc: Doc, pre: Precondition) -> Result<Written, Error> {
        Ok(records::put(&self.shard, &self.def, id, doc, pre).await?)
    }

    /// Creates a record (its primary key, or a new UUID v7); returns its id.
    pub async fn create(&self, doc: Doc) -> Result<String, Error> {
        Ok(records::create(&self.shard, &self.def, doc).await?.0)
    }

    /// Merges top-level fields into live record `id`; returns the stored document.
    pub async fn patch(&self, id: &str, fields: Doc) -> Result<Doc, Error> {
        let w = records::patch(&self.shard, &self.def, id, fields, Precondition::None).await?;
        stored_doc(w)
    }

    /// Deletes live record `id`; false when there was none.
    pub async fn delete(&self, id: &str) -> Result<bool, Error> {
        match records::delete(&self.shard, &self.def, id, Precondition::None).await {
            Ok(_) => Ok(true),
            Err(records::RecordError::NotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds numbers to fields of live record `id` (a missing field counts as 0): an exact
    /// counter, ordered by the owner's writer. Returns the stored document.
    pub async fn add_to(&self, id: &str, deltas: Doc) -> Result<Doc, Error> {
        let w = records::add_to(&self.shard, &self.def, id, deltas, Precondition::None).await?;
        stored_doc(w)
    }

    /// Follows the changes of record `id` (or of the whole table): current value first for a
    /// record, then every committed change from any source, in order per record. A
    /// subscriber that does not keep up is cut (`Subscription::next` answers `None`).
    pub async fn subscribe(&self, id: Option<&str>) -> Subscription {
        let filter = match id {
            Some(id) => format!("{}/{id}", self.def.name),
            None => format!("{}/#", self.def.name),
        };
        let watch = Watch::open(&self.shard.mqtt, &filter).await;
        let mut first = Vec::new();
        if id.is_some() {
            first = crate::mqtt::tables::snapshot(&self.shard.mqtt, &filter);
        }
        Subscription {
            watch: Some(watch),
            ready: first.into_iter().map(Arc::new).collect(),
        }
    }

    pub(crate) fn def(&self) -> &Arc<TableDef> {
        &self.def
    }

    pub(crate) fn shard(&self) -> &Rc<AppShard> {
        &self.shard
    }
}

fn stored_doc(w: Written) -> Result<Doc, Error> {
    let body = w
        .body
        .ok_or_else(|| Error::new(500, "the writer did not answer with the stored document"))?;
    serde_json::from_slice(&body).map_err(|e| Error::new(500, e.to_string()))
}

/// A change a subscription delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: String,
    pub version: Option<Version>,
    /// The document after the change; `None` for a delete.
    pub doc: Option<Value>,
}

/// The changes of a record or table, as they commit.
pub struct Subscription {
    watch: Option<Watch>,
    ready: std::collections::VecDeque<Arc<crate::mqtt::message::Message>>,
}

impl Subscription {
    /// The next change; `None` once the subscription was cut (it fell too far behind).
    pub async fn next(&mut self) -> Option<Change> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Some(change_of(&m));
            }
            let watch = self.watch.as_ref()?;
            if watch.closed().is_some() {
                return None;
            }
            self.ready.extend(watch.take());
            if self.ready.is_empty() {
                let _ = watch.wake.recv().await;
            }
        }
    }

    /// Ends the subscription (also done when it is dropped, less promptly).
    pub async fn end(mut self) {
        if let Some(w) = self.watch.take() {
            w.end().await;
        }
    }
}

fn change_of(m: &crate::mqtt::message::Message) -> Change {
    let id = m
        .topic
        .split_once('/')
        .map(|(_, id)| id)
        .unwrap_or("")
        .to_string();
    let doc = (!m.payload.is_empty())
        .then(|| serde_json::from_slice(&m.payload).ok())
        .flatten();
    Change {
        id,
        version: m.version,
        doc,
    }
}

/// Writes that commit together or not at all, in order. They must fall in one partition
/// (the unit one writer commits atomically on every node); otherwise `commit` refuses them
/// all with a message that says so.
pub struct Batch {
    shard: Rc<AppShard>,
    writes: Vec<RecordWrite>,
    error: Option<Error>,
}

impl Batch {
    pub(crate) fn new(shard: Rc<AppShard>) -> Batch {
        Batch {
            shard,
            writes: Vec::new(),
            error: None,
        }
    }

    fn push(mut self, w: Result<RecordWrite, records::RecordError>) -> Batch {
        match w {
            Ok(w) => self.writes.push(w),
            Err(e) if self.error.is_none() => self.error = Some(e.into()),
            Err(_) => {}
        }
        self
    }

    pub fn put(self, table: &Table, id: &str, doc: Doc) -> Batch {
        let w = RecordWrite::put(table.def(), id, doc, Precondition::None);
        self.push(w)
    }

    pub fn put_if(self, table: &Table, id: &str, doc: Doc, pre: Precondition) -> Batch {
        let w = RecordWrite::put(table.def(), id, doc, pre);
        self.push(w)
    }

    pub fn patch(self, table: &Table, id: &str, fields: Doc) -> Batch {
        let w = RecordWrite::patch(table.def(), id, fields, Precondition::None);
        self.push(w)
    }

    pub fn delete(self, table: &Table, id: &str) -> Batch {
        let w = RecordWrite::delete(table.def(), id, Precondition::None);
        self.push(w)
    }

    pub fn add_to(self, table: &Table, id: &str, deltas: Doc) -> Batch {
        let w = RecordWrite::add_to(table.def(), id, deltas, Precondition::None);
        self.push(w)
    }

    /// Commits every write or none; the error names the write that failed.
    pub async fn commit(self) -> Result<Vec<Written>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        records::write_atomic(&self.shard, self.writes)
            .await
            .map_err(|(i, e)| {
                let mut err = Error::from(e);
                err.message = format!("write {i} of the batch: {}", err.message);
                err
            })
    }
}
