//! Table changes at run time (create, drop), executed one at a time on shard 0: the catalog
//! file is rewritten, the node's shared catalog and every shard take the new catalog, and
//! (for a drop) every writer removes the table's data, before the requester gets its answer.
//! With clustering on, each change is also written to the replicated schema table
//! (`cluster::schema`), and changes made on peers arrive here as `Reconcile`.

use super::mesh::{AdminOp, AdminResult, MeshMsg};
use super::shard::Shard;
use crate::config::{validate_table, TableConfig};
use crate::storage::catalog::{Catalog, TableDef};
use crate::storage::writer::WriterMsg;
use std::sync::Arc;

/// Most tables a node holds.
pub const MAX_TABLES: usize = 1024;

pub async fn apply(shard: &Shard, op: AdminOp) -> AdminResult {
    let mut catalog = shard.catalog.borrow().clone();
    let clustered = shard.node.config.cluster.enabled();
    match op {
        AdminOp::Create {
            name,
            primary_key,
            indexes,
            attributes,
        } => {
            let def = TableConfig {
                name,
                primary_key,
                indexes,
                attributes: typed(attributes).map_err(|m| (400, m))?,
            };
            validate_table(&def).map_err(|m| (400, m))?;
            if let Some(existing) = catalog.get(&def.name) {
                return if existing.as_ref() == &def {
                    Ok(())
                } else {
                    Err((
                        409,
                        format!(
                            "table {:?} already exists with another definition",
                            def.name
                        ),
                    ))
                };
            }
            if catalog.tables.len() >= MAX_TABLES {
                return Err((400, format!("at most {MAX_TABLES} tables")));
            }
            let def = Arc::new(def);
            catalog.tables.insert(def.name.clone(), def.clone());
            install(shard, catalog, Changes::default()).await?;
            if clustered {
                super::schema::record_create(shard, &def).await?;
            }
            Ok(())
        }
        AdminOp::Drop { name } => {
            let Some(def) = catalog.tables.remove(&name) else {
                return Err((404, format!("table {name:?} does not exist")));
            };
            let changes = Changes {
                dropped: vec![name.clone()],
                ..Default::default()
            };
            install(shard, catalog, changes).await?;
            tracing::info!(table = %name, "table dropped");
            if clustered {
                super::schema::record_drop(shard, &def).await?;
            }
            Ok(())
        }
        AdminOp::Reconcile { seed } => {
            if clustered {
                super::schema::reconcile(shard, seed).await?;
            }
            Ok(())
        }
    }
}

/// What a new catalog changes besides the definitions themselves.
#[derive(Default)]
pub struct Changes {
    /// Tables whose data every writer removes.
    pub dropped: Vec<String>,
    /// Tables whose indexes every writer rebuilds, with the indexes they had before.
    pub reindex: Vec<(Arc<TableDef>, Vec<String>)>,
}

/// Makes `catalog` the node's catalog: file, shared copy, every shard; then drops and
/// reindexes through every writer.
pub async fn install(shard: &Shard, catalog: Catalog, changes: Changes) -> AdminResult {
    let dir = shard.node.data_dir.clone();
    let to_save = catalog.clone();
    glommio::executor()
        .spawn_blocking(move || to_save.save(&dir))
        .await
        .map_err(|e| (500, format!("cannot write the catalog: {e}")))?;
    *shard
        .node
        .catalog
        .write()
        .unwrap_or_else(|e| e.into_inner()) = catalog.clone();
    let mut acks = Vec::new();
    for (s, inbox) in shard.node.inboxes.iter().enumerate() {
        if s == shard.id {
            continue;
        }
        let (ack, wait) = flume::bounded(1);
        inbox
            .send_async(MeshMsg::Catalog {
                catalog: catalog.clone(),
                ack,
            })
            .await
            .map_err(|_| (503, "shutting down".to_string()))?;
        acks.push(wait);
    }
    *shard.catalog.borrow_mut() = catalog;
    for a in acks {
        let _ = a.recv_async().await;
    }
    for w in &shard.node.writers {
        for name in &changes.dropped {
            let (done, wait) = flume::bounded(1);
            send(
                w,
                WriterMsg::DropTable {
                    table: name.clone(),
                    done,
                },
                wait,
            )
            .await?;
        }
        for (table, old) in &changes.reindex {
            let (done, wait) = flume::bounded(1);
            send(
                w,
                WriterMsg::Reindex {
                    table: table.clone(),
                    old_indexes: old.clone(),
                    done,
                },
                wait,
            )
            .await?;
        }
    }
    Ok(())
}

async fn send(
    w: &flume::Sender<WriterMsg>,
    msg: WriterMsg,
    wait: flume::Receiver<Result<(), String>>,
) -> AdminResult {
    w.send_async(msg)
        .await
        .map_err(|_| (503, "shutting down".to_string()))?;
    wait.recv_async()
        .await
        .map_err(|_| (503, "shutting down".to_string()))?
        .map_err(|e| (500, e))
}

/// Attribute types as a create carries them, parsed.
fn typed(list: Vec<(String, String)>) -> Result<crate::storage::attributes::Attributes, String> {
    list.into_iter()
        .map(|(name, t)| {
            let ty = crate::storage::attributes::AttrType::try_from(t)
                .map_err(|m| format!("attribute {name:?}: {m}"))?;
            Ok((name, ty))
        })
        .collect()
}
