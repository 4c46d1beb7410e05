//! Local writes: what a `WriteRequest` stores, decided against the current value (the group's
//! and the atomic batch's earlier writes included) — the precondition, then the operation
//! (put, create, patch, add-to, delete), then the installed check (`check.rs`) — and atomic
//! batches, which decide every write before storing any.

use super::group::Group;
use super::version::{NewVersion, Overlay};
use super::{AtomicOutcome, Precondition, WriteOp, WriteOutcome, WriteRequest, Writer};
use crate::storage::catalog::TableDef;
use crate::storage::changelog::{Change, ChangeOp};
use crate::storage::envelope::Envelope;
use crate::storage::hlc::Version;
use crate::storage::keys;
use serde_json::{Map, Number, Value};
use std::sync::Arc;

impl Writer {
    /// Applies one write into the group.
    pub(super) fn write_one(
        &mut self,
        req: &WriteRequest,
        table: &TableDef,
        g: &mut Group,
    ) -> WriteOutcome {
        match self.decide(req, table, &[&g.overlay]) {
            Ok(v) => self.store_local(g, table, v),
            Err(refused) => refused,
        }
    }

    /// Applies every write of the batch into the group, or none: each is decided (seeing the
    /// batch's earlier ones) before any is stored.
    pub(super) fn write_atomic(
        &mut self,
        writes: &[(WriteRequest, Arc<TableDef>)],
        g: &mut Group,
    ) -> AtomicOutcome {
        if let Some(refused) = refuse_partitions(writes) {
            return refused;
        }
        let mut staged = Overlay::new();
        let mut versions = Vec::with_capacity(writes.len());
        for (index, (req, table)) in writes.iter().enumerate() {
            match self.decide(req, table, &[&staged, &g.overlay]) {
                Ok(v) => {
                    staged.insert(v.key().to_vec(), Some(v.value().to_vec()));
                    versions.push(v);
                }
                Err(outcome) => return AtomicOutcome::Aborted { index, outcome },
            }
        }
        let outcomes = versions
            .into_iter()
            .zip(writes)
            .map(|(v, (_, table))| self.store_local(g, table, v))
            .collect();
        AtomicOutcome::Committed(outcomes)
    }

    fn store_local(&mut self, g: &mut Group, table: &TableDef, v: NewVersion) -> WriteOutcome {
        let version = v.version();
        let created = !v.replaces_live();
        let body = self.store_version(g, Some(table), v);
        g.written += 1;
        WriteOutcome::Written {
            version,
            created,
            body,
        }
    }

    /// Decides what a write stores, against the value the overlays (or the database) hold;
    /// `Err` is the answer of a write that stores nothing.
    fn decide(
        &mut self,
        req: &WriteRequest,
        table: &TableDef,
        overlays: &[&Overlay],
    ) -> Result<NewVersion, WriteOutcome> {
        let key = keys::record_key(&req.table, req.partition, &req.id);
        let old = self.current(&key, overlays).map_err(WriteOutcome::Failed)?;
        let stored = old.as_deref().and_then(Envelope::decode);
        if let Some(e) = stored {
            // A replicated version may come from a clock ahead of ours: the new one must be newer.
            self.hlc.observe(e.version);
        }
        let live = stored.filter(|e| !e.tombstone);
        check(req.precondition, live.map(|e| e.version))?;
        let body = next_body(&req.op, live.map(|e| e.body))?;
        let body = self.checked(table, &req.id, live.map(|e| e.body), body)?;
        let version = self.hlc.now();
        let change = Change {
            table: req.table.clone(),
            id: req.id.clone(),
            clock: version.clock,
            node: version.node,
            op: if body.is_some() {
                ChangeOp::Put
            } else {
                ChangeOp::Delete
            },
            body: body.unwrap_or_default(),
        };
        let return_body = matches!(req.op, WriteOp::Patch { .. } | WriteOp::AddTo { .. });
        NewVersion::new(key, old, change, return_body).map_err(WriteOutcome::Failed)
    }
}

