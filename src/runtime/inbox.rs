//! A shard's inbox: serves what other shards ask of it (its part of a query, catalog changes)
//! and relays the shutdown signal to the shard's main task.

use super::mesh::MeshMsg;
use super::shard::Shard;
use std::rc::Rc;

pub async fn run_inbox(
    shard: Rc<Shard>,
    inbox: flume::Receiver<MeshMsg>,
    stop: glommio::channels::local_channel::LocalSender<()>,
) {
    while let Ok(msg) = inbox.recv_async().await {
        match msg {
            MeshMsg::Query { req, reply } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let result = super::query::run_local(
                        &shard,
                        &req.table,
                        &req.query,
                        req.max_rows as usize,
                    )
                    .await;
                    let _ = reply.send(result);
                })
                .detach();
            }
            MeshMsg::Catalog { catalog, ack } => {
                *shard.catalog.borrow_mut() = catalog;
                let _ = ack.send(());
            }
            MeshMsg::Admin { op, reply } => {
                // Run inline: table changes are serialized on shard 0.
                let _ = reply.send(super::admin::apply(&shard, op).await);
            }
            MeshMsg::Shutdown => {
                let _ = stop.try_send(());
            }
        }
    }
}
