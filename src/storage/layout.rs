//! The data directory: `layout.json` (format, partition count, shard count, generation), the
//! catalog, and one fjall database per shard under `gen-N/shard-I`. Checks a directory before
//! use, and moves partitions to their new owners when the shard count changes (a new
//! generation is written beside the old one and switched to atomically).

use super::keys;
use super::shard_db::ShardDb;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

const FILE: &str = "layout.json";
const FORMAT: u32 = 1;

/// What a data directory was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub format: u32,
    pub partitions: u32,
    pub shards: usize,
    pub generation: u64,
}

/// Why a data directory cannot be used.
#[derive(Debug)]
pub enum LayoutError {
    /// Made with another partition count: refuse, data would be unreachable.
    PartitionMismatch {
        found: u32,
        configured: u32,
    },
    Io(String),
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::PartitionMismatch { found, configured } => write!(
                f,
                "`cluster.partitions` is {configured} but the data directory was created with {found} partitions; \
                 set `cluster.partitions = {found}` (the count is fixed when a data directory is created) or point `storage.data_dir` at a new directory"
            ),
            LayoutError::Io(m) => write!(f, "{m}"),
        }
    }
}

impl Layout {
    /// The directory of one shard's database.
    pub fn shard_dir(&self, data_dir: &Path, shard: usize) -> PathBuf {
        generation_dir(data_dir, self.generation).join(format!("shard-{shard}"))
    }
}

fn generation_dir(data_dir: &Path, generation: u64) -> PathBuf {
    data_dir.join(format!("gen-{generation}"))
}

/// An exclusive lock on a data directory (`flock` on its `lock` file, which holds the
/// owner's pid), held while a node serves it; released when dropped or when the process ends.
pub struct DirLock {
    _file: std::fs::File,
}

/// Creates the data dir if needed and locks it; refuses, with the holder's pid, a directory
/// another process holds.
pub fn lock(data_dir: &Path) -> Result<DirLock, LayoutError> {
    use std::io::{Read, Seek};
    use std::os::unix::io::AsRawFd;
    let io = |what: &str, e: std::io::Error| {
        LayoutError::Io(format!(
            "{what} {}: {e}; check that `storage.data_dir` exists or can be created and is writable by this user",
            data_dir.display()
        ))
    };
    std::fs::create_dir_all(data_dir).map_err(|e| io("cannot create data directory", e))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(data_dir.join("lock"))
        .map_err(|e| io("cannot create the lock file in", e))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(LayoutError::Io(format!(
            "another process (pid {}) holds the data directory {}: stop it, or give this node its own `storage.data_dir`",
            pid.trim(),
            data_dir.display()
        )));
    }
    let _ = file.set_len(0).and_then(|_| file.rewind());
    let _ = file.write_all(std::process::id().to_string().as_bytes());
    Ok(DirLock { _file: file })
}

/// Owner shard of a partition for a shard count.
pub fn owner_of(partition: u16, shards: usize) -> usize {
    partition as usize % shards
}

