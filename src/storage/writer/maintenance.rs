//! The writer's upkeep: trimming the change log past its retention, dropping a table's data,
//! and rebuilding a table's index entries after its indexes changed.

use super::*;
use crate::storage::changelog::Change;

impl Writer {
    /// Drops change-log entries past the retention (age or count), a bounded number per call.
    pub(super) fn trim_changelog(&mut self) -> fjall::Result<()> {
        let max = self.settings.changelog_max_entries;
        let horizon_ms = self
            .settings
            .clock
            .now_millis()
            .saturating_sub(self.settings.changelog_retention.as_millis() as u64);
        let mut batch = self.db.db.batch();
        let mut removed = 0u64;
        let mut seq = self.first_seq;
        // The last entry always stays: at start the writer continues the log after it, so an
        // emptied log would begin again at 1 and reuse sequences its peers' cursors hold.
        while seq + 1 < self.next_seq && removed < 10_000 {
            let too_many = self.next_seq - seq > max;
            if !too_many {
                let old_enough = match self.db.changelog.get(keys::seq_key(seq))? {
                    Some(v) => Change::decode(&v)
                        .map(|c| (c.clock >> 16) < horizon_ms)
                        .unwrap_or(true),
                    None => true,
                };
                if !old_enough {
                    break;
                }
            }
            batch.remove(&self.db.changelog, keys::seq_key(seq).to_vec());
            seq += 1;
            removed += 1;
        }
        if removed > 0 {
            batch.commit()?;
            self.first_seq = seq;
            self.stats.changelog_first.store(seq, Ordering::Relaxed);
        }
        Ok(())
    }

    pub(super) fn drop_table(&mut self, table: &str) -> fjall::Result<()> {
        let mut prefix = Vec::new();
        keys::table_prefix(table, &mut prefix);
        let mut removed = 0i64;
        for ks in [&self.db.records, &self.db.index] {
            let mut batch = self.db.db.batch();
            for guard in ks.prefix(&prefix) {
                let (k, v) = guard.into_inner()?;
                if std::ptr::eq(ks, &self.db.records)
                    && Envelope::decode(&v).is_some_and(|e| !e.tombstone)
                {
                    removed += 1;
                }
                batch.remove(ks, k);
                if batch.len() >= 10_000 {
                    std::mem::replace(&mut batch, self.db.db.batch()).commit()?;
                }
            }
            batch.commit()?;
        }
        self.db.db.persist(PersistMode::SyncAll)?;
        self.stats.records.fetch_sub(removed, Ordering::Relaxed);
        Ok(())
    }

    pub(super) fn reindex(
        &mut self,
        table: &TableDef,
        old_indexes: &[String],
    ) -> fjall::Result<()> {
        let mut batch = self.db.db.batch();
        for attr in old_indexes {
            for guard in self.db.index.prefix(keys::index_prefix(&table.name, attr)) {
                batch.remove(&self.db.index, guard.key()?);
            }
        }
        let mut prefix = Vec::new();
        keys::table_prefix(&table.name, &mut prefix);
        for guard in self.db.records.prefix(&prefix) {
            let (k, v) = guard.into_inner()?;
            let (Some((_, _, id)), Some(env)) = (keys::split_record_key(&k), Envelope::decode(&v))
            else {
                continue;
            };
            if env.tombstone {
                continue;
            }
            let doc: Option<Value> = serde_json::from_slice(env.body).ok();
            for attr in &table.indexes {
                for term in index_entries(&table.name, attr, doc.as_ref(), id) {
                    batch.insert(&self.db.index, term, b"".to_vec());
                }
            }
            if batch.len() >= 10_000 {
                std::mem::replace(&mut batch, self.db.db.batch()).commit()?;
            }
        }
        batch.commit()?;
        self.db.db.persist(PersistMode::SyncAll)
    }
}
