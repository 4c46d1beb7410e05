//! Replicated table definitions. Every table a node creates or drops at run time is also a
//! record of the internal table `_schema` (id = table name, body = its definition; a drop is
//! a delete, so a tombstone). That table replicates like any other: versions, last-writer-wins,
//! catch-up, anti-entropy repair and digests all apply, so nodes converge on one schema. When
//! a node applies a `_schema` change from a peer, shard 0 reconciles its catalog with the
//! table: it creates what is live there and missing here (and indexes records that arrived
//! before their definition), drops what is deleted there, and adopts a definition a peer
//! created at run time for a table it has (reindexing; never a changed primary key).
//!
//! Once a node has caught up with every configured peer after it starts (or after
//! `DECLARE_AFTER` if some stay unreachable), it records each of its tables that `_schema`
//! holds nothing about, with the lowest version there is (clock 1): so every node's
//! config-declared tables reach the others, a joining node declares nothing its peers already
//! hold,
//! identical declarations from different nodes converge at once, and any run-time create or
//! drop (a real clock) wins over a declaration. Definitions that differ only by config stay
//! as each node's config says (logged). `_schema` is invisible to REST and MQTT (it is in no
//! catalog; names starting with `_` are reserved).

use super::admin::{self, Changes, MAX_TABLES};
use super::mesh::AdminResult;
use super::records::{self, Precondition, RecordError, RecordWrite};
use super::shard::{NodeShared, Shard};
use crate::storage::catalog::TableDef;
use crate::storage::changelog::{Change, ChangeOp};
use crate::storage::envelope::Envelope;
use crate::storage::keys;
use crate::storage::shard_db::ShardDb;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The internal table that holds every table's definition.
pub const TABLE: &str = "_schema";

/// The clock of a declaration recorded at start (below every real version).
const DECLARED: u64 = 1;
/// Longest a node waits for its peers before it declares its tables anyway.
pub const DECLARE_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks shard 0 to reconcile (in the background: the answer is not awaited, and a full
/// inbox only delays the request).
pub async fn request_reconcile(node: &NodeShared, seed: bool) {
    let (reply, _) = flume::bounded(1);
    let _ = node.inboxes[0]
        .send_async(super::mesh::MeshMsg::Admin {
            op: super::mesh::AdminOp::Reconcile { seed },
            reply,
        })
        .await;
}

/// What `_schema` holds: live definitions (and whether each is only a declaration), and
/// names whose record is a tombstone (dropped).
#[derive(Debug, Default)]
pub struct Stored {
    pub live: BTreeMap<String, (TableDef, bool)>,
    pub dropped: Vec<String>,
}

fn schema_def() -> Arc<TableDef> {
    Arc::new(TableDef {
        name: TABLE.to_string(),
        primary_key: "name".to_string(),
        indexes: Vec::new(),
        attributes: Default::default(),
    })
}

/// Records a table created here: its definition, at a new version.
pub async fn record_create(shard: &Shard, def: &TableDef) -> AdminResult {
    write(shard, put(def)?).await.map(|_| ())
}

/// Records a table dropped here: a tombstone at a new version. A table `_schema` has no record
/// of yet (declared in config, dropped before its declaration went out) gets one first, so
/// that the drop has something to replace and reaches the peers like any other.
pub async fn record_drop(shard: &Shard, def: &TableDef) -> AdminResult {
    if !write(shard, delete(def)?).await? {
        write(shard, put(def)?).await?;
        write(shard, delete(def)?).await?;
    }
    Ok(())
}

/// The `_schema` write that stores `def`.
fn put(def: &TableDef) -> Result<RecordWrite, (u16, String)> {
    let doc = match serde_json::to_value(def) {
        Ok(serde_json::Value::Object(doc)) => doc,
        other => return Err((500, format!("cannot encode a table definition: {other:?}"))),
    };
    RecordWrite::put(&schema_def(), &def.name, doc, Precondition::None)
        .map_err(|e| (500, e.to_string()))
}

/// The `_schema` write that deletes `def`.
fn delete(def: &TableDef) -> Result<RecordWrite, (u16, String)> {
    RecordWrite::delete(&schema_def(), &def.name, Precondition::None)
        .map_err(|e| (500, e.to_string()))
}

/// Writes to `_schema` through the record API, waiting for room in the writer's queue (a
/// table change is rare and must not be lost to a busy moment). Returns false when there was
/// no record to delete.
async fn write(shard: &Shard, w: RecordWrite) -> Result<bool, (u16, String)> {
    match records::write_when_room(shard, w).await {
        Ok(_) => Ok(true),
        Err(RecordError::NotFound) => Ok(false),
        Err(RecordError::Stopping) => Err((503, "shutting down".to_string())),
        Err(other) => Err((
            500,
            format!("the table changed here but its replicated definition was not stored: {other}"),
        )),
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
                    let declared = env.version.clock == DECLARED;
                    out.live.insert(name.to_string(), (def, declared));
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
        let unknown: Vec<Arc<TableDef>> = local
            .into_iter()
            .filter(|d| !schema.live.contains_key(&d.name) && !schema.dropped.contains(&d.name))
            .collect();
        if !unknown.is_empty() {
            declare(shard, &unknown).await?;
            schema = read().await?;
        }
    }
    let mut catalog = shard.catalog.borrow().clone();
    let mut changes = Changes::default();
    let mut created = Vec::new();
    for (name, (def, declared)) in schema.live {
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
                if declared {
                    warn_differs(&name, "the config of another node declares it differently; keeping this node's definition");
                    continue;
                }
                if mine.primary_key != def.primary_key {
                    warn_differs(&name, "a peer created it with another primary key; keeping this node's (a primary key cannot change)");
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

/// Records declarations of tables `_schema` knows nothing about, at the lowest version (see
/// the module doc), through their owners' writers as if a peer had sent them.
async fn declare(shard: &Shard, defs: &[Arc<TableDef>]) -> AdminResult {
    let node = shard.node.config.cluster.node_id;
    let mut changes = Vec::with_capacity(defs.len());
    for def in defs {
        changes.push(Change {
            table: TABLE.to_string(),
            id: def.name.clone(),
            clock: DECLARED,
            node,
            op: ChangeOp::Put,
            body: serde_json::to_vec(def.as_ref()).map_err(|e| (500, e.to_string()))?,
        });
    }
    records::replicate(&shard.node, changes)
        .await
        .map(|_| ())
        .map_err(|e| (500, format!("cannot record table declarations: {e}")))
}

/// Says once per table and process that a peer's definition is not taken.
fn warn_differs(table: &str, why: &str) {
    thread_local! {
        static SAID: std::cell::RefCell<std::collections::BTreeSet<String>> = Default::default();
    }
    if SAID.with(|s| s.borrow_mut().insert(table.to_string())) {
        tracing::warn!(table, "{why}");
    }
}
