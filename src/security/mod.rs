//! Users, roles and permissions, shared by every front end. Users and roles are records of
//! the system tables `_users` and `_roles` (and the token key of `_secrets`), which replicate
//! like any table and are invisible to REST and MQTT (names starting with `_` are reserved).
//! Passwords are argon2 hashes. Each shard keeps a snapshot of the tables (read again when a
//! writer commits a change to them) and a bounded cache of verified credentials, so a request
//! costs a SHA-256 and a lookup, not a password hash; a change to a user or role applies to
//! the next request.
//!
//! Layering: the front ends (`http`, `mqtt`, `app`) use this module; it uses `runtime`,
//! `storage` and `config`, never the front ends. See `docs/security.md`.
//!
//! - `model`: stored forms, names, bounds, checks; `principal`: a user's permission checks
//! - `directory`: the snapshot and its generation; `cache`: the credential cache
//! - `shard`: authentication on a shard (Basic, bearer tokens, login, refresh)
//! - `password`, `token`: argon2 and HMAC-signed tokens
//! - `store`: changes on a running node; `offline`: changes on a stopped node's data dir
//! - `bootstrap`: loopback-only until a user exists
//! - `limits`: admission (request and publish rates per address and user, connections per
//!   address); it knows neither HTTP nor MQTT, only addresses, keys and counters

pub mod bootstrap;
pub mod cache;
pub mod config;
pub mod directory;
pub mod model;
pub mod offline;
pub mod password;
pub mod principal;
pub mod shard;
pub mod store;
pub mod token;

pub use model::{Role, TableOp, TablePerms, TopicRule, SUPER_USER};
pub use principal::Principal;
pub use shard::{AuthError, ShardSecurity, Tokens};
pub mod limits;
