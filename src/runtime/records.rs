//! The record API: the one way to read and write records. REST, WebSocket messages, MQTT
//! table topics, replicated table definitions and application components all call it, so
//! the rules live here once: where a record lives (partition, owner shard), what an id is
//! (`storage::record_id`), how a body carries its primary key, and how a write reaches the
//! owner's writer (a full queue is `Busy`, never a wait without bound).
//!
//! Reads are local: any shard reads the owner's storage directly. Writes go to the owner's
//! writer thread, which orders them, so every precondition is exact on this node. Several
//! writes commit atomically only when they share a partition (`write_atomic`).

use super::shard::{NodeShared, Shard};
use crate::storage::catalog::{Catalog, TableDef};
use crate::storage::changelog::Change;
use crate::storage::hlc::Version;
use crate::storage::keys;
use crate::storage::layout::owner_of;
use crate::storage::record_id;
use crate::storage::shard_db::StoredRecord;
use crate::storage::writer::{RemoteChange, WriteOp, WriteOutcome, WriteRequest, WriterMsg};
use serde_json::{Map, Value};
use std::sync::Arc;

pub use crate::storage::writer::Precondition;

/// A JSON object: the body of a record.
pub type Doc = Map<String, Value>;

/// Why a record operation did not happen. Each maps to one HTTP status and one MQTT reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The id or the body breaks the record rules; the message says how (400).
    Invalid(String),
    /// No live record has the id (404).
    NotFound,
    /// A create found a live record with the id (409).
    Exists,
    /// The record's current version does not meet the precondition (412).
    PreconditionFailed,
    /// The owner's write queue is full: retry shortly (503 with Retry-After).
    Busy,
    /// The node is stopping (503).
    Stopping,
    /// Storage failed; nothing was written (500).
    Storage(String),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Invalid(m) | RecordError::Storage(m) => f.write_str(m),
            RecordError::NotFound => f.write_str("no such record"),
            RecordError::Exists => f.write_str("the record already exists"),
            RecordError::PreconditionFailed => {
                f.write_str("the record's current version does not match the precondition")
            }
            RecordError::Busy => f.write_str("the owning shard's write queue is full"),
            RecordError::Stopping => f.write_str("the node is shutting down"),
        }
    }
}

/// A write that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub version: Version,
    /// No live record had the id before.
    pub created: bool,
}

/// Where a record lives: its partition and the shard that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub partition: u16,
    pub owner: usize,
}

/// Locates a record of `table`.
pub fn locate(shard: &Shard, table: &str, id: &str) -> Location {
    let (partition, owner) = shard.locate(table, id);
    Location { partition, owner }
}

/// The live record `id` of `table`, read from its owner's storage (no hop, no copy of the
/// body beyond what storage hands out).
pub fn get(shard: &Shard, table: &TableDef, id: &str) -> Result<Option<StoredRecord>, RecordError> {
    let at = locate(shard, &table.name, id);
    shard.node.dbs[at.owner]
        .get(&keys::record_key(&table.name, at.partition, id))
        .map_err(|e| RecordError::Storage(format!("storage read failed: {e}")))
}

/// The version of the live record `id`, if there is one.
pub fn version_of(shard: &Shard, table: &TableDef, id: &str) -> Option<Version> {
    get(shard, table, id).ok().flatten().map(|r| r.version)
}

/// The id a body names by its primary key: `None` when the body has no such attribute.
pub fn body_id(body: &Doc, primary_key: &str) -> Result<Option<String>, RecordError> {
    match body.get(primary_key) {
        None => Ok(None),
        Some(v) => match record_id::id_text(v) {
            Some(id) => {
                record_id::check(&id).map_err(RecordError::Invalid)?;
                Ok(Some(id.into_owned()))
            }
            None => Err(RecordError::Invalid(format!(
                "primary key {primary_key:?} must be a string or a number, not {v}"
            ))),
        },
    }
}

