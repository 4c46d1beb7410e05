//! microlith: a thread-per-core server that holds the data, the REST API and real-time
//! protocols of a node in one process. One pinned glommio executor per core ("shard"), each
//! owning a set of partitions of the data; see `docs/` for the mechanisms.

pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod http;
pub mod mqtt;
pub mod net;
pub mod node;
pub mod query;
pub mod runtime;
pub mod security;
pub mod storage;
