//! Generic key-value batches for the auxiliary keyspaces (MQTT sessions, offline queues,
//! retained messages): the operations a shard sends to its writer thread, and how the writer
//! applies them. Records, indexes and the change log never go through here.

use super::shard_db::ShardDb;
use crate::config::Durability;
use fjall::PersistMode;

/// Which auxiliary keyspace an operation touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuxSpace {
    /// MQTT: sessions, their queues and QoS 2 state, retained messages.
    Mqtt,
}

/// One put (`Some(value)`) or delete (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvOp {
    pub space: AuxSpace,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

impl KvOp {
    pub fn put(space: AuxSpace, key: Vec<u8>, value: Vec<u8>) -> KvOp {
        KvOp {
            space,
            key,
            value: Some(value),
        }
    }

    pub fn delete(space: AuxSpace, key: Vec<u8>) -> KvOp {
        KvOp {
            space,
            key,
            value: None,
        }
    }
}

/// The answer to a batch, when the sender asked for one.
pub type KvReply = flume::Sender<Result<(), String>>;

/// Applies a batch atomically and makes it as durable as the configured mode promises.
pub fn apply(db: &ShardDb, ops: Vec<KvOp>, durability: Durability) -> Result<(), String> {
    let mut batch = db.db.batch();
    for op in ops {
        let ks = match op.space {
            AuxSpace::Mqtt => &db.mqtt,
        };
        match op.value {
            Some(v) => batch.insert(ks, op.key, v),
            None => batch.remove(ks, op.key),
        }
    }
    let mode = match durability {
        Durability::Sync => PersistMode::SyncData,
        Durability::Buffered => PersistMode::Buffer,
    };
    batch
        .commit()
        .and_then(|_| db.db.persist(mode))
        .map_err(|e| e.to_string())
}
