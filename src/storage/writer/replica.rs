//! The writer's side of replication: changes from other nodes applied last-writer-wins under
//! the writer's single-writer order (`WriterMsg::Replicate`), tombstone purge
//! (`WriterMsg::PurgeTombstones`), and the clock up to which local changes are committed
//! (`WriterStats::own_clock`). Kept apart from `writer.rs` so the local write path stays short.

use super::{index_entries, Writer};
use crate::storage::catalog::TableDef;
use crate::storage::changelog::{Change, ChangeOp};
use crate::storage::envelope::Envelope;
use crate::storage::hlc::Version;
use crate::storage::keys;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Where a writer answers `Replicate`: how many changes won, or why nothing was stored.
pub type ReplicateReply = flume::Sender<Result<usize, String>>;

/// A change that came from another node, routed to the writer that owns its partition.
#[derive(Debug, Clone)]
pub struct RemoteChange {
    pub partition: u16,
    /// The local definition of the table, for its indexes (`None`: table unknown here).
    pub table: Option<Arc<TableDef>>,
    pub change: Change,
}

impl Writer {
    /// Applies one change from another node if it wins last-writer-wins against the stored
    /// version (tombstones included). Returns whether it was stored.
    pub(super) fn apply_remote(
        &mut self,
        rc: &RemoteChange,
        batch: &mut fjall::OwnedWriteBatch,
        overlay: &mut HashMap<Vec<u8>, Option<Vec<u8>>>,
        record_delta: &mut i64,
    ) -> Result<bool, String> {
        let c = &rc.change;
        let incoming = Version {
            clock: c.clock,
            node: c.node,
        };
        self.hlc.observe(incoming);
        let key = keys::record_key(&c.table, rc.partition, &c.id);
        let current: Option<Vec<u8>> = match overlay.get(&key) {
            Some(v) => v.clone(),
            None => self
                .db
                .records
                .get(&key)
                .map_err(|e| format!("read failed: {e}"))?
                .map(|s| s.to_vec()),
        };
        let stored = current.as_deref().and_then(Envelope::decode);
        if stored.is_some_and(|e| e.version >= incoming) {
            return Ok(false);
        }
        let old_live = stored.filter(|e| !e.tombstone);
        let new_body = match c.op {
            ChangeOp::Put => Some(c.body.as_slice()),
            ChangeOp::Delete => None,
        };
        // Routed before this node knew the table? It may know it now (a table created since
        // reindexes what was stored before; this covers what is stored after).
        let late = match (&rc.table, &self.catalog) {
            (None, Some(cat)) => crate::storage::catalog::Catalog::lookup(cat, &c.table),
            _ => None,
        };
        if let Some(table) = rc
            .table
            .as_deref()
            .or(late.as_deref())
            .filter(|t| !t.indexes.is_empty())
        {
            let old_doc: Option<Value> = old_live.and_then(|e| serde_json::from_slice(e.body).ok());
            let new_doc: Option<Value> = new_body.and_then(|b| serde_json::from_slice(b).ok());
            for attr in &table.indexes {
                let old_terms = index_entries(&c.table, attr, old_doc.as_ref(), &c.id);
                let new_terms = index_entries(&c.table, attr, new_doc.as_ref(), &c.id);
                for k in old_terms.difference(&new_terms) {
                    batch.remove(&self.db.index, k.clone());
                }
                for k in new_terms.difference(&old_terms) {
                    batch.insert(&self.db.index, k.clone(), b"".to_vec());
                }
            }
        }
        let value = Envelope::encode(incoming, new_body.is_none(), new_body.unwrap_or(b""));
        batch.insert(&self.db.records, key.clone(), value.clone());
        overlay.insert(key, Some(value));
        // Into the local change log too (for subscribers), marked by its origin node.
        batch.insert(
            &self.db.changelog,
            keys::seq_key(self.next_seq).to_vec(),
            c.encode(),
        );
        self.next_seq += 1;
        // This node's own change, applied this way (a table declaration): streams send it.
        self.logged_own |= c.node == self.settings.node_id;
        if !self.feeds.is_empty() {
            self.pending.push(c.clone());
        }
        *record_delta += match (old_live.is_some(), new_body.is_some()) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        };
        Ok(true)
    }

    /// Between groups nothing is in flight: every change with a clock below the next one is
    /// committed. Replication tells peers how far they are complete with it.
    pub(super) fn publish_own_clock(&mut self) {
        let c = self.hlc.now().clock.saturating_sub(1);
        self.stats.own_clock.fetch_max(c, Ordering::Release);
    }

    /// Removes the tombstones that still hold exactly the given versions; returns how many.
    pub(super) fn purge(
        &mut self,
        keys: &[(Vec<u8>, Version)],
        batch: &mut fjall::OwnedWriteBatch,
        overlay: &mut HashMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> usize {
        let mut n = 0;
        for (key, version) in keys {
            let current: Option<Vec<u8>> = match overlay.get(key) {
                Some(v) => v.clone(),
                None => match self.db.records.get(key) {
                    Ok(v) => v.map(|s| s.to_vec()),
                    Err(_) => continue,
                },
            };
            let same = current
                .as_deref()
                .and_then(Envelope::decode)
                .is_some_and(|e| e.tombstone && e.version == *version);
            if same {
                batch.remove(&self.db.records, key.clone());
                overlay.insert(key.clone(), None);
                n += 1;
            }
        }
        n
    }
}
