//! The HTTP/1.1 front end: a listener per shard, connections parsed with httparse (keep-alive,
//! pipelining, chunked bodies, limits and timeouts), what a request must pass before it is
//! routed (`admit`: rate, Host, Origin, body type; then `auth`: credentials and permission),
//! CORS, and the routes: REST on tables, queries, admin, users and roles, backups, health,
//! status, metrics, the admin page and the OpenAPI document; answers in JSON, CBOR,
//! MessagePack or CSV, compressed as accepted.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod admin_page;
pub mod admit;
pub mod auth;
pub mod backup;
pub mod cache;
pub mod cluster;
pub mod component;
pub mod compress;
pub mod config;
pub mod conn;
pub mod cors;
pub mod decode;
pub mod encode;
pub mod hosts;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod problem;
pub mod realtime;
pub mod request;
pub mod response;
pub mod rest;
pub mod router;
pub mod server;
pub mod shard;
pub mod sse;
pub mod statics;
pub mod status;
pub mod ws;
pub mod ws_mqtt;
