//! What a node knows of its users, roles and token key: a snapshot of the system tables read
//! from storage, and the generation it was read at. Writers count every commit that touches
//! an internal table (`WriterStats::internal_commits`); the sum over the shards is the
//! generation, so a shard learns that a user, role or key changed (here or on a peer, through
//! replication) with one load per writer, and reads the tables again only then.

use super::model::{self, Role, UserRecord, ROLES, SECRETS, TOKEN_KEY_ID, USERS};
use super::password;
use super::principal::Principal;
use crate::runtime::shard::NodeShared;
use crate::storage::shard_db::ShardDb;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A stored user, with the stamp of its password hash.
#[derive(Debug, Clone)]
pub struct User {
    pub record: UserRecord,
    pub stamp: [u8; 32],
}

/// The record of `_secrets` that holds the token key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyRecord {
    pub name: String,
    /// 32 random bytes, base64.
    pub key: String,
}

/// Users, roles and the token key as storage held them at `generation`.
#[derive(Debug, Default)]
pub struct Directory {
    pub generation: u64,
    users: HashMap<String, User>,
    roles: HashMap<String, Arc<Role>>,
    token_key: Option<Vec<u8>>,
    /// Storage could not be read: every request is refused until it can.
    broken: bool,
}

/// The generation of the system tables now (see the module doc).
pub fn generation(node: &NodeShared) -> u64 {
    node.writer_stats
        .iter()
        .map(|s| s.internal_commits.0.load(Ordering::Acquire))
        .sum()
}

/// Every live record of `table` on every shard: (id, body). Blocking reads.
fn read_table(dbs: &[ShardDb], table: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for db in dbs {
        for item in db.scan_table(table) {
            let (id, _, value) = item.map_err(|e| format!("cannot read {table}: {e}"))?;
            let body = crate::storage::envelope::Envelope::decode(&value)
                .map(|e| e.body.to_vec())
                .unwrap_or_default();
            out.push((id, body));
        }
    }
    Ok(out)
}

impl Directory {
    /// Reads the system tables from every shard's storage (blocking; bounded by `MAX_USERS`
    /// and `MAX_ROLES`). A read failure gives a directory that refuses everyone.
    pub fn load(dbs: &[ShardDb], generation: u64) -> Directory {
        match Directory::try_load(dbs, generation) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("{e}: every authenticated request is refused until it can be read");
                Directory {
                    generation,
                    broken: true,
                    ..Directory::default()
                }
            }
        }
    }

    fn try_load(dbs: &[ShardDb], generation: u64) -> Result<Directory, String> {
        let mut d = Directory {
            generation,
            ..Directory::default()
        };
        for (id, body) in read_table(dbs, USERS)? {
            match serde_json::from_slice::<UserRecord>(&body) {
                Ok(u) if u.name == id && model::check_user(&u).is_ok() => {
                    if d.users.len() >= model::MAX_USERS {
                        warn_once(
                            "users",
                            "more users than a node keeps: the rest are ignored",
                        );
                        break;
                    }
                    let stamp = password::stamp(&u.password);
                    d.users.insert(id, User { record: u, stamp });
                }
                _ => warn_once(&id, "a stored user is unreadable: ignored"),
            }
        }
        for (id, body) in read_table(dbs, ROLES)? {
            match serde_json::from_slice::<Role>(&body) {
                Ok(r) if r.name == id && model::check_role(&r).is_ok() => {
                    if d.roles.len() >= model::MAX_ROLES {
                        warn_once(
                            "roles",
                            "more roles than a node keeps: the rest are ignored",
                        );
                        break;
                    }
                    d.roles.insert(id, Arc::new(r));
                }
                _ => warn_once(&id, "a stored role is unreadable: ignored"),
            }
        }
        d.token_key = read_table(dbs, SECRETS)?
            .into_iter()
            .filter(|(id, _)| id == TOKEN_KEY_ID)
            .find_map(|(_, body)| decode_key(&body));
        Ok(d)
    }

    /// Whether requests must authenticate: some user exists (or storage could not be read).
    pub fn auth_required(&self) -> bool {
        self.broken || !self.users.is_empty()
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// A role by name; `super_user` is built in.
    pub fn role(&self, name: &str) -> Option<Arc<Role>> {
        if name == model::SUPER_USER {
            return Some(Arc::new(Role::super_user()));
        }
        self.roles.get(name).cloned()
    }

    /// The user `name` with its roles resolved (roles that do not exist grant nothing).
    pub fn principal(&self, name: &str) -> Option<Principal> {
        let u = self.users.get(name)?;
        let grants = u.record.roles.iter().filter_map(|r| self.role(r)).collect();
        Some(Principal::new(name, u.record.roles.clone(), grants))
    }

    /// Every user (name → roles), sorted by name.
    pub fn users(&self) -> BTreeMap<&str, &[String]> {
        self.users
            .iter()
            .map(|(n, u)| (n.as_str(), u.record.roles.as_slice()))
            .collect()
    }

    /// Every stored role, sorted by name.
    pub fn roles(&self) -> BTreeMap<&str, &Role> {
        self.roles
            .iter()
            .map(|(n, r)| (n.as_str(), r.as_ref()))
            .collect()
    }

    pub fn token_key(&self) -> Option<&[u8]> {
        self.token_key.as_deref()
    }
}

/// The key of a `_secrets/token_key` record body.
pub fn decode_key(body: &[u8]) -> Option<Vec<u8>> {
    let rec: KeyRecord = serde_json::from_slice(body).ok()?;
    let key = STANDARD.decode(rec.key).ok()?;
    (key.len() == 32).then_some(key)
}

/// Says once per process and subject that something stored is ignored.
fn warn_once(subject: &str, why: &str) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.len() < 1024 && !said.iter().any(|s| s == subject) {
        said.push(subject.to_string());
        tracing::warn!(subject, "{why}");
    }
}
