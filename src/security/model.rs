//! Users and roles as they are stored: the records of the system tables `_users` (id = user
//! name) and `_roles` (id = role name), their JSON forms, their bounds, and the checks every
//! way in (HTTP admin endpoints, the command line, replication readers) applies before a
//! user or role is written or believed. The role `super_user` is built in: it may do
//! everything, is never stored, and cannot be redefined.

use crate::storage::catalog::TableDef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The system table of users (replicated like any table, invisible to REST and MQTT).
pub const USERS: &str = "_users";
/// The system table of roles.
pub const ROLES: &str = "_roles";
/// The system table of the node-wide secrets (the token signing key).
pub const SECRETS: &str = "_secrets";
/// The record of `SECRETS` that holds the token signing key.
pub const TOKEN_KEY_ID: &str = "token_key";
/// The built-in role that may do everything.
pub const SUPER_USER: &str = "super_user";

/// Most users a node believes (more are ignored, with a warning).
pub const MAX_USERS: usize = 10_000;
/// Most roles a node believes.
pub const MAX_ROLES: usize = 1_000;
/// Most roles one user holds.
pub const MAX_ROLES_PER_USER: usize = 16;
/// Most table entries and topic rules in one role.
pub const MAX_TABLE_RULES: usize = 256;
pub const MAX_TOPIC_RULES: usize = 256;
/// Longest user or role name.
pub const MAX_NAME_BYTES: usize = 64;
/// Shortest and longest password.
pub const MIN_PASSWORD_BYTES: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest MQTT topic filter in a rule.
pub const MAX_FILTER_BYTES: usize = 1024;

/// What a table permission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableOp {
    Read,
    Insert,
    Update,
    Delete,
}

impl TableOp {
    pub fn as_str(self) -> &'static str {
        match self {
            TableOp::Read => "read",
            TableOp::Insert => "insert",
            TableOp::Update => "update",
            TableOp::Delete => "delete",
        }
    }
}

/// A stored user: the password only as an argon2 PHC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// What a role allows on one table (or on every table, under the name `*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TablePerms {
    pub read: bool,
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
}

impl TablePerms {
    pub fn allows(&self, op: TableOp) -> bool {
        match op {
            TableOp::Read => self.read,
            TableOp::Insert => self.insert,
            TableOp::Update => self.update,
            TableOp::Delete => self.delete,
        }
    }
}

/// What a role allows on the MQTT topics a filter matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRule {
    pub filter: String,
    #[serde(default)]
    pub publish: bool,
    #[serde(default)]
    pub subscribe: bool,
}

/// A stored role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub name: String,
    #[serde(default)]
    pub super_user: bool,
    /// Table name (or `*`, for tables without an entry of their own) → permissions.
    #[serde(default)]
    pub tables: BTreeMap<String, TablePerms>,
    #[serde(default)]
    pub topics: Vec<TopicRule>,
}

impl Role {
    /// The built-in super-user role.
    pub fn super_user() -> Role {
        Role {
            name: SUPER_USER.to_string(),
            super_user: true,
            ..Role::default()
        }
    }

    /// What the role allows on `table`: its own entry, else the `*` entry, else nothing.
    pub fn table(&self, table: &str) -> TablePerms {
        self.tables
            .get(table)
            .or_else(|| self.tables.get("*"))
            .copied()
            .unwrap_or_default()
    }
}

/// The definition of a system table (no indexes: they are read whole).
pub fn table_def(name: &str) -> Arc<TableDef> {
    Arc::new(TableDef {
        name: name.to_string(),
        primary_key: "name".to_string(),
        indexes: Vec::new(),
        attributes: Default::default(),
    })
}

/// A user or role name: 1 to 64 bytes of letters, digits, `_`, `-`, `.` and `@`.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@');
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !name.chars().all(ok_char) {
        return Err(format!(
            "{what} name {name:?} must be 1 to {MAX_NAME_BYTES} letters, digits, '_', '-', '.' or '@'"
        ));
    }
    Ok(())
}

