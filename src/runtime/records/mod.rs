//! The record API: the one way to read and write records. REST, WebSocket messages, MQTT
//! table topics, replicated table definitions and application components all call it, so
//! the rules live here once: where a record lives (partition, owner shard), what an id is
//! (`storage::record_id`, `rules`), how a body carries its primary key, and how a write
//! reaches the owner's writer (a full queue is `Busy`, never a wait without bound).
//!
//! Reads are local: any shard reads the owner's storage directly. Writes go to the owner's
//! writer thread, which orders them, so every precondition is exact on this node. Several
//! writes commit atomically only when they share a partition (`write_atomic`); writes made
//! on other nodes come in through `replicate`.

mod replicate;
mod rules;

pub use super::query::{run as search, QueryFailure};
pub use crate::storage::writer::Precondition;
pub use replicate::replicate;
pub use rules::{body_id, check_body_id, new_id, with_key};

use super::shard::Shard;
use crate::storage::attributes::{check_document, check_fields, check_numeric};
use crate::storage::catalog::TableDef;
use crate::storage::hlc::Version;
use crate::storage::keys;
use crate::storage::record_id;
use crate::storage::shard_db::StoredRecord;
use crate::storage::writer::{AtomicOutcome, WriteOp, WriteOutcome, WriteRequest, WriterMsg};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A JSON object: the body of a record.
pub type Doc = Map<String, Value>;

/// Most writes in one atomic multi-record write.
pub const MAX_ATOMIC_WRITES: usize = 1024;

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
    /// A check of the table's (a component's validation) refused the write, with the status
    /// and message it chose.
    Rejected { status: u16, message: String },
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
            RecordError::Rejected { message, .. } => f.write_str(message),
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
    /// The stored document, for writes whose result the caller did not send (patch, add_to).
    pub body: Option<Vec<u8>>,
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

/// One write, checked against the record rules, ready for the owner's writer.
#[derive(Debug, Clone)]
pub struct RecordWrite {
    pub table: Arc<TableDef>,
    pub id: String,
    pub op: WriteOp,
    pub precondition: Precondition,
}

impl RecordWrite {
    fn new(
        table: &Arc<TableDef>,
        id: &str,
        op: WriteOp,
        pre: Precondition,
    ) -> Result<Self, RecordError> {
        record_id::check(id).map_err(RecordError::Invalid)?;
        Ok(RecordWrite {
            table: table.clone(),
            id: id.to_string(),
            op,
            precondition: pre,
        })
    }

    /// Replaces (or creates) record `id` with `body` (its primary key set to `id`).
    pub fn put(
        table: &Arc<TableDef>,
        id: &str,
        body: Doc,
        pre: Precondition,
    ) -> Result<Self, RecordError> {
        let mut body = with_key(body, &table.primary_key, id)?;
        typed(check_document(&table.attributes, &mut body))?;
        let body = encode(&body)?;
        RecordWrite::new(table, id, WriteOp::Put { body }, pre)
    }

    /// Merges the top-level fields of `fields` into live record `id`.
    pub fn patch(
        table: &Arc<TableDef>,
        id: &str,
        fields: Doc,
        pre: Precondition,
    ) -> Result<Self, RecordError> {
        let mut fields = fields;
        check_body_id(&fields, &table.primary_key, id)?;
        typed(check_fields(&table.attributes, &mut fields))?;
        let fields = encode(&fields)?;
        RecordWrite::new(table, id, WriteOp::Patch { fields }, pre)
    }

    /// Deletes live record `id`.
    pub fn delete(table: &Arc<TableDef>, id: &str, pre: Precondition) -> Result<Self, RecordError> {
        RecordWrite::new(table, id, WriteOp::Delete, pre)
    }

