//! A shard's side of the caching tables: for each table, the fetches this shard runs as the
//! owner of their records (one per key, with the reads waiting for it) and the failures it
//! remembers; and the tasks it starts with the shard: its cache inbox and one eviction sweep
//! per caching table.

use super::negative::Negative;
use super::node::NodeCaches;
use super::Outcome;
use crate::app::shard::AppShard;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// The reads waiting for one fetch (a background refresh waits for nothing).
pub(crate) type Waiters = Vec<flume::Sender<Outcome>>;

/// One caching table on one shard.
#[derive(Default)]
pub(crate) struct TableState {
    /// Fetches running on this shard, by record id.
    pub flights: RefCell<HashMap<String, Waiters>>,
    pub negative: RefCell<Negative>,
}

/// Every caching table's state on one shard, and what the node shares about them.
pub struct ShardCaches {
    pub(crate) node: Arc<NodeCaches>,
    pub(crate) tables: Vec<TableState>,
}

impl ShardCaches {
    pub fn new(node: Arc<NodeCaches>) -> ShardCaches {
        let tables = node.tables.iter().map(|_| TableState::default()).collect();
        ShardCaches { node, tables }
    }
}

/// Starts a shard's cache tasks: the inbox other shards ask fetches through, and the
/// eviction sweeps. Nothing runs on a node without caching tables.
pub(crate) fn start(app: &Rc<AppShard>) -> Result<(), String> {
    let node = &app.caches.node;
    if node.tables.is_empty() {
        return Ok(());
    }
    let inbox = node
        .take_inbox(app.id)
        .ok_or_else(|| format!("the cache inbox of shard {} was taken twice", app.id))?;
    glommio::spawn_local(serve_inbox(app.clone(), inbox)).detach();
    for cache in 0..node.tables.len() {
        glommio::spawn_local(super::sweep::run(app.clone(), cache)).detach();
    }
    Ok(())
}

/// Serves the fetches other shards ask of this one.
async fn serve_inbox(app: Rc<AppShard>, inbox: flume::Receiver<super::node::FillRequest>) {
    while let Ok(req) = inbox.recv_async().await {
        super::flight::request(&app, req);
    }
}