/// A password's length (its content is the user's business).
pub fn check_password(password: &[u8]) -> Result<(), String> {
    if password.len() < MIN_PASSWORD_BYTES || password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "a password must be {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}

/// The roles a user is given: named well, at most `MAX_ROLES_PER_USER`, no repeats.
pub fn check_user_roles(roles: &[String]) -> Result<(), String> {
    if roles.len() > MAX_ROLES_PER_USER {
        return Err(format!("a user holds at most {MAX_ROLES_PER_USER} roles"));
    }
    for (i, r) in roles.iter().enumerate() {
        check_name("role", r)?;
        if roles[..i].contains(r) {
            return Err(format!("role {r:?} is given twice"));
        }
    }
    Ok(())
}

/// A stored user as read back: its fields must pass the same checks as a new one.
pub fn check_user(u: &UserRecord) -> Result<(), String> {
    check_name("user", &u.name)?;
    check_user_roles(&u.roles)?;
    if !u.password.starts_with("$argon2") || u.password.len() > 512 {
        return Err("the password is not an argon2 hash".into());
    }
    Ok(())
}

/// A role: its name, table names (or `*`), topic filters, within bounds. `super_user` cannot
/// be defined: it is built in.
pub fn check_role(r: &Role) -> Result<(), String> {
    check_name("role", &r.name)?;
    if r.name == SUPER_USER {
        return Err(format!(
            "{SUPER_USER:?} is built in; choose another name (a role may set \"super_user\": true)"
        ));
    }
    if r.tables.len() > MAX_TABLE_RULES || r.topics.len() > MAX_TOPIC_RULES {
        return Err(format!(
            "a role has at most {MAX_TABLE_RULES} table entries and {MAX_TOPIC_RULES} topic rules"
        ));
    }
    for t in r.tables.keys() {
        let ok = t == "*"
            || (!t.is_empty()
                && t.len() <= crate::config::MAX_NAME_BYTES
                && !t.starts_with('_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        if !ok {
            return Err(format!(
                "{t:?} is not a table name (letters, digits, '_', '-'; not starting with '_') or \"*\""
            ));
        }
    }
    for rule in &r.topics {
        check_filter(&rule.filter)?;
    }
    Ok(())
}

/// An MQTT topic filter: levels split by `/`, `+` alone in a level, `#` alone in the last.
pub fn check_filter(filter: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("topic filter {filter:?}: {why}"));
    if filter.is_empty() || filter.len() > MAX_FILTER_BYTES || filter.contains('\0') {
        return bad(&format!(
            "must be 1 to {MAX_FILTER_BYTES} bytes, without NUL"
        ));
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return bad("'#' must be a whole level, the last");
        }
        if level.contains('+') && *level != "+" {
            return bad("'+' must be a whole level");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roles_and_filters_are_checked() {
        assert!(check_name("user", "alice@example.com").is_ok());
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            assert!(check_name("user", bad).is_err(), "{bad:?}");
        }
        let mut r = Role {
            name: "reader".into(),
            ..Role::default()
        };
        r.tables.insert("*".into(), TablePerms::default());
        r.tables.insert("Dog".into(), TablePerms::default());
        assert!(check_role(&r).is_ok());
        r.tables.insert("_users".into(), TablePerms::default());
        assert!(check_role(&r).is_err(), "system tables are not grantable");
        assert!(check_role(&Role::super_user()).is_err());
        for ok in ["a/b", "a/+/c", "#", "a/#", "+"] {
            assert!(check_filter(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "a\0"] {
            assert!(check_filter(bad).is_err(), "{bad:?}");
        }
        assert!(check_user_roles(&["a".into(), "a".into()]).is_err());
    }

    #[test]
    fn a_table_entry_wins_over_the_wildcard() {
        let mut r = Role::default();
        r.tables.insert(
            "*".into(),
            TablePerms {
                read: true,
                ..TablePerms::default()
            },
        );
        r.tables.insert("Secret".into(), TablePerms::default());
        assert!(r.table("Dog").allows(TableOp::Read));
        assert!(!r.table("Secret").allows(TableOp::Read));
        assert!(!r.table("Dog").allows(TableOp::Delete));
    }
}