/// Checks that a body names record `id` or no record at all.
pub fn check_body_id(body: &Doc, primary_key: &str, id: &str) -> Result<(), RecordError> {
    match body.get(primary_key) {
        None => Ok(()),
        Some(v) if record_id::id_text(v).is_some_and(|t| t == id) => Ok(()),
        Some(other) => Err(RecordError::Invalid(format!(
            "the body's {primary_key:?} is {other} but the write names record {id:?}"
        ))),
    }
}

/// The document stored for `id`: the body with its primary key set to the id (a body that
/// names another record is refused).
pub fn with_key(mut body: Doc, primary_key: &str, id: &str) -> Result<Doc, RecordError> {
    check_body_id(&body, primary_key, id)?;
    if !body.contains_key(primary_key) {
        body.insert(primary_key.to_string(), Value::String(id.to_string()));
    }
    Ok(body)
}

/// A new record id: a UUID v7 (time-ordered, OS randomness).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Replaces (or creates) record `id` with `body`.
pub async fn put(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    body: Doc,
    precondition: Precondition,
) -> Result<Written, RecordError> {
    record_id::check(id).map_err(RecordError::Invalid)?;
    let body = encode(&with_key(body, &table.primary_key, id)?)?;
    write(shard, table, id, WriteOp::Put { body }, precondition).await
}

/// Creates a record: its id is the body's primary key, or a new one (`new_id`) set into the
/// body. Returns the id and the stored document.
pub async fn create(
    shard: &Shard,
    table: &Arc<TableDef>,
    mut body: Doc,
) -> Result<(String, Vec<u8>, Written), RecordError> {
    let id = match body_id(&body, &table.primary_key)? {
        Some(id) => id,
        None => {
            let id = new_id();
            body.insert(table.primary_key.clone(), Value::String(id.clone()));
            id
        }
    };
    let bytes = encode(&body)?;
    let op = WriteOp::Create {
        body: bytes.clone(),
    };
    let written = write(shard, table, &id, op, Precondition::None).await?;
    Ok((id, bytes, written))
}

/// Merges the top-level fields of `fields` into live record `id`.
pub async fn patch(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    fields: Doc,
    precondition: Precondition,
) -> Result<Written, RecordError> {
    record_id::check(id).map_err(RecordError::Invalid)?;
    check_body_id(&fields, &table.primary_key, id)?;
    let fields = encode(&fields)?;
    write(shard, table, id, WriteOp::Patch { fields }, precondition).await
}

/// Deletes live record `id`.
pub async fn delete(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    precondition: Precondition,
) -> Result<Written, RecordError> {
    record_id::check(id).map_err(RecordError::Invalid)?;
    write(shard, table, id, WriteOp::Delete, precondition).await
}

/// Sends one write to the owner's writer and waits for its answer. A full queue is `Busy` at
/// once: the caller answers 503 rather than queue without bound.
pub async fn write(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    op: WriteOp,
    precondition: Precondition,
) -> Result<Written, RecordError> {
    let (owner, msg, answer) = request(shard, table, id, op, precondition);
    match shard.node.writers[owner].try_send(msg) {
        Ok(()) => {}
        Err(flume::TrySendError::Full(_)) => return Err(RecordError::Busy),
        Err(flume::TrySendError::Disconnected(_)) => return Err(RecordError::Stopping),
    }
    answered(answer).await
}

/// Like `write`, but waits for room in a full queue (for the node's own rare writes, such as
/// table definitions, that must not fail because clients keep the writer busy).
pub async fn write_when_room(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    op: WriteOp,
    precondition: Precondition,
) -> Result<Written, RecordError> {
    let (owner, msg, answer) = request(shard, table, id, op, precondition);
    shard.node.writers[owner]
        .send_async(msg)
        .await
        .map_err(|_| RecordError::Stopping)?;
    answered(answer).await
}