    /// Adds each number of `deltas` to the field of that name of live record `id` (a missing
    /// field counts as 0): an exact counter, since the owner's writer orders every write.
    pub fn add_to(
        table: &Arc<TableDef>,
        id: &str,
        deltas: Doc,
        pre: Precondition,
    ) -> Result<Self, RecordError> {
        if deltas.contains_key(&table.primary_key) {
            return Err(RecordError::Invalid(format!(
                "the primary key {:?} cannot be added to",
                table.primary_key
            )));
        }
        typed(check_numeric(&table.attributes, &deltas))?;
        let fields = encode(&deltas)?;
        RecordWrite::new(table, id, WriteOp::AddTo { fields }, pre)
    }

    fn request(self, shard: &Shard) -> (usize, WriteRequest, Arc<TableDef>) {
        let at = locate(shard, &self.table.name, &self.id);
        let req = WriteRequest {
            table: self.table.name.clone(),
            id: self.id,
            partition: at.partition,
            op: self.op,
            precondition: self.precondition,
        };
        (at.owner, req, self.table)
    }
}

/// A refusal of the table's attribute types as a record error.
fn typed(checked: Result<(), String>) -> Result<(), RecordError> {
    checked.map_err(RecordError::Invalid)
}

/// Replaces (or creates) record `id` with `body`.
pub async fn put(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    body: Doc,
    pre: Precondition,
) -> Result<Written, RecordError> {
    write(shard, RecordWrite::put(table, id, body, pre)?).await
}

/// Merges the top-level fields of `fields` into live record `id`; answers the stored document.
pub async fn patch(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    fields: Doc,
    pre: Precondition,
) -> Result<Written, RecordError> {
    write(shard, RecordWrite::patch(table, id, fields, pre)?).await
}

/// Deletes live record `id`.
pub async fn delete(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    pre: Precondition,
) -> Result<Written, RecordError> {
    write(shard, RecordWrite::delete(table, id, pre)?).await
}

/// Adds numbers to fields of live record `id`; answers the stored document.
pub async fn add_to(
    shard: &Shard,
    table: &Arc<TableDef>,
    id: &str,
    deltas: Doc,
    pre: Precondition,
) -> Result<Written, RecordError> {
    write(shard, RecordWrite::add_to(table, id, deltas, pre)?).await
}

/// Creates a record: its id is the body's primary key, or a new one (`new_id`) set into the
/// body. Returns the id and the stored document.
pub async fn create(
    shard: &Shard,
    table: &Arc<TableDef>,
    mut body: Doc,
) -> Result<(String, Vec<u8>, Written), RecordError> {
    let id = body_id(&body, &table.primary_key)?.unwrap_or_else(new_id);
    // Ids keep one type: the key is stored as the id's text, whatever type the body gave it.
    body.insert(table.primary_key.clone(), Value::String(id.clone()));
    typed(check_document(&table.attributes, &mut body))?;
    let bytes = encode(&body)?;
    let op = WriteOp::Create {
        body: bytes.clone(),
    };
    let written = write(shard, RecordWrite::new(table, &id, op, Precondition::None)?).await?;
    Ok((id, bytes, written))
}

/// Sends one write to the owner's writer and waits for its answer. A full queue is `Busy` at
/// once: the caller answers 503 rather than queue without bound.
pub async fn write(shard: &Shard, w: RecordWrite) -> Result<Written, RecordError> {
    let (owner, req, table) = w.request(shard);
    let (reply, answer) = flume::bounded(1);
    let msg = WriterMsg::Write { req, table, reply };
    try_send(shard, owner, msg)?;
    let outcome = answer
        .recv_async()
        .await
        .map_err(|_| RecordError::Stopping)?;
    outcome_result(outcome)
}

/// Like `write`, but waits for room in a full queue (for the node's own rare writes, such as
/// table definitions, that must not fail because clients keep the writer busy).
pub async fn write_when_room(shard: &Shard, w: RecordWrite) -> Result<Written, RecordError> {
    let (owner, req, table) = w.request(shard);
    let (reply, answer) = flume::bounded(1);
    let msg = WriterMsg::Write { req, table, reply };
    shard.node.writers[owner]
        .send_async(msg)
        .await
        .map_err(|_| RecordError::Stopping)?;
    let outcome = answer
        .recv_async()
        .await
        .map_err(|_| RecordError::Stopping)?;
    outcome_result(outcome)
}

