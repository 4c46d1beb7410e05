//! Changing users, roles and the token key on a running node: each is one record of a system
//! table, written through the record API like any record (so it gets a version, reaches the
//! change log and replicates to every peer). Passwords are hashed here, on the blocking pool;
//! the plain password goes no further. Errors are (HTTP status, message).

use super::directory::{Directory, KeyRecord};
use super::model::{self, Role, UserRecord, ROLES, SECRETS, TOKEN_KEY_ID, USERS};
use super::password;
use crate::runtime::records::{self, Doc, Precondition, RecordError, RecordWrite};
use crate::runtime::shard::Shard;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub type StoreResult<T> = Result<T, (u16, String)>;

fn record_error(what: &str, e: RecordError) -> (u16, String) {
    match e {
        RecordError::NotFound => (404, format!("{what} does not exist")),
        RecordError::Exists => (409, format!("{what} already exists")),
        // Creates are `IfAbsent`, updates `IfExists`: what failed is the other case.
        RecordError::PreconditionFailed => (
            409,
            format!("{what} was created or deleted meanwhile; try again"),
        ),
        RecordError::Busy => (503, "the node is busy; try again".into()),
        RecordError::Stopping => (503, "the node is shutting down".into()),
        RecordError::Invalid(m) | RecordError::Storage(m) => (500, m),
        RecordError::Rejected { status, message } => (status, message),
    }
}

fn doc_of<T: serde::Serialize>(value: &T) -> StoreResult<Doc> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(doc)) => Ok(doc),
        _ => Err((500, "cannot encode the record".into())),
    }
}

async fn write(
    shard: &Shard,
    what: &str,
    w: Result<RecordWrite, RecordError>,
) -> StoreResult<bool> {
    let w = w.map_err(|e| record_error(what, e))?;
    match records::write(shard, w).await {
        Ok(written) => Ok(written.created),
        Err(e) => Err(record_error(what, e)),
    }
}

/// Creates a record whose id is its `name` (409 if a live one has it).
async fn create(shard: &Shard, table: &str, what: &str, doc: Doc) -> StoreResult<()> {
    match records::create(shard, &model::table_def(table), doc).await {
        Ok(_) => Ok(()),
        Err(e) => Err(record_error(what, e)),
    }
}

/// The roles a user is given must exist (or be `super_user`).
fn check_roles_exist(dir: &Directory, roles: &[String]) -> StoreResult<()> {
    model::check_user_roles(roles).map_err(|m| (400, m))?;
    match roles.iter().find(|r| dir.role(r).is_none()) {
        Some(r) => Err((400, format!("role {r:?} does not exist (create it first)"))),
        None => Ok(()),
    }
}

/// Hashes a password on the blocking pool.
async fn hash(password: Vec<u8>) -> StoreResult<String> {
    model::check_password(&password).map_err(|m| (400, m))?;
    glommio::executor()
        .spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|m| (500, m))
}

/// Creates user `name` (409 if it exists). `dir` is the current directory.
pub async fn create_user(
    shard: &Shard,
    dir: &Directory,
    name: &str,
    password: Vec<u8>,
    roles: Vec<String>,
) -> StoreResult<()> {
    model::check_name("user", name).map_err(|m| (400, m))?;
    check_roles_exist(dir, &roles)?;
    if dir.users().len() >= model::MAX_USERS {
        return Err((409, format!("at most {} users", model::MAX_USERS)));
    }
    let user = UserRecord {
        name: name.to_string(),
        password: hash(password).await?,
        roles,
    };
    create(shard, USERS, &format!("user {name:?}"), doc_of(&user)?).await
}

/// Changes the password and/or roles of user `name` (404 if it does not exist).
pub async fn update_user(
    shard: &Shard,
    dir: &Directory,
    name: &str,
    password: Option<Vec<u8>>,
    roles: Option<Vec<String>>,
) -> StoreResult<()> {
    let what = format!("user {name:?}");
    let current = dir
        .user(name)
        .ok_or((404, format!("{what} does not exist")))?;
    let mut user = current.record.clone();
    if let Some(roles) = roles {
        check_roles_exist(dir, &roles)?;
        user.roles = roles;
    }
    if let Some(p) = password {
        user.password = hash(p).await?;
    }
    let w = RecordWrite::put(
        &model::table_def(USERS),
        name,
        doc_of(&user)?,
        Precondition::IfExists,
    );
    write(shard, &what, w).await.map(|_| ())
}

/// Deletes user `name`.
pub async fn delete_user(shard: &Shard, name: &str) -> StoreResult<()> {
    let w = RecordWrite::delete(&model::table_def(USERS), name, Precondition::None);
    write(shard, &format!("user {name:?}"), w).await.map(|_| ())
}

/// Stores role `role` (checked); `create` refuses to replace an existing one. Answers whether
/// it was created.
pub async fn put_role(
    shard: &Shard,
    dir: &Directory,
    role: &Role,
    only_new: bool,
) -> StoreResult<bool> {
    model::check_role(role).map_err(|m| (400, m))?;
    if dir.role(&role.name).is_none() && dir.roles().len() >= model::MAX_ROLES {
        return Err((409, format!("at most {} roles", model::MAX_ROLES)));
    }
    let what = format!("role {:?}", role.name);
    if only_new {
        return create(shard, ROLES, &what, doc_of(role)?)
            .await
            .map(|_| true);
    }
    let w = RecordWrite::put(
        &model::table_def(ROLES),
        &role.name,
        doc_of(role)?,
        Precondition::None,
    );
    write(shard, &what, w).await
}

/// Deletes role `name`, unless a user still holds it.
pub async fn delete_role(shard: &Shard, dir: &Directory, name: &str) -> StoreResult<()> {
    if name == model::SUPER_USER {
        return Err((400, format!("{name:?} is built in and cannot be deleted")));
    }
    let holders: Vec<&str> = dir
        .users()
        .into_iter()
        .filter(|(_, roles)| roles.iter().any(|r| r == name))
        .map(|(u, _)| u)
        .take(10)
        .collect();
    if !holders.is_empty() {
        return Err((
            409,
            format!("role {name:?} is held by {holders:?}; take it from them first"),
        ));
    }
    let w = RecordWrite::delete(&model::table_def(ROLES), name, Precondition::None);
    write(shard, &format!("role {name:?}"), w).await.map(|_| ())
}

/// Creates the cluster's token key if no node has yet: 32 random bytes in `_secrets`. Two
/// nodes that create one at the same moment converge on one (last writer wins); tokens
/// signed with the other stop working and their users log in again.
pub async fn create_token_key(shard: &Shard) -> StoreResult<()> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| (500, format!("no randomness for a key: {e}")))?;
    let rec = KeyRecord {
        name: TOKEN_KEY_ID.to_string(),
        key: STANDARD.encode(key),
    };
    match create(shard, SECRETS, "the token key", doc_of(&rec)?).await {
        Ok(_) | Err((409, _)) => Ok(()),
        Err(e) => Err(e),
    }
}
