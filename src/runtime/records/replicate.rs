//! Writes made on other nodes: each change goes to the writer of the shard that owns its key
//! in this node's partition map and is applied there last-writer-wins against the stored
//! version. The caller (replication, table declarations) has checked the changes.

use crate::runtime::shard::NodeShared;
use crate::storage::catalog::Catalog;
use crate::storage::changelog::Change;
use crate::storage::keys;
use crate::storage::layout::owner_of;
use crate::storage::writer::{RemoteChange, WriterMsg};

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
        // Internal tables (`_schema`, `_users`...) are in no catalog: they need no warning.
        if table.is_none() && !change.table.starts_with('_') {
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
