//! Who may connect, publish and subscribe once users exist (`security`). A CONNECT's user
//! name and password are checked against the users (the shard's credential cache spares a
//! password hash per connection); a CONNECT without a user name over TLS authenticates as the
//! user its verified client certificate names (`tls.client_ca_file`). Then every PUBLISH and
//! SUBSCRIBE is checked against the user's roles:
//!
//! - a topic whose first level names a table is the table's (`{Table}/{id}`), and follows the
//!   table's permissions, not topic rules: subscribing needs read; a retained publish needs the
//!   write it makes (insert or update, delete for an empty payload); a plain publish (a message
//!   to the record's subscribers, nothing stored) needs update;
//! - any other topic follows the roles' topic rules (publish / subscribe per filter);
//! - a filter whose first level is a wildcard can match every table's topics, present and
//!   future, so it also needs read on every table (the role's `*` entry, and no table of its
//!   own that withholds it).
//!
//! A connection keeps its user; when the users or roles change (the directory's generation
//! moves) it looks the user up again, and ends (reason 0x87) if the user is gone or no longer
//! may hold one of its subscriptions.

use super::packet::Connect;
use super::MqttShard;
use crate::runtime::records;
use crate::security::{AuthError, Principal, TableOp};
use std::sync::Arc;

/// CONNACK codes of a refused CONNECT: (3.1.1 return code, 5.0 reason code).
pub type Refusal = (u8, u8);

/// 3.1.1 "bad user name or password", 5.0 "bad user name or password".
const BAD_CREDENTIALS: Refusal = (4, 0x86);
/// 3.1.1 "not authorized", 5.0 "not authorized".
pub const NOT_AUTHORIZED: Refusal = (5, 0x87);
/// 3.1.1 "server unavailable", 5.0 "server busy".
const BUSY: Refusal = (3, 0x89);
/// 3.1.1 "server unavailable", 5.0 "unspecified error".
const INTERNAL: Refusal = (3, 0x80);

/// The user a CONNECT authenticates as (`None` while no user exists and nobody needs to), or
/// how to refuse it. A will must be one the user may publish. `certified`: the user the
/// client's verified TLS certificate names, which a CONNECT without a user name authenticates
/// as.
pub async fn authenticate(
    shard: &MqttShard,
    c: &Connect,
    certified: Option<&str>,
) -> Result<Option<Arc<Principal>>, Refusal> {
    let security = &shard.security;
    if !security.auth_required() {
        return Ok(None);
    }
    let (name, checked) = match (c.username.as_deref(), certified) {
        (Some(name), _) => {
            let password = c.password.as_ref().map(|p| p.expose()).unwrap_or(b"");
            (name, security.authenticate_password(name, password).await)
        }
        (None, Some(name)) => (name, security.authenticate_certificate(name)),
        (None, None) => {
            tracing::debug!(client = %c.client_id, "mqtt connect refused: no user name");
            return Err(NOT_AUTHORIZED);
        }
    };
    let principal = match checked {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(client = %c.client_id, user = name, ?e, "mqtt connect refused");
            return Err(match e {
                AuthError::Unauthorized(_) => BAD_CREDENTIALS,
                AuthError::Busy => BUSY,
                AuthError::Internal(_) => INTERNAL,
            });
        }
    };
    if let Some(w) = &c.will {
        let m = &w.message;
        if !may_publish(shard, &principal, &m.topic, m.retain, m.payload.is_empty()) {
            tracing::debug!(client = %c.client_id, user = name, topic = %m.topic, "mqtt connect refused: will topic not allowed");
            return Err(NOT_AUTHORIZED);
        }
    }
    Ok(Some(principal))
}

/// The table a topic or filter belongs to: the one its first level names.
fn table_of(shard: &MqttShard, topic: &str) -> Option<Arc<crate::storage::catalog::TableDef>> {
    let first = topic.split('/').next().unwrap_or(topic);
    shard.table(first)
}

/// Whether `user` may publish to `topic` (a topic name); `retain` and `empty` say what a
/// publish to a table's topic would do to the record.
pub fn may_publish(
    shard: &MqttShard,
    user: &Principal,
    topic: &str,
    retain: bool,
    empty: bool,
) -> bool {
    if user.is_super_user() {
        return true;
    }
    let Some(def) = table_of(shard, topic) else {
        return user.can_publish(topic);
    };
    let table = def.name.as_str();
    match (retain, empty) {
        (false, _) => user.can(table, TableOp::Update),
        (true, true) => user.can(table, TableOp::Delete),
        (true, false) => match (
            user.can(table, TableOp::Insert),
            user.can(table, TableOp::Update),
        ) {
            (true, true) => true,
            (false, false) => false,
            // One of the two: it depends on whether the record exists.
            (insert, _) => {
                let id = topic.split_once('/').map_or("", |(_, id)| id);
                let exists = records::version_of(shard, &def, id).is_some();
                exists != insert
            }
        },
    }
}

/// Whether `user` may subscribe to `filter` (valid, not shared).
pub fn may_subscribe(shard: &MqttShard, user: &Principal, filter: &str) -> bool {
    if user.is_super_user() {
        return true;
    }
    if let Some(def) = table_of(shard, filter) {
        return user.can(&def.name, TableOp::Read);
    }
    let wildcard_first = filter.starts_with('+') || filter.starts_with('#');
    user.can_subscribe(filter) && (!wildcard_first || reads_every_table(shard, user))
}

/// Whether `user` may read every table there is, and every table created later.
fn reads_every_table(shard: &MqttShard, user: &Principal) -> bool {
    user.can("*", TableOp::Read)
        && shard
            .catalog
            .borrow()
            .tables
            .keys()
            .all(|t| user.can(t, TableOp::Read))
}

/// Looks the connection's user up again if the users or roles changed since `generation`
/// (which it moves on): false if the connection may not go on, because its user is gone, or
/// it holds a subscription the user may no longer make, or it connected while no user existed
/// and now one does.
pub fn still_allowed<'a>(
    shard: &MqttShard,
    user: &mut Option<Arc<Principal>>,
    generation: &mut u64,
    filters: impl IntoIterator<Item = &'a str>,
) -> bool {
    let dir = shard.security.directory();
    if dir.generation == *generation {
        return true;
    }
    *generation = dir.generation;
    let Some(known) = user.as_ref() else {
        return !dir.auth_required();
    };
    let Some(fresh) = dir.principal(&known.name) else {
        return false;
    };
    let fresh = Arc::new(fresh);
    let allowed = filters.into_iter().all(|f| may_subscribe(shard, &fresh, f));
    *user = Some(fresh);
    allowed
}
