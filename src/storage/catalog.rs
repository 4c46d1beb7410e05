//! Table definitions: the tables a node serves, their primary key and indexed attributes.
//! Declared in TOML and/or created at run time; persisted as `catalog.json` in the data dir so
//! run-time tables survive a restart.

use crate::config::TableConfig;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One table's definition, shared read-only by every shard and writer.
pub type TableDef = TableConfig;

/// The node's current catalog for threads that are not shards (writers, the cluster
/// executor). Shard 0 replaces it, under the write lock, before any shard takes a new catalog.
pub type SharedCatalog = Arc<std::sync::RwLock<Catalog>>;

/// All tables by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, Arc<TableDef>>,
}

const FILE: &str = "catalog.json";

impl Catalog {
    /// Loads the persisted catalog (empty if none).
    pub fn load(data_dir: &Path) -> std::io::Result<Catalog> {
        let path = data_dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::default()),
            Err(e) => return Err(e),
        };
        let list: Vec<TableDef> = serde_json::from_str(&text)
            .map_err(|e| std::io::Error::other(format!("{} is corrupt: {e}", path.display())))?;
        Ok(Catalog {
            tables: list
                .into_iter()
                .map(|t| (t.name.clone(), Arc::new(t)))
                .collect(),
        })
    }

    /// Writes the catalog atomically (temp file, fsync, rename).
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let list: Vec<&TableDef> = self.tables.values().map(|t| t.as_ref()).collect();
        let text = serde_json::to_vec_pretty(&list).map_err(std::io::Error::other)?;
        crate::storage::layout::write_atomically(&data_dir.join(FILE), &text)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<TableDef>> {
        self.tables.get(name)
    }

    /// A table's definition from a shared catalog.
    pub fn lookup(shared: &SharedCatalog, name: &str) -> Option<Arc<TableDef>> {
        shared
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}
