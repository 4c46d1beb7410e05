//! Users and roles written on a stopped node's data directory, for the command line
//! (`microlith user add`, `microlith role add`): the directory's shard databases are opened
//! (fjall's lock refuses while a server runs on them), and each change goes through the
//! owning shard's writer like any write, so it gets a version newer than everything stored,
//! reaches the change log and replicates to the peers when the node runs again.

use super::directory::Directory;
use super::model::{self, Role, UserRecord, ROLES, USERS};
use super::password;
use crate::config::{Config, Durability};
use crate::storage::catalog::TableDef;
use crate::storage::keys;
use crate::storage::layout::{self, owner_of, Layout};
use crate::storage::shard_db::ShardDb;
use crate::storage::writer::{
    Precondition, WriteOp, WriteOutcome, WriteRequest, Writer, WriterMsg, WriterSettings,
};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// A stopped node's storage, opened for a few writes.
struct Offline {
    config: Config,
    layout: Layout,
    dbs: Vec<ShardDb>,
}

/// The layout of the data directory: as stored (never migrated here), or a new one.
fn layout_of(config: &Config) -> Result<Layout, String> {
    let dir = &config.storage.data_dir;
    let shards = match std::fs::read(dir.join("layout.json")) {
        Ok(bytes) => {
            serde_json::from_slice::<Layout>(&bytes)
                .map_err(|e| format!("{}/layout.json is corrupt: {e}", dir.display()))?
                .shards
        }
        Err(_) => crate::runtime::preflight::shard_cores(config)?.len(),
    };
    let cache = config.storage.cache_mib * 1024 * 1024;
    layout::prepare(dir, config.cluster.partitions, shards, cache).map_err(|e| e.to_string())
}

impl Offline {
    fn open(config: &Config) -> Result<Offline, String> {
        let layout = layout_of(config)?;
        let dir = &config.storage.data_dir;
        let mut dbs = Vec::with_capacity(layout.shards);
        for s in 0..layout.shards {
            let db = ShardDb::open(&layout.shard_dir(dir, s), 8 << 20).map_err(|e| match e {
                fjall::Error::Locked => format!(
                    "the data directory {} is in use: a server is running on it; stop it first (users and roles can be added while it runs with POST /admin/users and /admin/roles)",
                    dir.display()
                ),
                e => format!("cannot open storage in {}: {e}", dir.display()),
            })?;
            dbs.push(db);
        }
        Ok(Offline {
            config: config.clone(),
            layout,
            dbs,
        })
    }

    /// Writes one record through its owner's writer; answers whether it was created.
    fn write(&self, table: &str, id: &str, op: WriteOp) -> Result<bool, String> {
        let partition = keys::partition_of(table, id, self.layout.partitions);
        let owner = owner_of(partition, self.layout.shards);
        let settings = WriterSettings {
            node_id: self.config.cluster.node_id,
            clock: crate::storage::clock::Clock::system(),
            durability: Durability::Sync,
            changelog_retention: Duration::from_secs(self.config.storage.changelog_retention_secs),
            changelog_max_entries: self.config.storage.changelog_max_entries,
            spin: Duration::ZERO,
        };
        let writer = Writer::new(
            self.dbs[owner].clone(),
            settings,
            Arc::new(AtomicBool::new(false)),
        )
        .map_err(|e| format!("cannot read storage: {e}"))?
        .with_feeds(owner, Vec::new());
        let (tx, rx) = flume::bounded(4);
        let thread = std::thread::spawn(move || writer.run(rx));
        let (reply, answer) = flume::bounded(1);
        let req = WriteRequest {
            table: table.to_string(),
            id: id.to_string(),
            partition,
            op,
            precondition: Precondition::None,
        };
        let def: Arc<TableDef> = model::table_def(table);
        let sent = tx.send(WriterMsg::Write {
            req,
            table: def,
            reply,
        });
        let outcome = answer.recv();
        let (done, stopped) = flume::bounded(1);
        let _ = tx.send(WriterMsg::Stop { done });
        let _ = stopped.recv();
        let _ = thread.join();
        match (sent, outcome) {
            (Ok(()), Ok(WriteOutcome::Written { created, .. })) => Ok(created),
            (_, Ok(WriteOutcome::NotFound)) => Err(format!("{table}/{id} does not exist")),
            (_, Ok(other)) => Err(format!("the write failed: {other:?}")),
            _ => Err("the writer stopped".into()),
        }
    }
}

fn body<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| e.to_string())
}

/// Creates user `name` with `roles`, or replaces its password and roles; `password` is asked
/// for once the rest is known to be right. Answers whether the user was created.
pub fn add_user(
    config: &Config,
    name: &str,
    roles: &[String],
    password: impl FnOnce() -> Result<String, String>,
) -> Result<bool, String> {
    model::check_name("user", name)?;
    model::check_user_roles(roles)?;
    let store = Offline::open(config)?;
    let dir = Directory::load(&store.dbs, 0);
    if let Some(r) = roles.iter().find(|r| dir.role(r).is_none()) {
        return Err(format!(
            "role {r:?} does not exist; create it with `microlith role add {r} ...` or use the built-in role {:?}",
            model::SUPER_USER
        ));
    }
    let password = password()?;
    model::check_password(password.as_bytes())?;
    let user = UserRecord {
        name: name.to_string(),
        password: password::hash(password.as_bytes())?,
        roles: roles.to_vec(),
    };
    store.write(USERS, name, WriteOp::Put { body: body(&user)? })
}

/// Deletes user `name`.
pub fn delete_user(config: &Config, name: &str) -> Result<(), String> {
    model::check_name("user", name)?;
    Offline::open(config)?
        .write(USERS, name, WriteOp::Delete)
        .map(|_| ())
}

/// Creates or replaces `role`. Answers whether it was created.
pub fn add_role(config: &Config, role: &Role) -> Result<bool, String> {
    model::check_role(role)?;
    Offline::open(config)?.write(ROLES, &role.name, WriteOp::Put { body: body(role)? })
}

/// Users (name, roles) and roles, as listed.
pub type Accounts = (Vec<(String, Vec<String>)>, Vec<Role>);

/// Every user (name, roles) and role stored in the data directory.
pub fn list(config: &Config) -> Result<Accounts, String> {
    let store = Offline::open(config)?;
    let dir = Directory::load(&store.dbs, 0);
    let users = dir
        .users()
        .into_iter()
        .map(|(n, r)| (n.to_string(), r.to_vec()))
        .collect();
    let roles = dir.roles().into_values().cloned().collect();
    Ok((users, roles))
}
