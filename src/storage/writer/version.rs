//! Storing one version of one record, whoever decided it (a local write or a replicated
//! change): the index diff from the old document to the new one, the record envelope, the
//! group's overlay, the change-log entry under the next sequence, the feed's copy and the
//! record-count delta. Everything that can fail happens in `NewVersion::new`, before any of it.

use super::group::Group;
use super::{index_entries, Writer};
use crate::storage::catalog::TableDef;
use crate::storage::changelog::{Change, ChangeOp};
use crate::storage::envelope::Envelope;
use crate::storage::hlc::Version;
use crate::storage::keys;
use serde_json::Value;
use std::collections::HashMap;

/// Stored values written earlier in a group (or an atomic batch) and not committed yet, by
/// record key; `None` is a key removed outright (a purged tombstone).
pub(super) type Overlay = HashMap<Vec<u8>, Option<Vec<u8>>>;

/// A version decided and encoded, ready to store: nothing can fail past this point.
pub(super) struct NewVersion {
    key: Vec<u8>,
    /// The stored value it replaces (an envelope), if any.
    old: Option<Vec<u8>>,
    /// The new stored value (an envelope).
    value: Vec<u8>,
    /// The change-log entry, encoded.
    entry: Vec<u8>,
    change: Change,
    /// The caller wants the stored document back (it did not send it whole).
    return_body: bool,
}

impl NewVersion {
    /// Encodes `change` as the version stored at `key` in place of `old`.
    pub(super) fn new(
        key: Vec<u8>,
        old: Option<Vec<u8>>,
        change: Change,
        return_body: bool,
    ) -> Result<NewVersion, String> {
        let entry = change
            .encode()
            .map_err(|e| format!("the change-log entry could not be encoded: {e}"))?;
        let tombstone = change.op == ChangeOp::Delete;
        let body: &[u8] = if tombstone { b"" } else { &change.body };
        let value = Envelope::encode(version_of(&change), tombstone, body);
        Ok(NewVersion {
            key,
            old,
            value,
            entry,
            change,
            return_body,
        })
    }

    pub(super) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(super) fn value(&self) -> &[u8] {
        &self.value
    }

    pub(super) fn version(&self) -> Version {
        version_of(&self.change)
    }

    /// Whether a live record is replaced (else the record is created, or stays absent).
    pub(super) fn replaces_live(&self) -> bool {
        self.old_body().is_some()
    }

    /// The live document it replaces, if any.
    fn old_body(&self) -> Option<&[u8]> {
        let env = Envelope::decode(self.old.as_deref()?)?;
        (!env.tombstone).then_some(env.body)
    }

    /// The new live document; `None` for a delete.
    fn new_body(&self) -> Option<&[u8]> {
        (self.change.op == ChangeOp::Put).then_some(self.change.body.as_slice())
    }

    /// How the number of live records changes.
    fn record_delta(&self) -> i64 {
        match (self.old_body().is_some(), self.new_body().is_some()) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        }
    }
}

fn version_of(c: &Change) -> Version {
    Version {
        clock: c.clock,
        node: c.node,
    }
}

impl Writer {
    /// The stored value at `key` as the group sees it: the first overlay that has the key,
    /// else the database.
    pub(super) fn current(
        &self,
        key: &[u8],
        overlays: &[&Overlay],
    ) -> Result<Option<Vec<u8>>, String> {
        if let Some(v) = overlays.iter().find_map(|o| o.get(key)) {
            return Ok(v.clone());
        }
        match self.db.records.get(key) {
            Ok(v) => Ok(v.map(|s| s.to_vec())),
            Err(e) => Err(format!("read failed: {e}")),
        }
    }

    /// Stores a version into the group: indexes (when `table` has any), record, overlay,
    /// change log, feed. Returns the stored document when the version asked for it.
    pub(super) fn store_version(
        &mut self,
        g: &mut Group,
        table: Option<&TableDef>,
        v: NewVersion,
    ) -> Option<Vec<u8>> {
        if let Some(t) = table.filter(|t| !t.indexes.is_empty()) {
            update_indexes(self, g, t, &v);
        }
        g.record_delta += v.record_delta();
        g.batch
            .insert(&self.db.records, v.key.clone(), v.value.clone());
        g.overlay.insert(v.key, Some(v.value));
        g.batch.insert(
            &self.db.changelog,
            keys::seq_key(self.next_seq).to_vec(),
            v.entry,
        );
        self.next_seq += 1;
        g.logged += 1;
        // A change made on this node (a local write, or one of ours coming back): streams
        // to peers have something new to send.
        g.logged_own |= v.change.node == self.settings.node_id;
        g.internal |= v.change.table.starts_with('_');
        let mut change = v.change;
        let body = match (v.return_body, g.feeding) {
            (false, _) => None,
            (true, true) => Some(change.body.clone()),
            (true, false) => Some(std::mem::take(&mut change.body)),
        };
        if g.feeding {
            g.changes.push(change);
        }
        body
    }
}

/// Removes the index terms the old document had and the new one lacks; adds the rest.
fn update_indexes(w: &Writer, g: &mut Group, table: &TableDef, v: &NewVersion) {
    let parse = |b: Option<&[u8]>| b.and_then(|b| serde_json::from_slice::<Value>(b).ok());
    let old_doc = parse(v.old_body());
    let new_doc = parse(v.new_body());
    let (name, id) = (&v.change.table, &v.change.id);
    for attr in &table.indexes {
        let old_terms = index_entries(name, attr, old_doc.as_ref(), id);
        let new_terms = index_entries(name, attr, new_doc.as_ref(), id);
        for k in old_terms.difference(&new_terms) {
            g.batch.remove(&w.db.index, k.clone());
        }
        for k in new_terms.difference(&old_terms) {
            g.batch.insert(&w.db.index, k.clone(), b"".to_vec());
        }
    }
}
