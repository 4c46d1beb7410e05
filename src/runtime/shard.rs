//! A shard's context: everything one executor owns or may reach — its id, read handles of
//! every shard's database, the senders to every shard's writer and inbox, its copy of the
//! catalog, and its counters. Shared within the shard through `Rc`, never across threads.
//! Services above the runtime (HTTP, MQTT, replication, components) keep their own state
//! beside it and reach the runtime through it, never the other way round.

use super::mesh::MeshMsg;
use crate::config::Config;
use crate::storage::catalog::{Catalog, TableDef};
use crate::storage::keys;
use crate::storage::layout::owner_of;
use crate::storage::shard_db::ShardDb;
use crate::storage::writer::{WriterMsg, WriterStats};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

/// What every shard shares read-only (built once at start-up).
pub struct NodeShared {
    pub config: Config,
    pub data_dir: PathBuf,
    pub partitions: u32,
    pub cores: Vec<usize>,
    pub dbs: Vec<ShardDb>,
    pub writers: Vec<flume::Sender<WriterMsg>>,
    pub writer_stats: Vec<Arc<WriterStats>>,
    pub inboxes: Vec<flume::Sender<MeshMsg>>,
    /// Set by each shard once its listeners accept connections.
    pub serving: Vec<AtomicBool>,
    /// Open HTTP connections per shard.
    pub connections: Vec<AtomicUsize>,
    pub started_ms: u64,
    /// Per shard: how many change-feed listeners it has (writers skip shards with none).
    pub feed_interest: Vec<Arc<std::sync::atomic::AtomicU64>>,
    /// Kernel thread id of each executor thread the reactor kick interrupts: one per shard,
    /// then the replication executor's (0 while it has none).
    pub executor_tids: Arc<Vec<std::sync::atomic::AtomicI32>>,
    /// The current table definitions for writers and the cluster executor (shards keep their
    /// own copy in `Shard::catalog`).
    pub catalog: crate::storage::catalog::SharedCatalog,
    /// The wall clock of the writers' HLCs; replication reads time through it too.
    pub clock: crate::storage::clock::Clock,
}

/// One shard's context.
pub struct Shard {
    pub id: usize,
    pub node: Arc<NodeShared>,
    pub catalog: RefCell<Catalog>,
    /// Requests being handled now (shutdown waits for them).
    pub in_flight: Cell<usize>,
    /// Set when the node is shutting down: connections close after their current request.
    pub draining: Cell<bool>,
    /// Next change-log sequence expected from each writer on the change feed.
    pub feed_next_seq: RefCell<Vec<u64>>,
    /// Local consumers of committed changes.
    pub feed_listeners: RefCell<Vec<super::feed::FeedListener>>,
}

impl Shard {
    pub fn count(&self) -> usize {
        self.node.dbs.len()
    }

    pub fn config(&self) -> &Config {
        &self.node.config
    }

    pub fn table(&self, name: &str) -> Option<Arc<TableDef>> {
        self.catalog.borrow().get(name).cloned()
    }

    /// Registers a consumer of every committed change (see `runtime/feed.rs`).
    pub fn add_feed_listener(&self, listener: super::feed::FeedListener) {
        self.feed_listeners.borrow_mut().push(listener);
        self.node.feed_interest[self.id].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// (partition, owner shard) of a record.
    pub fn locate(&self, table: &str, id: &str) -> (u16, usize) {
        let p = keys::partition_of(table, id, self.node.partitions);
        (p, owner_of(p, self.count()))
    }
}