/// Several writes that commit together or not at all, in order (a later write sees the
/// earlier ones). They must all fall in one partition, the unit the owner's writer commits
/// atomically; otherwise nothing is written and the error names the first write elsewhere.
/// `Err((i, e))`: write `i` failed with `e`, and nothing was stored.
pub async fn write_atomic(
    shard: &Shard,
    writes: Vec<RecordWrite>,
) -> Result<Vec<Written>, (usize, RecordError)> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    if writes.len() > MAX_ATOMIC_WRITES {
        let m = format!("at most {MAX_ATOMIC_WRITES} writes commit atomically together");
        return Err((MAX_ATOMIC_WRITES, RecordError::Invalid(m)));
    }
    let first = locate(shard, &writes[0].table.name, &writes[0].id);
    if let Some(i) = writes
        .iter()
        .position(|w| locate(shard, &w.table.name, &w.id).partition != first.partition)
    {
        let m = format!(
            "records {:?} and {:?} are in different partitions; several writes commit atomically only within one partition (write them one by one, or choose ids that share a partition)",
            writes[0].id, writes[i].id
        );
        return Err((i, RecordError::Invalid(m)));
    }
    let reqs: Vec<_> = writes
        .into_iter()
        .map(|w| {
            let (_, req, table) = w.request(shard);
            (req, table)
        })
        .collect();
    let (reply, answer) = flume::bounded(1);
    let msg = WriterMsg::WriteAtomic {
        writes: reqs,
        reply,
    };
    try_send(shard, first.owner, msg).map_err(|e| (0, e))?;
    match answer
        .recv_async()
        .await
        .map_err(|_| (0, RecordError::Stopping))?
    {
        AtomicOutcome::Committed(outcomes) => outcomes
            .into_iter()
            .enumerate()
            .map(|(i, o)| outcome_result(o).map_err(|e| (i, e)))
            .collect(),
        AtomicOutcome::Aborted { index, outcome } => Err((index, failure(outcome))),
        AtomicOutcome::Failed(m) => Err((0, RecordError::Storage(m))),
    }
}

fn try_send(shard: &Shard, owner: usize, msg: WriterMsg) -> Result<(), RecordError> {
    match shard.node.writers[owner].try_send(msg) {
        Ok(()) => Ok(()),
        Err(flume::TrySendError::Full(_)) => Err(RecordError::Busy),
        Err(flume::TrySendError::Disconnected(_)) => Err(RecordError::Stopping),
    }
}

/// The writer's answer as a result.
fn outcome_result(outcome: WriteOutcome) -> Result<Written, RecordError> {
    match outcome {
        WriteOutcome::Written {
            version,
            created,
            body,
        } => Ok(Written {
            version,
            created,
            body,
        }),
        WriteOutcome::NotFound => Err(RecordError::NotFound),
        WriteOutcome::Exists => Err(RecordError::Exists),
        WriteOutcome::PreconditionFailed => Err(RecordError::PreconditionFailed),
        WriteOutcome::Invalid(m) => Err(RecordError::Invalid(m)),
        WriteOutcome::Failed(m) => Err(RecordError::Storage(m)),
        WriteOutcome::Rejected { status, message } => {
            Err(RecordError::Rejected { status, message })
        }
    }
}

/// The error of a write that made its atomic batch abort.
fn failure(outcome: WriteOutcome) -> RecordError {
    match outcome_result(outcome) {
        Err(e) => e,
        Ok(_) => {
            RecordError::Storage("the writer aborted the batch at a write that succeeded".into())
        }
    }
}

/// Normalized JSON bytes of a document.
fn encode(doc: &Doc) -> Result<Vec<u8>, RecordError> {
    serde_json::to_vec(doc).map_err(|e| RecordError::Invalid(format!("cannot encode JSON: {e}")))
}