/// Creates the data dir if needed, proves it writable, and returns its layout: created fresh,
/// read back, or migrated to `shards` shards.
pub fn prepare(
    data_dir: &Path,
    partitions: u32,
    shards: usize,
    cache_bytes: u64,
) -> Result<Layout, LayoutError> {
    let io = |what: &str, e: std::io::Error| {
        LayoutError::Io(format!(
            "{what} {}: {e}; check that `storage.data_dir` exists or can be created and is writable by this user",
            data_dir.display()
        ))
    };
    std::fs::create_dir_all(data_dir).map_err(|e| io("cannot create data directory", e))?;
    let probe = data_dir.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(|e| io("cannot write in data directory", e))?;
    let _ = std::fs::remove_file(&probe);

    let existing = match std::fs::read(data_dir.join(FILE)) {
        Ok(bytes) => Some(serde_json::from_slice::<Layout>(&bytes).map_err(|e| {
            LayoutError::Io(format!("{} is corrupt: {e}", data_dir.join(FILE).display()))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("cannot read layout of", e)),
    };
    let layout = match existing {
        None => {
            let l = Layout {
                format: FORMAT,
                partitions,
                shards,
                generation: 1,
            };
            save(data_dir, &l).map_err(|e| io("cannot write layout in", e))?;
            l
        }
        Some(l) if l.partitions != partitions => {
            return Err(LayoutError::PartitionMismatch {
                found: l.partitions,
                configured: partitions,
            })
        }
        Some(l) if l.format != FORMAT => {
            return Err(LayoutError::Io(format!(
                "data directory format {} is not supported by this build (expected {FORMAT})",
                l.format
            )))
        }
        Some(l) if l.shards != shards => migrate(data_dir, l, shards, cache_bytes)?,
        Some(l) => l,
    };
    // Leftovers of an interrupted migration or of old generations.
    if let Ok(entries) = std::fs::read_dir(data_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(g) = name
                .strip_prefix("gen-")
                .and_then(|g| g.parse::<u64>().ok())
            {
                if g != layout.generation {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    Ok(layout)
}

/// The layout of an existing data directory.
pub fn read(data_dir: &Path) -> Result<Layout, LayoutError> {
    let path = data_dir.join(FILE);
    let bytes = std::fs::read(&path)
        .map_err(|e| LayoutError::Io(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| LayoutError::Io(format!("{} is corrupt: {e}", path.display())))
}

/// Writes `layout.json` atomically.
pub fn save(data_dir: &Path, l: &Layout) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(l).map_err(std::io::Error::other)?;
    write_atomically(&data_dir.join(FILE), &text)
}

/// Writes a file so that a crash leaves either the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Moves every partition to its owner under the new shard count.
fn migrate(
    data_dir: &Path,
    old: Layout,
    shards: usize,
    cache_bytes: u64,
) -> Result<Layout, LayoutError> {
    tracing::info!(
        from = old.shards,
        to = shards,
        "shard count changed: moving partitions to their new shards"
    );
    let new = Layout {
        shards,
        generation: old.generation + 1,
        ..old
    };
    let fail = |e: fjall::Error| LayoutError::Io(format!("moving partitions failed: {e}"));
    let _ = std::fs::remove_dir_all(generation_dir(data_dir, new.generation));
    let per = (cache_bytes / (old.shards + shards) as u64).max(1 << 20);
    let sources: Vec<ShardDb> = (0..old.shards)
        .map(|s| ShardDb::open(&old.shard_dir(data_dir, s), per))
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    let targets: Vec<ShardDb> = (0..shards)
        .map(|s| ShardDb::open(&new.shard_dir(data_dir, s), per))
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    let mut next_seq = vec![1u64; shards];
    let mut moved = 0u64;
    for src in &sources {
        let mut batches: Vec<_> = targets.iter().map(|t| t.db.batch()).collect();
        for guard in src.records.iter() {
            let (k, v) = guard.into_inner().map_err(fail)?;
            let Some((_, p, _)) = keys::split_record_key(&k) else {
                continue;
            };
            batches[owner_of(p, shards)].insert(&targets[owner_of(p, shards)].records, k, v);
            moved += 1;
        }
        for guard in src.index.iter() {
            let k = guard.key().map_err(fail)?;
            let Some((table, id)) = split_index_key(&k) else {
                continue;
            };
            let t = owner_of(keys::partition_of(table, id, old.partitions), shards);
            batches[t].insert(&targets[t].index, k.clone(), b"".to_vec());
        }
        for guard in src.changelog.iter() {
            let (_, v) = guard.into_inner().map_err(fail)?;
            let Some(c) = super::changelog::Change::decode(&v) else {
                continue;
            };
            let t = owner_of(keys::partition_of(&c.table, &c.id, old.partitions), shards);
            batches[t].insert(
                &targets[t].changelog,
                keys::seq_key(next_seq[t]).to_vec(),
                v,
            );
            next_seq[t] += 1;
        }
        for guard in src.mqtt.iter() {
            let (k, v) = guard.into_inner().map_err(fail)?;
            let Some((space, name)) = mqtt_key_owner(&k) else {
                continue;
            };
            let t = owner_of(keys::partition_of(space, name, old.partitions), shards);
            batches[t].insert(&targets[t].mqtt, k, v);
        }
        for b in batches {
            b.commit().map_err(fail)?;
        }
    }
    for t in &targets {
        t.db.persist(fjall::PersistMode::SyncAll).map_err(fail)?;
    }
    drop(targets);
    drop(sources);
    save(data_dir, &new).map_err(|e| LayoutError::Io(format!("cannot write layout: {e}")))?;
    tracing::info!(records = moved, "partitions moved");
    Ok(new)
}

/// The placement of an MQTT state key (see `mqtt/store.rs`): sessions, their queues and
/// QoS 2 state live with the client id (`$mqtt`), retained messages with the topic
/// (`$retained`).
fn mqtt_key_owner(k: &[u8]) -> Option<(&'static str, &str)> {
    let (tag, rest) = (k.first()?, k.get(2..)?);
    let name_end = match tag {
        b'q' | b'p' => rest.iter().position(|b| *b == 0)?,
        _ => rest.len(),
    };
    let name = std::str::from_utf8(&rest[..name_end]).ok()?;
    match tag {
        b's' | b'q' | b'p' => Some(("$mqtt", name)),
        b'r' => Some(("$retained", name)),
        _ => None,
    }
}

/// (table, id) of an index key.
fn split_index_key(k: &[u8]) -> Option<(&str, &str)> {
    let tl = *k.first()? as usize;
    let table = std::str::from_utf8(k.get(1..1 + tl)?).ok()?;
    let al = *k.get(1 + tl)? as usize;
    let rest = k.get(2 + tl + al..)?;
    let (_, used) = super::index_key::decode_value(rest)?;
    let id = std::str::from_utf8(rest.get(used..)?).ok()?;
    Some((table, id))
}
