//! Replicated table definitions. Every table a node creates or drops at run time is also a
//! record of the internal table `_schema` (id = table name, body = its definition; a drop is
//! a delete, so a tombstone). That table replicates like any other: versions, last-writer-wins,
//! catch-up, anti-entropy repair and digests all apply, so nodes converge on one schema. When
//! a node applies a `_schema` change from a peer, shard 0 reconciles its catalog with the
//! table: it creates what is live there and missing here (and indexes records that arrived
//! before their definition), drops what is deleted there, and adopts a newer definition of a
//! table it has (reindexing; never a changed primary key). At start a node records each of
//! its tables that `_schema` does not hold, and each table its config declares differently,
//! so config-declared tables spread too. `_schema` is invisible to REST and MQTT (it is not in
//! any catalog; names starting with `_` are reserved).

use crate::runtime::admin::{self, Changes, MAX_TABLES};
use crate::runtime::mesh::AdminResult;
use crate::runtime::shard::Shard;
use crate::storage::catalog::TableDef;
use crate::storage::envelope::Envelope;
use crate::storage::keys;
use crate::storage::layout::owner_of;
use crate::storage::shard_db::ShardDb;
use crate::storage::writer::{Precondition, WriteOp, WriteOutcome, WriteRequest, WriterMsg};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The internal table that holds every table's definition.
pub const TABLE: &str = "_schema";

/// What `_schema` holds: live definitions, and names whose record is a tombstone (dropped).
#[derive(Debug, Default)]
pub struct Stored {
    pub live: BTreeMap<String, TableDef>,
    pub dropped: Vec<String>,
}

fn schema_def() -> Arc<TableDef> {
    Arc::new(TableDef {
        name: TABLE.to_string(),
        primary_key: "name".to_string(),
        indexes: Vec::new(),
    })
}

/// Writes a table's definition (`None`: its drop) to `_schema` through the owning writer.
pub async fn record(shard: &Shard, name: &str, def: Option<&TableDef>) -> AdminResult {
    let op = match def {
        Some(d) => WriteOp::Put {
            body: serde_json::to_vec(d).map_err(|e| (500, e.to_string()))?,
        },
        None => WriteOp::Delete,
    };
    let partition = keys::partition_of(TABLE, name, shard.node.partitions);
    let writer = &shard.node.writers[owner_of(partition, shard.node.writers.len())];
    let (reply, wait) = flume::bounded(1);
    writer
        .send_async(WriterMsg::Write {
            req: WriteRequest {
                table: TABLE.to_string(),
                id: name.to_string(),
                partition,
                op,
                precondition: Precondition::None,
            },
            table: schema_def(),
            reply,
        })
        .await
        .map_err(|_| (503, "shutting down".to_string()))?;
    match wait.recv_async().await {
        Ok(WriteOutcome::Written { .. }) | Ok(WriteOutcome::NotFound) => Ok(()),
        Ok(other) => Err((
            500,
            format!(
                "the table changed here but its replicated definition was not stored: {other:?}"
            ),
        )),
        Err(_) => Err((503, "shutting down".to_string())),
    }
}

/// Reads `_schema` from every shard's storage (blocking: run it off the executor).
pub fn stored(dbs: &[ShardDb]) -> Result<Stored, String> {
    let mut out = Stored::default();
    let mut prefix = Vec::new();
    keys::table_prefix(TABLE, &mut prefix);
    for db in dbs {
        for guard in db.records.prefix(&prefix) {
            let (k, v) = guard
                .into_inner()
                .map_err(|e| format!("schema read failed: {e}"))?;
            let (Some((_, _, name)), Some(env)) =
                (keys::split_record_key(&k), Envelope::decode(&v))
            else {
                continue;
            };
            if env.tombstone {
                out.dropped.push(name.to_string());
                continue;
            }
            match serde_json::from_slice::<TableDef>(env.body) {
                Ok(def) if def.name == name => {
                    out.live.insert(name.to_string(), def);
                }
                _ => tracing::warn!(
                    table = name,
                    "unreadable replicated table definition: ignored"
                ),
            }
        }
    }
    Ok(out)
}

/// Brings this node's catalog in line with `_schema` (run on shard 0, serialized with the
/// other table changes). With `seed`, first records the local tables `_schema` lacks.
pub async fn reconcile(shard: &Shard, seed: bool) -> AdminResult {
    let read = || {
        let dbs = shard.node.dbs.clone();
        async move {
            glommio::executor()
                .spawn_blocking(move || stored(&dbs))
                .await
                .map_err(|e| (500, e))
        }
    };
    let mut schema = read().await?;
    if seed {
        let local: Vec<Arc<TableDef>> = shard.catalog.borrow().tables.values().cloned().collect();
        let declared = &shard.node.config.tables;
        let mut wrote = false;
        for def in local {
            let missing = !schema.live.contains_key(&def.name);
            // A table the config declares one way and the cluster holds another: the config
            // of the node started last wins (that is how a config change spreads).
            let config_differs = declared.contains(&def)
                && schema
                    .live
                    .get(&def.name)
                    .is_some_and(|d| d != def.as_ref());
            if missing || config_differs {
                record(shard, &def.name, Some(&def)).await?;
                wrote = true;
            }
        }
        if wrote {
            schema = read().await?;
        }
    }
    let mut catalog = shard.catalog.borrow().clone();
    let mut changes = Changes::default();
    let mut created = Vec::new();
    for (name, def) in schema.live {
        match catalog.tables.get(&name).cloned() {
            None => {
                if let Err(e) = crate::config::validate_table(&def) {
                    tracing::warn!(table = %name, "replicated table definition refused: {e}");
                    continue;
                }
                if catalog.tables.len() >= MAX_TABLES {
                    tracing::warn!(table = %name, "replicated table not created: at most {MAX_TABLES} tables");
                    continue;
                }
                let def = Arc::new(def);
                catalog.tables.insert(name.clone(), def.clone());
                // Records may have arrived before the definition: index them.
                changes.reindex.push((def, Vec::new()));
                created.push(name);
            }
            Some(mine) if *mine != def => {
                if mine.primary_key != def.primary_key {
                    tracing::warn!(table = %name, "a peer defines this table with primary key {:?}; keeping {:?} here (a primary key cannot change)", def.primary_key, mine.primary_key);
                    continue;
                }
                let def = Arc::new(def);
                catalog.tables.insert(name.clone(), def.clone());
                changes.reindex.push((def, mine.indexes.clone()));
                tracing::info!(table = %name, "table definition changed by a peer: reindexing");
            }
            Some(_) => {}
        }
    }
    for name in schema.dropped {
        if catalog.tables.remove(&name).is_some() {
            changes.dropped.push(name);
        }
    }
    if changes.reindex.is_empty() && changes.dropped.is_empty() {
        return Ok(());
    }
    let dropped = changes.dropped.clone();
    admin::install(shard, catalog, changes).await?;
    for t in created {
        tracing::info!(table = %t, "table created by a peer");
    }
    for t in dropped {
        tracing::info!(table = %t, "table dropped by a peer");
    }
    Ok(())
}
