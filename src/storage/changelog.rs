//! The per-shard change log: every commit, in commit order, keyed by a sequence number.
//! Replication streams it to peers and subscriptions resume from it. Entries are rkyv
//! archives so the same bytes can go on the wire and be validated in place by the receiver.

use rkyv::{Archive, Deserialize, Serialize};

/// What a change did to its record.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ChangeOp {
    Put,
    Delete,
}

/// One committed change.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Change {
    pub table: String,
    pub id: String,
    pub clock: u64,
    pub node: u16,
    pub op: ChangeOp,
    /// The document after the change (empty for a delete).
    pub body: Vec<u8>,
}

/// The changes of one commit group of one shard's writer, in order: change `i` has sequence
/// `first_seq + i` in that shard's change log. Sent to every consumer of the change feed
/// (shards serving subscriptions, replication) behind an `Arc`: moved, never copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    pub shard: usize,
    pub first_seq: u64,
    pub changes: Vec<Change>,
}

impl Change {
    /// The stored and sent form. An error is returned, never an empty entry: an entry that
    /// decodes to nothing would be a change lost without a trace.
    pub fn encode(&self) -> Result<Vec<u8>, rkyv::rancor::Error> {
        rkyv::to_bytes::<rkyv::rancor::Error>(self).map(|b| b.into_vec())
    }

    /// Validates and decodes stored or received bytes.
    pub fn decode(bytes: &[u8]) -> Option<Change> {
        // Stored and received bytes carry no alignment guarantee; archives need it.
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        let archived = rkyv::access::<ArchivedChange, rkyv::rancor::Error>(&aligned).ok()?;
        rkyv::deserialize::<Change, rkyv::rancor::Error>(archived).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_round_trips_and_garbage_is_refused() {
        let c = Change {
            table: "T".into(),
            id: "1".into(),
            clock: 5,
            node: 1,
            op: ChangeOp::Put,
            body: b"{}".to_vec(),
        };
        let bytes = c.encode().unwrap();
        assert!(!bytes.is_empty());
        assert_eq!(Change::decode(&bytes), Some(c));
        assert_eq!(Change::decode(&bytes[..bytes.len() / 2]), None);
    }
}
