//! Table changes at run time (create, drop), executed one at a time on shard 0: the catalog
//! file is rewritten, every shard takes the new catalog, and (for a drop) every writer removes
//! the table's data, before the requester gets its answer.

use super::mesh::{AdminOp, AdminResult, MeshMsg};
use super::shard::Shard;
use crate::config::{validate_table, TableConfig};
use crate::storage::writer::WriterMsg;
use std::sync::Arc;

pub async fn apply(shard: &Shard, op: AdminOp) -> AdminResult {
    let mut catalog = shard.catalog.borrow().clone();
    let dropped = match op {
        AdminOp::Create {
            name,
            primary_key,
            indexes,
        } => {
            let def = TableConfig {
                name,
                primary_key,
                indexes,
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
            if catalog.tables.len() >= 1024 {
                return Err((400, "at most 1024 tables".into()));
            }
            catalog.tables.insert(def.name.clone(), Arc::new(def));
            None
        }
        AdminOp::Drop { name } => {
            if catalog.tables.remove(&name).is_none() {
                return Err((404, format!("table {name:?} does not exist")));
            }
            Some(name)
        }
    };
    let dir = shard.node.data_dir.clone();
    let to_save = catalog.clone();
    glommio::executor()
        .spawn_blocking(move || to_save.save(&dir))
        .await
        .map_err(|e| (500, format!("cannot write the catalog: {e}")))?;
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
    if let Some(name) = dropped {
        for w in &shard.node.writers {
            let (done, wait) = flume::bounded(1);
            w.send_async(WriterMsg::DropTable {
                table: name.clone(),
                done,
            })
            .await
            .map_err(|_| (503, "shutting down".to_string()))?;
            wait.recv_async()
                .await
                .map_err(|_| (503, "shutting down".to_string()))?
                .map_err(|e| (500, e))?;
        }
        tracing::info!(table = %name, "table dropped");
    }
    Ok(())
}