/// Refuses a batch whose writes are not all in the first write's partition.
fn refuse_partitions(writes: &[(WriteRequest, Arc<TableDef>)]) -> Option<AtomicOutcome> {
    let first = writes.first()?.0.partition;
    let (index, (req, _)) = writes
        .iter()
        .enumerate()
        .find(|(_, (r, _))| r.partition != first)?;
    let why = format!(
        "an atomic write must stay in one partition: write {index} ({}/{}) is in partition {}, \
         write 0 in partition {first}; nothing was stored",
        req.table, req.id, req.partition
    );
    Some(AtomicOutcome::Aborted {
        index,
        outcome: WriteOutcome::Invalid(why),
    })
}

/// Checks a precondition against the live record's version (`None`: no live record).
fn check(p: Precondition, live: Option<Version>) -> Result<(), WriteOutcome> {
    let holds = match p {
        Precondition::None => true,
        Precondition::IfMatch { clock, node } => live == Some(Version { clock, node }),
        Precondition::IfAbsent => live.is_none(),
        Precondition::IfExists => live.is_some(),
    };
    if holds {
        Ok(())
    } else {
        Err(WriteOutcome::PreconditionFailed)
    }
}

/// The document an operation leaves, given the live one; `None` deletes the record.
fn next_body(op: &WriteOp, live: Option<&[u8]>) -> Result<Option<Vec<u8>>, WriteOutcome> {
    match (op, live) {
        (WriteOp::Put { body }, _) => Ok(Some(body.clone())),
        (WriteOp::Create { .. }, Some(_)) => Err(WriteOutcome::Exists),
        (WriteOp::Create { body }, None) => Ok(Some(body.clone())),
        (WriteOp::Patch { .. } | WriteOp::AddTo { .. } | WriteOp::Delete, None) => {
            Err(WriteOutcome::NotFound)
        }
        (WriteOp::Patch { fields }, Some(old)) => merge_patch(old, fields).map(Some),
        (WriteOp::AddTo { fields }, Some(old)) => add_to(old, fields).map(Some),
        (WriteOp::Delete, Some(_)) => Ok(None),
    }
}

fn object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, WriteOutcome> {
    serde_json::from_slice(bytes)
        .map_err(|e| WriteOutcome::Invalid(format!("{what} must be a JSON object: {e}")))
}

fn to_vec(doc: &Map<String, Value>) -> Result<Vec<u8>, WriteOutcome> {
    serde_json::to_vec(doc).map_err(|e| WriteOutcome::Failed(e.to_string()))
}

/// Shallow merge: top-level fields of `fields` replace those of `old`.
fn merge_patch(old: &[u8], fields: &[u8]) -> Result<Vec<u8>, WriteOutcome> {
    let mut doc = object(old, "the stored record")?;
    for (k, v) in object(fields, "a PATCH body")? {
        doc.insert(k, v);
    }
    to_vec(&doc)
}

/// Adds each number of `deltas` to the same top-level field of `old` (missing counts as 0).
fn add_to(old: &[u8], deltas: &[u8]) -> Result<Vec<u8>, WriteOutcome> {
    let mut doc = object(old, "the stored record")?;
    for (k, delta) in object(deltas, "an add-to body")? {
        let Value::Number(delta) = delta else {
            return Err(WriteOutcome::Invalid(format!(
                "add-to: the amount for {k:?} is not a number"
            )));
        };
        let zero = Number::from(0);
        let current = match doc.get(&k) {
            None => &zero,
            Some(Value::Number(n)) => n,
            Some(_) => {
                return Err(WriteOutcome::Invalid(format!(
                    "add-to: the field {k:?} is not a number"
                )))
            }
        };
        let sum = add_numbers(current, &delta).ok_or_else(|| {
            WriteOutcome::Invalid(format!("add-to: the sum for {k:?} is not a finite number"))
        })?;
        doc.insert(k, Value::Number(sum));
    }
    to_vec(&doc)
}

/// The sum as an integer while both are i64 and it does not overflow, else as a float
/// (`None` when the float is not finite).
fn add_numbers(a: &Number, b: &Number) -> Option<Number> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(sum) = x.checked_add(y) {
            return Some(Number::from(sum));
        }
    }
    Number::from_f64(a.as_f64()? + b.as_f64()?)
}
