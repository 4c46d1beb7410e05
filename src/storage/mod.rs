//! Storage: one fjall database per shard holding that shard's partitions (records as
//! envelopes, secondary indexes, the change log), written only by the shard's writer thread
//! and read directly by any shard. See `docs/storage.md`.

pub mod attributes;
pub mod backup;
pub mod catalog;
pub mod changelog;
pub mod clock;
pub mod envelope;
pub mod hlc;
pub mod index_key;
pub mod keys;
pub mod kv;
pub mod layout;
pub mod pow2;
pub mod record_id;
pub mod restore;
pub mod shard_db;
pub mod writer;

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
