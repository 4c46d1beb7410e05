//! Applying what peers send: each change (streamed or repaired) is checked, routed to the
//! writer of the shard that owns its key in *this* node's partition map, and applied there
//! last-writer-wins (`WriterMsg::Replicate`). Returns once every writer involved has committed,
//! so a cursor saved after it never runs ahead of the data.

use crate::runtime::shard::NodeShared;
use crate::storage::catalog::{Catalog, TableDef};
use crate::storage::changelog::{Change, ChangeOp};
use crate::storage::keys;
use crate::storage::layout::owner_of;
use crate::storage::writer::{RemoteChange, WriterMsg};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The table definitions the cluster thread applies with (indexes), reloaded from the catalog
/// file when a change names a table not seen yet (tables can be created at run time).
pub struct Tables {
    tables: RefCell<HashMap<String, Arc<TableDef>>>,
    loaded: RefCell<Option<Instant>>,
    data_dir: std::path::PathBuf,
}

impl Tables {
    pub fn new(data_dir: std::path::PathBuf) -> Tables {
        let t = Tables {
            tables: RefCell::new(HashMap::new()),
            loaded: RefCell::new(None),
            data_dir,
        };
        t.reload();
        t
    }

    fn reload(&self) {
        if let Ok(c) = Catalog::load(&self.data_dir) {
            *self.tables.borrow_mut() = c.tables.into_iter().collect();
        }
        *self.loaded.borrow_mut() = Some(Instant::now());
    }

    pub fn get(&self, name: &str) -> Option<Arc<TableDef>> {
        if let Some(t) = self.tables.borrow().get(name) {
            return Some(t.clone());
        }
        let stale = self
            .loaded
            .borrow()
            .is_none_or(|t| t.elapsed() > Duration::from_secs(1));
        if stale {
            self.reload();
            if let Some(t) = self.tables.borrow().get(name) {
                return Some(t.clone());
            }
            tracing::warn!(
                table = name,
                "replicated change for a table not declared on this node: stored without indexes"
            );
        }
        None
    }
}

/// Checks a change from the network before it goes near storage.
pub fn check_change(c: &Change) -> Result<(), String> {
    check_table_name(&c.table)?;
    if c.id.is_empty() || c.id.len() > 1024 {
        return Err(format!("record id of {} bytes", c.id.len()));
    }
    if c.node == 0 || c.clock == 0 {
        return Err("change without a version".into());
    }
    match c.op {
        ChangeOp::Put => {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&c.body).is_err() {
                return Err(format!("record {:?} body is not JSON", c.id));
            }
        }
        ChangeOp::Delete => {
            if !c.body.is_empty() {
                return Err("delete with a body".into());
            }
        }
    }
    Ok(())
}

/// Table names from the network must be names this build could have made.
pub fn check_table_name(t: &str) -> Result<(), String> {
    if t.is_empty()
        || t.len() > crate::config::MAX_NAME_BYTES
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("bad table name {t:?}"));
    }
    Ok(())
}

/// Applies changes on their owner shards; `Ok(applied)` once every writer has committed.
pub async fn apply(
    node: &NodeShared,
    tables: &Tables,
    changes: Vec<Change>,
) -> Result<usize, String> {
    if changes.is_empty() {
        return Ok(0);
    }
    let shards = node.writers.len();
    let mut per_shard: Vec<Vec<RemoteChange>> = (0..shards).map(|_| Vec::new()).collect();
    for change in changes {
        check_change(&change)?;
        let partition = keys::partition_of(&change.table, &change.id, node.partitions);
        let table = tables.get(&change.table);
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
        applied += crate::runtime::reply::recv(&w)
            .await
            .map_err(|_| "writer stopped".to_string())??;
    }
    Ok(applied)
}
