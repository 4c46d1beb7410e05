//! The node's storage service: every shard's database, the catalog (persisted tables merged
//! with the config's), one writer thread per shard, the change feeds from the writers to the
//! shards, and the background fsync of `buffered` durability. Started first, stopped last:
//! every writer flushes and every thread is joined before the node reports it stopped.

use super::StartError;
use crate::config::{Config, Durability, TableConfig};
use crate::storage::catalog::{Catalog, SharedCatalog, TableDef};
use crate::storage::changelog::ChangeBatch;
use crate::storage::layout::Layout;
use crate::storage::shard_db::ShardDb;
use crate::storage::writer::{
    FeedTarget, WriteCheck, Writer, WriterMsg, WriterSettings, WriterStats,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A table whose indexes changed since the data was written, with the indexes it had.
type Reindex = (Arc<TableDef>, Vec<String>);

/// The running storage of a node.
pub struct Storage {
    pub dbs: Vec<ShardDb>,
    pub catalog: Catalog,
    pub shared_catalog: SharedCatalog,
    pub writers: Vec<flume::Sender<WriterMsg>>,
    pub writer_stats: Vec<Arc<WriterStats>>,
    /// Per shard: how many change-feed listeners it has (writers skip shards with none).
    pub feed_interest: Vec<Arc<AtomicU64>>,
    /// Per shard: the receiving end of its change feed, taken by the shard at start.
    pub feeds: Vec<Option<flume::Receiver<Arc<ChangeBatch>>>>,
    /// The wall clock every writer's HLC and the replication links read.
    pub clock: crate::storage::clock::Clock,
    writer_threads: Vec<JoinHandle<()>>,
    flusher: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

/// Batches of changes a shard's feed holds before a writer drops one (the shard then reads
/// the gap back from the change log).
const FEED_DEPTH: usize = 1024;

impl Storage {
    /// Opens every shard's database, merges the catalog, starts the writers (rebuilding
    /// indexes that changed) and, for `buffered` durability, the background fsync.
    /// `log_grew` is rung by a writer whenever local changes reach its change log; every
    /// local write passes `check` (components' validators) on its writer.
    pub fn start(
        config: &Config,
        component_tables: &[TableConfig],
        layout: &Layout,
        shards: usize,
        log_grew: Option<flume::Sender<()>>,
        check: Option<Arc<dyn WriteCheck>>,
    ) -> Result<Storage, StartError> {
        let data_dir = &config.storage.data_dir;
        let cache = config.storage.cache_mib * 1024 * 1024;
        let dbs: Vec<ShardDb> = (0..shards)
            .map(|s| {
                ShardDb::open(
                    &layout.shard_dir(data_dir, s),
                    (cache / shards as u64).max(1 << 20),
                )
            })
            .collect::<Result<_, _>>()
            .map_err(|e| {
                StartError(format!(
                    "cannot open storage in {}: {e}",
                    data_dir.display()
                ))
            })?;
        let (catalog, reindex) = merge_catalog(config, component_tables)?;
        let shared_catalog = Arc::new(std::sync::RwLock::new(catalog.clone()));
        let feed_interest: Vec<Arc<AtomicU64>> = (0..shards).map(|_| Arc::default()).collect();
        let (targets, feeds): (Vec<_>, Vec<_>) = feed_interest
            .iter()
            .map(|interest| {
                let (tx, rx) = flume::bounded(FEED_DEPTH);
                let target = FeedTarget {
                    tx,
                    interest: interest.clone(),
                };
                (target, Some(rx))
            })
            .unzip();
        let mut storage = Storage {
            dbs,
            catalog,
            shared_catalog,
            writers: Vec::new(),
            writer_stats: Vec::new(),
            feed_interest,
            feeds,
            clock: crate::storage::clock::Clock::system(),
            writer_threads: Vec::new(),
            flusher: None,
        };
        storage.start_writers(config, targets, log_grew, check)?;
        storage.reindex(&reindex)?;
        Ok(storage)
    }

    /// One writer thread per shard, unpinned (they must not compete with a shard's core).
    fn start_writers(
        &mut self,
        config: &Config,
        feeds: Vec<FeedTarget>,
        log_grew: Option<flume::Sender<()>>,
        check: Option<Arc<dyn WriteCheck>>,
    ) -> Result<(), StartError> {
        let settings = WriterSettings {
            node_id: config.cluster.node_id,
            clock: self.clock.clone(),
            durability: config.storage.durability,
            changelog_retention: Duration::from_secs(config.storage.changelog_retention_secs),
            changelog_max_entries: config.storage.changelog_max_entries,
            spin: Duration::from_micros(config.shards.spin_before_park_us),
        };
        let dirty: Vec<Arc<AtomicBool>> = self.dbs.iter().map(|_| Arc::default()).collect();
        for (s, db) in self.dbs.iter().enumerate() {
            let w = Writer::new(db.clone(), settings.clone(), dirty[s].clone())
                .map_err(|e| StartError(format!("cannot read storage of shard {s}: {e}")))?
                .with_feeds(s, feeds.clone())
                .with_log_signal(log_grew.clone())
                .with_catalog(self.shared_catalog.clone())
                .with_check(check.clone());
            self.writer_stats.push(w.stats());
            let (tx, rx) = flume::bounded(config.storage.write_queue_depth);
            self.writers.push(tx);
            let thread = std::thread::Builder::new()
                .name(format!("writer-{s}"))
                .spawn(move || w.run(rx))
                .map_err(|e| StartError(format!("cannot start writer thread: {e}")))?;
            self.writer_threads.push(thread);
        }
        if config.storage.durability == Durability::Buffered {
            let every = Duration::from_millis(config.storage.flush_interval_ms);
            let (dbs, stop) = (self.dbs.clone(), Arc::new(AtomicBool::new(false)));
            let stop2 = stop.clone();
            let thread = std::thread::Builder::new()
                .name("flusher".into())
                .spawn(move || background_fsync(dbs, dirty, stop2, every))
                .map_err(|e| StartError(format!("cannot start the flusher thread: {e}")))?;
            self.flusher = Some((stop, thread));
        }
        Ok(())
    }

    /// Rebuilds, through every writer, the indexes of tables whose index set changed.
    fn reindex(&self, tables: &[Reindex]) -> Result<(), StartError> {
        for (table, old) in tables {
            for w in &self.writers {
                let (done, wait) = flume::bounded(1);
                let _ = w.send(WriterMsg::Reindex {
                    table: table.clone(),
                    old_indexes: old.clone(),
                    done,
                });
                wait.recv()
                    .map_err(|_| StartError("writer stopped".into()))?
                    .map_err(|e| StartError(format!("reindex of {} failed: {e}", table.name)))?;
            }
            tracing::info!(table = %table.name, indexes = ?table.indexes, "indexes rebuilt");
        }
        Ok(())
    }

    /// Flushes and stops every writer, then the flusher; joins their threads.
    pub fn stop(self) {
        for w in &self.writers {
            let (done, wait) = flume::bounded(1);
            if w.send(WriterMsg::Stop { done }).is_ok() {
                let _ = wait.recv();
            }
        }
        drop(self.writers);
        for t in self.writer_threads {
            if t.join().is_err() {
                tracing::error!("a writer thread panicked while stopping");
            }
        }
        if let Some((stop, thread)) = self.flusher {
            stop.store(true, Ordering::Release);
            let _ = thread.join();
        }
    }
}

/// Loads the persisted catalog and folds in the TOML tables, then the tables components need
/// that the node lacks. Returns the tables whose index set changed (with their old indexes)
/// so their indexes are rebuilt before serving.
fn merge_catalog(
    config: &Config,
    component_tables: &[TableConfig],
) -> Result<(Catalog, Vec<Reindex>), StartError> {
    let data_dir = &config.storage.data_dir;
    let mut catalog =
        Catalog::load(data_dir).map_err(|e| StartError(format!("cannot read catalog: {e}")))?;
    let mut reindex = Vec::new();
    for t in &config.tables {
        match catalog.tables.get(&t.name) {
            Some(existing) if existing.as_ref() == t => {}
            Some(existing) => {
                if existing.primary_key != t.primary_key {
                    return Err(StartError(format!(
                        "table {:?}: `primary_key` is {:?} in the config but the stored table uses {:?}; a primary key cannot change",
                        t.name, t.primary_key, existing.primary_key
                    )));
                }
                let def = Arc::new(t.clone());
                reindex.push((def.clone(), existing.indexes.clone()));
                catalog.tables.insert(t.name.clone(), def);
            }
            None => {
                catalog.tables.insert(t.name.clone(), Arc::new(t.clone()));
            }
        }
    }
    for t in component_tables {
        match catalog.tables.get(&t.name) {
            Some(existing) if existing.primary_key != t.primary_key => {
                return Err(StartError(format!(
                    "table {:?}: a component needs primary key {:?} but the table uses {:?}",
                    t.name, t.primary_key, existing.primary_key
                )));
            }
            Some(_) => {}
            None => {
                crate::config::validate_table(t)
                    .map_err(|e| StartError(format!("a component's table: {e}")))?;
                catalog.tables.insert(t.name.clone(), Arc::new(t.clone()));
            }
        }
    }
    catalog
        .save(data_dir)
        .map_err(|e| StartError(format!("cannot write catalog: {e}")))?;
    Ok((catalog, reindex))
}

/// `buffered` durability: syncs each database that took commits since the last round.
fn background_fsync(
    dbs: Vec<ShardDb>,
    dirty: Vec<Arc<AtomicBool>>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(every);
        for (db, d) in dbs.iter().zip(&dirty) {
            if d.swap(false, Ordering::AcqRel) {
                if let Err(e) = db.db.persist(fjall::PersistMode::SyncData) {
                    tracing::error!("background fsync failed: {e}");
                }
            }
        }
    }
}
