//! Restores a backup (`backup.rs`) into an empty data directory: copies the shard databases,
//! the catalog and the layout, the layout last, so an interrupted restore is never taken for
//! a data directory. The restored data gets a new log generation: peers then hold no cursor
//! into its change logs and compare digests with it instead of trusting sequence numbers that
//! the lost node may have used after the backup (see `docs/operations.md`, "Backups").

use super::backup::{self, Manifest};
use super::layout::{self, Layout};
use std::path::Path;
use std::time::Instant;

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    pub layout: Layout,
    pub bytes: u64,
    pub duration_ms: u64,
}

/// Copies the complete backup in `from` into `data_dir`, which must be absent or empty.
/// On failure, what was copied is removed.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Restored, String> {
    let clock = Instant::now();
    let manifest = backup::read_manifest(from)?;
    let old = read_layout(from, &manifest)?;
    backup::prepare_target(data_dir)?;
    let new = Layout {
        generation: (old.generation + 1).max(super::now_millis()),
        ..old
    };
    if let Err(e) = copy_into(from, &old, data_dir, &new) {
        backup::remove_contents(data_dir);
        return Err(e);
    }
    Ok(Restored {
        manifest,
        layout: new,
        bytes: backup::dir_size(data_dir),
        duration_ms: clock.elapsed().as_millis() as u64,
    })
}

/// The backup's layout, which must agree with its manifest.
fn read_layout(from: &Path, m: &Manifest) -> Result<Layout, String> {
    let path = from.join("layout.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let l: Layout = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
    if (l.partitions, l.shards, l.generation) != (m.partitions, m.shards, m.generation) {
        return Err(format!(
            "{} does not match {}: the backup was altered",
            path.display(),
            from.join(backup::MANIFEST).display()
        ));
    }
    Ok(l)
}

fn copy_into(from: &Path, old: &Layout, data_dir: &Path, new: &Layout) -> Result<(), String> {
    for s in 0..old.shards {
        let (src, dst) = (old.shard_dir(from, s), new.shard_dir(data_dir, s));
        copy_tree(&src, &dst)
            .map_err(|e| format!("copying {} to {} failed: {e}", src.display(), dst.display()))?;
    }
    let catalog = data_dir.join("catalog.json");
    std::fs::copy(from.join("catalog.json"), &catalog)
        .map_err(|e| format!("cannot write {}: {e}", catalog.display()))?;
    layout::save(data_dir, new).map_err(|e| format!("cannot write layout.json: {e}"))
}

/// Copies a directory tree of regular files, fsyncing each file.
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else {
            std::fs::copy(e.path(), &to)?;
            std::fs::File::open(&to)?.sync_all()?;
        }
    }
    std::fs::File::open(dst)?.sync_all()
}