/// The message that asks the owner's writer for one write, the owner, and where it answers.
fn request(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    op: WriteOp,
    precondition: Precondition,
) -> (usize, WriterMsg, flume::Receiver<WriteOutcome>) {
    let at = locate(shard, &table.name, id);
    let (reply, answer) = flume::bounded(1);
    let req = WriteRequest {
        table: table.name.clone(),
        id: id.to_string(),
        partition: at.partition,
        op,
        precondition,
    };
    let msg = WriterMsg::Write {
        req,
        table: table.clone(),
        reply,
    };
    (at.owner, msg, answer)
}

async fn answered(answer: flume::Receiver<WriteOutcome>) -> Result<Written, RecordError> {
    let outcome = answer
        .recv_async()
        .await
        .map_err(|_| RecordError::Stopping)?;
    outcome_result(outcome)
}

/// Applies changes made on other nodes (already checked) on their owners' writers, each
/// last-writer-wins against the stored version; returns once every writer involved has
/// committed, with how many changes won.
pub async fn replicate(node: &NodeShared, changes: Vec<Change>) -> Result<usize, String> {
    if changes.is_empty() {
        return Ok(0);
    }
    let shards = node.writers.len();
    let mut per_shard: Vec<Vec<RemoteChange>> = (0..shards).map(|_| Vec::new()).collect();
    for change in changes {
        let partition = keys::partition_of(&change.table, &change.id, node.partitions);
        let table = Catalog::lookup(&node.catalog, &change.table);
        if table.is_none() && change.table != super::schema::TABLE {
            warn_unknown_table(&change.table);
        }
        per_shard[owner_of(partition, shards)].push(RemoteChange {
            partition,
            table,
            change,
        });
    }
    let mut waits = Vec::new();
    for (s, changes) in per_shard.into_iter().enumerate() {
        if changes.is_empty() {
            continue;
        }
        let (reply, wait) = flume::bounded(1);
        node.writers[s]
            .send_async(WriterMsg::Replicate { changes, reply })
            .await
            .map_err(|_| "writer stopped".to_string())?;
        waits.push(wait);
    }
    let mut applied = 0;
    for w in waits {
        applied += w
            .recv_async()
            .await
            .map_err(|_| "writer stopped".to_string())??;
    }
    Ok(applied)
}

/// A change for a table this node does not declare is stored without indexes; say so, once a
/// minute per table (a table created on a peer arrives through `schema` soon after).
fn warn_unknown_table(table: &str) {
    use std::time::{Duration, Instant};
    thread_local! {
        static WARNED: std::cell::RefCell<std::collections::HashMap<String, Instant>> =
            Default::default();
    }
    let due = WARNED.with(|w| {
        let mut w = w.borrow_mut();
        if w.len() > 1024 {
            w.clear();
        }
        let now = Instant::now();
        match w.get(table) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(60) => false,
            _ => {
                w.insert(table.to_string(), now);
                true
            }
        }
    });
    if due {
        tracing::warn!(
            table,
            "replicated change for a table not declared on this node: stored without indexes until it is"
        );
    }
}

/// The writer's answer as a result.
fn outcome_result(outcome: WriteOutcome) -> Result<Written, RecordError> {
    match outcome {
        WriteOutcome::Written {
            version, created, ..
        } => Ok(Written { version, created }),
        WriteOutcome::NotFound => Err(RecordError::NotFound),
        WriteOutcome::Exists => Err(RecordError::Exists),
        WriteOutcome::PreconditionFailed => Err(RecordError::PreconditionFailed),
        WriteOutcome::Invalid(m) => Err(RecordError::Invalid(m)),
        WriteOutcome::Failed(m) => Err(RecordError::Storage(m)),
    }
}

/// Normalized JSON bytes of a document.
fn encode(doc: &Doc) -> Result<Vec<u8>, RecordError> {
    serde_json::to_vec(doc).map_err(|e| RecordError::Invalid(format!("cannot encode JSON: {e}")))
}
