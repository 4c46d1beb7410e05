//! Generic key-value batches for the auxiliary keyspaces (MQTT sessions, offline queues,
//! retained messages): the operations a shard sends to its writer thread, and how the writer
//! merges them into its group commit. Records, indexes and the change log never go through
//! here.

use super::shard_db::ShardDb;
use std::collections::HashMap;

/// Which auxiliary keyspace an operation touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// The batches a writer takes in one group, merged in the order they came into the group's
/// one commit (one journal write, one fsync in sync mode). Every item of a commit gets the
/// same sequence number, so a key may appear in it only once: the last operation on a key
/// wins, as it would have by committing the batches one after the other.
#[derive(Debug, Default)]
pub struct Merged {
    ops: HashMap<(AuxSpace, Vec<u8>), Option<Vec<u8>>>,
}

impl Merged {
    /// Adds a batch after those added before it.
    pub fn add(&mut self, ops: Vec<KvOp>) {
        for op in ops {
            self.ops.insert((op.space, op.key), op.value);
        }
    }

    /// Moves the merged operations into `batch`; returns how many there were.
    pub fn write_into(&mut self, db: &ShardDb, batch: &mut fjall::OwnedWriteBatch) -> usize {
        let n = self.ops.len();
        for ((space, key), value) in self.ops.drain() {
            let ks = match space {
                AuxSpace::Mqtt => &db.mqtt,
            };
            match value {
                Some(v) => batch.insert(ks, key, v),
                None => batch.remove(ks, key),
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(m: &Merged) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut v: Vec<_> = m
            .ops
            .iter()
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_last_operation_on_a_key_wins() {
        let mut m = Merged::default();
        m.add(vec![
            KvOp::put(AuxSpace::Mqtt, b"a".to_vec(), b"1".to_vec()),
            KvOp::put(AuxSpace::Mqtt, b"b".to_vec(), b"1".to_vec()),
        ]);
        m.add(vec![KvOp::delete(AuxSpace::Mqtt, b"a".to_vec())]);
        m.add(vec![
            KvOp::put(AuxSpace::Mqtt, b"b".to_vec(), b"2".to_vec()),
            KvOp::delete(AuxSpace::Mqtt, b"c".to_vec()),
            KvOp::put(AuxSpace::Mqtt, b"c".to_vec(), b"3".to_vec()),
        ]);
        assert_eq!(
            ops(&m),
            vec![
                (b"a".to_vec(), None),
                (b"b".to_vec(), Some(b"2".to_vec())),
                (b"c".to_vec(), Some(b"3".to_vec())),
            ]
        );
    }
}
