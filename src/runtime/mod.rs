//! The runtime: start-up checks, one pinned glommio executor per shard with the services the
//! composition root plugs into it, the mesh between shards, the change feed, the record API,
//! queries across shards, and table changes. It knows nothing of the protocols above it.

pub mod admin;
pub mod executor;
pub mod feed;
pub mod inbox;
pub mod kick;
pub mod mesh;
pub mod preflight;
pub mod query;
pub mod records;
pub mod schema;
pub mod shard;
