//! The runtime: start-up checks, opening storage, one pinned glommio executor per shard, the
//! mesh between shards, and orderly shutdown on SIGTERM/SIGINT.

pub mod admin;
pub mod boot;
pub mod feed;
pub mod inbox;
pub mod kick;
pub mod mesh;
pub mod preflight;
pub mod query;
pub mod records;
pub mod schema;
pub mod shard;

pub use boot::{serve, StartError};
