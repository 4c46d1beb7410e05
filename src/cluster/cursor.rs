//! Durable replication cursors: for each peer and each of its shards, the sequence number of
//! the next entry of that shard's change log we need, and the log generation it belongs to (a
//! peer that changed its shard count has new logs: its old cursors are void). Kept in the
//! `cluster` keyspace of shard 0's database and written through shard 0's writer, after the
//! changes before it are committed, so a cursor never runs ahead of the data.

use crate::runtime::shard::NodeShared;
use crate::storage::writer::WriterMsg;
use fjall::{Keyspace, KeyspaceCreateOptions};

/// A peer shard's cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub generation: u64,
    pub next: u64,
}

/// The cursor store.
#[derive(Clone)]
pub struct Cursors {
    ks: Keyspace,
    /// The last cursor handed to the writer per (peer, shard): within one log generation a
    /// cursor only moves forward.
    last: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(u16, u16), Cursor>>>,
}

fn key(peer: u16, shard: u16) -> Vec<u8> {
    let mut k = b"cursor/".to_vec();
    k.extend_from_slice(&peer.to_be_bytes());
    k.extend_from_slice(&shard.to_be_bytes());
    k
}

fn value(c: Cursor) -> Vec<u8> {
    let mut v = c.generation.to_be_bytes().to_vec();
    v.extend_from_slice(&c.next.to_be_bytes());
    v
}

/// Removes every stored cursor from a stopped node's shard-0 database (a restored node
/// rejoins by comparing digests with each peer, as a new node does); answers how many.
pub fn forget_all(shard0: &crate::storage::shard_db::ShardDb) -> fjall::Result<usize> {
    let ks = shard0
        .db
        .keyspace("cluster", KeyspaceCreateOptions::default)?;
    let mut batch = shard0.db.batch();
    let mut n = 0;
    for guard in ks.prefix(b"cursor/") {
        batch.remove(&ks, guard.key()?);
        n += 1;
    }
    batch.commit()?;
    shard0.db.persist(fjall::PersistMode::SyncAll)?;
    Ok(n)
}

impl Cursors {
    pub fn open(node: &NodeShared) -> fjall::Result<Cursors> {
        Ok(Cursors {
            ks: node.dbs[0]
                .db
                .keyspace("cluster", KeyspaceCreateOptions::default)?,
            last: Default::default(),
        })
    }

    /// The stored cursor of a peer's shard, if any.
    pub fn get(&self, peer: u16, shard: u16) -> Option<Cursor> {
        let v = self.ks.get(key(peer, shard)).ok()??;
        if v.len() != 16 {
            return None;
        }
        Some(Cursor {
            generation: u64::from_be_bytes(v[..8].try_into().ok()?),
            next: u64::from_be_bytes(v[8..].try_into().ok()?),
        })
    }

    /// Hands a cursor to shard 0's writer; the receiver answers once it is committed.
    async fn send(
        &self,
        node: &NodeShared,
        peer: u16,
        shard: u16,
        c: Cursor,
    ) -> Result<flume::Receiver<Result<(), String>>, String> {
        self.check_forward(peer, shard, c)?;
        let (done, wait) = flume::bounded(1);
        node.writers[0]
            .send_async(WriterMsg::PutMeta {
                keyspace: self.ks.clone(),
                key: key(peer, shard),
                value: value(c),
                done,
            })
            .await
            .map_err(|_| "writer stopped".to_string())?;
        Ok(wait)
    }

    /// Refuses a cursor that moves back within its generation: saving it would make the peer
    /// resend what is already applied, and points at a bug in the caller.
    fn check_forward(&self, peer: u16, shard: u16, c: Cursor) -> Result<(), String> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(prev) = last.get(&(peer, shard)) {
            if prev.generation == c.generation && c.next < prev.next {
                let msg = format!(
                    "cursor of peer {peer} shard {shard} would move back from {} to {}",
                    prev.next, c.next
                );
                tracing::error!("{msg}: not saved");
                debug_assert!(false, "{msg}");
                return Err(msg);
            }
        }
        last.insert((peer, shard), c);
        Ok(())
    }

    /// Hands a cursor to shard 0's writer without waiting for its commit (it rides along with
    /// the writer's next group). Called only after the changes before it are committed, so it
    /// still never runs ahead of the data; a crash before it commits only means some changes
    /// come again on resume, which last-writer-wins ignores.
    pub async fn save_soon(
        &self,
        node: &NodeShared,
        peer: u16,
        shard: u16,
        c: Cursor,
    ) -> Result<(), String> {
        self.send(node, peer, shard, c).await.map(|_| ())
    }

    /// Makes a cursor durable (through shard 0's writer, with its group commit).
    pub async fn save(
        &self,
        node: &NodeShared,
        peer: u16,
        shard: u16,
        c: Cursor,
    ) -> Result<(), String> {
        self.send(node, peer, shard, c)
            .await?
            .recv_async()
            .await
            .map_err(|_| "writer stopped".to_string())?
    }
}
