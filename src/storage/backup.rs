//! Online backups: a consistent copy of a running node's storage, written as a data directory
//! of its own (`layout.json`, `catalog.json`, `gen-N/shard-I/`) with a manifest,
//! `backup.json`, written last: a directory without it is an incomplete backup.
//!
//! Every shard's database is read through a fjall snapshot, opened for all shards before the
//! first byte is copied (shard 0 first: it holds the replication cursors, which are written
//! only after the data they cover, so the copied cursors never run ahead of the copied data).
//! Every write acknowledged before the backup started is committed, so it is in the snapshots.
//! The copy is a new fjall database per shard, filled in bounded batches, then fsynced.

use super::catalog::Catalog;
use super::layout::{self, Layout};
use super::shard_db::ShardDb;
use fjall::{Database, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The manifest's file name.
pub const MANIFEST: &str = "backup.json";
const FORMAT: u32 = 1;
/// A copy batch is committed once it holds this many bytes (bounded memory).
const BATCH_BYTES: usize = 4 << 20;

/// What a complete backup holds, as `backup.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub version: String,
    pub node_id: u16,
    pub partitions: u32,
    pub shards: usize,
    /// The log generation of the node's data when the backup was taken.
    pub generation: u64,
    /// When the snapshots were taken (ms since the Unix epoch).
    pub started_ms: u64,
    pub duration_ms: u64,
    /// Key-value entries copied, every keyspace of every shard.
    pub entries: u64,
    /// Bytes on disk of the backup directory.
    pub bytes: u64,
}

/// Why a backup was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupError {
    /// The target is not empty or cannot be made: nothing was written.
    Target(String),
    /// Reading or writing failed midway: what was written is removed.
    Failed(String),
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupError::Target(m) | BackupError::Failed(m) => f.write_str(m),
        }
    }
}

/// What a backup reads: the node's shard databases, its catalog and layout.
pub struct Source<'a> {
    pub dbs: &'a [ShardDb],
    /// The node's tables, read once the snapshots are taken: every table whose records they
    /// hold is in it (unless dropped since).
    pub catalog: &'a dyn Fn() -> Catalog,
    pub layout: Layout,
    pub node_id: u16,
}

/// Writes a backup of `source` into `target`, which must be absent or an empty directory.
/// On failure, what was written is removed.
pub fn write(source: &Source<'_>, target: &Path) -> Result<Manifest, BackupError> {
    let clock = Instant::now();
    let started_ms = super::now_millis();
    prepare_target(target).map_err(BackupError::Target)?;
    let snapshots: Vec<Snapshot> = source.dbs.iter().map(|d| d.db.snapshot()).collect();
    let copied = copy_all(source, &snapshots, target);
    drop(snapshots);
    let entries = match copied {
        Ok(n) => n,
        Err(e) => {
            remove_contents(target);
            return Err(BackupError::Failed(e));
        }
    };
    let mut manifest = Manifest {
        format: FORMAT,
        version: env!("CARGO_PKG_VERSION").to_string(),
        node_id: source.node_id,
        partitions: source.layout.partitions,
        shards: source.layout.shards,
        generation: source.layout.generation,
        started_ms,
        duration_ms: 0,
        entries,
        bytes: dir_size(target),
    };
    manifest.duration_ms = clock.elapsed().as_millis() as u64;
    let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    layout::write_atomically(&target.join(MANIFEST), &text).map_err(|e| {
        remove_contents(target);
        BackupError::Failed(format!(
            "cannot write {}: {e}",
            target.join(MANIFEST).display()
        ))
    })?;
    Ok(manifest)
}

/// Reads the manifest of a complete backup.
pub fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{} is not a complete backup: {MANIFEST} is missing (a backup writes it last)",
            dir.display()
        ),
        _ => format!("cannot read {}: {e}", path.display()),
    })?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
    if m.format != FORMAT {
        return Err(format!(
            "backup format {} is not supported by this build (expected {FORMAT})",
            m.format
        ));
    }
    Ok(m)
}

/// Refuses a target that holds anything; creates it if absent.
pub fn prepare_target(target: &Path) -> Result<(), String> {
    match std::fs::read_dir(target) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty; a backup or restore writes only into an empty or new directory",
                    target.display()
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(target)
            .map_err(|e| format!("cannot create {}: {e}", target.display())),
        Err(e) => Err(format!("cannot read {}: {e}", target.display())),
    }
}

/// The layout and catalog files, then every shard's database.
fn copy_all(source: &Source<'_>, snapshots: &[Snapshot], target: &Path) -> Result<u64, String> {
    let io =
        |what: &str, e: std::io::Error| format!("cannot write {what} in {}: {e}", target.display());
    layout::save(target, &source.layout).map_err(|e| io("layout.json", e))?;
    (source.catalog)()
        .save(target)
        .map_err(|e| io("catalog.json", e))?;
    let mut entries = 0;
    for (s, (db, snap)) in source.dbs.iter().zip(snapshots).enumerate() {
        let dir = source.layout.shard_dir(target, s);
        entries += copy_db(&db.db, snap, &dir)
            .map_err(|e| format!("copying shard {s} into {} failed: {e}", dir.display()))?;
    }
    Ok(entries)
}

/// Copies every keyspace of `db`, as `snap` sees it, into a new database at `dir`.
fn copy_db(db: &Database, snap: &Snapshot, dir: &Path) -> fjall::Result<u64> {
    let out = Database::builder(dir)
        .worker_threads(1)
        .manual_journal_persist(true)
        .open()?;
    let mut entries = 0;
    for name in db.list_keyspace_names() {
        let from = db.keyspace(&name, KeyspaceCreateOptions::default)?;
        let to = out.keyspace(&name, KeyspaceCreateOptions::default)?;
        let (mut batch, mut bytes) = (out.batch(), 0usize);
        for guard in snap.iter(&from) {
            let (k, v) = guard.into_inner()?;
            bytes += k.len() + v.len();
            batch.insert(&to, k, v);
            entries += 1;
            if bytes >= BATCH_BYTES {
                batch.commit()?;
                (batch, bytes) = (out.batch(), 0);
            }
        }
        batch.commit()?;
    }
    out.persist(PersistMode::SyncAll)?;
    Ok(entries)
}

/// Bytes on disk of the files under `dir` (allocated blocks: the journals are sparse).
pub fn dir_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.blocks() * 512).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// Removes everything inside `dir` (a failed backup or restore), keeping `dir`.
pub fn remove_contents(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p: PathBuf = e.path();
        let _ = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
            _ => std::fs::remove_file(&p),
        };
    }
}
