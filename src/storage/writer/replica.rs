//! The writer's side of replication: which changes from other nodes win last-writer-wins under
//! the writer's single-writer order (`WriterMsg::Replicate`; `version.rs` stores the winners
//! exactly as it stores local writes), tombstone purge (`WriterMsg::PurgeTombstones`), and the
//! clock up to which local changes are committed (`WriterStats::own_clock`).

use super::group::Group;
use super::version::NewVersion;
use super::Writer;
use crate::storage::catalog::{Catalog, TableDef};
use crate::storage::changelog::Change;
use crate::storage::envelope::Envelope;
use crate::storage::hlc::Version;
use crate::storage::keys;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Where a writer answers `Replicate`: how many changes won, or the error that stopped the
/// message (the changes before it are stored; sent again, they lose as duplicates).
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
    /// Applies a message of changes from other nodes into the group; answers how many won, or
    /// the error that stopped it (the changes before it stay in the group).
    pub(super) fn replicate(
        &mut self,
        changes: Vec<RemoteChange>,
        g: &mut Group,
    ) -> Result<usize, String> {
        let total = changes.len();
        let mut applied = 0usize;
        let mut failed = None;
        for rc in changes {
            match self.apply_remote(rc, g) {
                Ok(true) => applied += 1,
                Ok(false) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let s = &self.stats;
        s.replicated.fetch_add(applied as u64, Ordering::Relaxed);
        s.replicated_stale
            .fetch_add((total - applied) as u64, Ordering::Relaxed);
        failed.map_or(Ok(applied), Err)
    }

    /// Stores one change from another node if it wins last-writer-wins against the stored
    /// version (tombstones included). Returns whether it was stored.
    fn apply_remote(&mut self, rc: RemoteChange, g: &mut Group) -> Result<bool, String> {
        let RemoteChange {
            partition,
            table,
            change,
        } = rc;
        let incoming = Version {
            clock: change.clock,
            node: change.node,
        };
        self.hlc.observe(incoming);
        let key = keys::record_key(&change.table, partition, &change.id);
        let old = self.current(&key, &[&g.overlay])?;
        let stored = old.as_deref().and_then(Envelope::decode);
        if stored.is_some_and(|e| e.version >= incoming) {
            return Ok(false);
        }
        // Routed before this node knew the table? It may know it now (a table created since
        // reindexes what was stored before; this covers what is stored after).
        let table = table.or_else(|| {
            let cat = self.catalog.as_ref()?;
            Catalog::lookup(cat, &change.table)
        });
        // Into the local change log too (for subscribers), marked by its origin node.
        let v = NewVersion::new(key, old, change, false)?;
        self.store_version(g, table.as_deref(), v);
        Ok(true)
    }

    /// Between groups nothing is in flight: every change with a clock below the next one is
    /// committed. Replication tells peers how far they are complete with it.
    pub(super) fn publish_own_clock(&mut self) {
        let c = self.hlc.now().clock.saturating_sub(1);
        self.stats.own_clock.fetch_max(c, Ordering::Release);
    }

    /// Removes the tombstones that still hold exactly the given versions; returns how many.
    pub(super) fn purge(&mut self, keys: &[(Vec<u8>, Version)], g: &mut Group) -> usize {
        let mut n = 0;
        for (key, version) in keys {
            let Ok(current) = self.current(key, &[&g.overlay]) else {
                continue;
            };
            let same = current
                .as_deref()
                .and_then(Envelope::decode)
                .is_some_and(|e| e.tombstone && e.version == *version);
            if same {
                g.batch.remove(&self.db.records, key.clone());
                g.overlay.insert(key.clone(), None);
                n += 1;
            }
        }
        g.purged += n as u64;
        n
    }
}
