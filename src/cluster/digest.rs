//! Anti-entropy digests: for every table, one SHA-256 per partition over the (id, version,
//! tombstone) of each record in id order. A partition always lives whole on one shard and ids
//! sort the same everywhere, so two nodes holding the same versions have the same digests
//! whatever their shard counts. Also reads one partition's records in pages for repair.
//! These functions read storage synchronously: call them off a shard executor.

use super::frame::RepairRecord;
use crate::storage::envelope::Envelope;
use crate::storage::hlc::Version;
use crate::storage::keys;
use crate::storage::layout::owner_of;
use crate::storage::shard_db::{prefix_successor, ShardDb};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ops::Bound;

/// One table's digests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDigest {
    /// Non-empty partitions only.
    pub parts: BTreeMap<u16, [u8; 32]>,
    pub records: u64,
    pub tombstones: u64,
}

impl TableDigest {
    /// One hash for the whole table (over the partition digests in order).
    pub fn root(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for (p, d) in &self.parts {
            h.update(p.to_be_bytes());
            h.update(d);
        }
        h.finalize().into()
    }
}

/// The digest of one partition: fed each record's (id, version, tombstone) in id order.
pub struct PartitionHasher(Sha256);

impl Default for PartitionHasher {
    fn default() -> Self {
        PartitionHasher(Sha256::new())
    }
}

impl PartitionHasher {
    pub fn add(&mut self, id: &str, version: Version, tombstone: bool) {
        let h = &mut self.0;
        h.update((id.len() as u32).to_be_bytes());
        h.update(id.as_bytes());
        h.update(version.clock.to_be_bytes());
        h.update(version.node.to_be_bytes());
        h.update([tombstone as u8]);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// Digests of every table stored on this node.
pub fn compute(dbs: &[ShardDb]) -> fjall::Result<BTreeMap<String, TableDigest>> {
    let mut out: BTreeMap<String, TableDigest> = BTreeMap::new();
    for db in dbs {
        let mut current: Option<(String, u16, PartitionHasher)> = None;
        for guard in db.records.iter() {
            let (k, v) = guard.into_inner()?;
            let (Some((table, partition, id)), Some(env)) =
                (keys::split_record_key(&k), Envelope::decode(&v))
            else {
                continue;
            };
            let same = matches!(&current, Some((t, p, _)) if t == table && *p == partition);
            if !same {
                if let Some((t, p, h)) = current.take() {
                    out.entry(t).or_default().parts.insert(p, h.finish());
                }
                current = Some((table.to_string(), partition, PartitionHasher::default()));
            }
            if let Some((_, _, h)) = current.as_mut() {
                h.add(id, env.version, env.tombstone);
            }
            let t = out.entry(table.to_string()).or_default();
            if env.tombstone {
                t.tombstones += 1;
            } else {
                t.records += 1;
            }
        }
        if let Some((t, p, h)) = current.take() {
            out.entry(t).or_default().parts.insert(p, h.finish());
        }
    }
    Ok(out)
}

/// Records of one partition of a table after `after` (exclusive), up to about `max_bytes`.
/// Returns the page and, when more remain, the id to continue after.
pub fn read_range(
    dbs: &[ShardDb],
    table: &str,
    partition: u16,
    after: Option<&str>,
    max_bytes: usize,
) -> fjall::Result<(Vec<RepairRecord>, Option<String>)> {
    let db = &dbs[owner_of(partition, dbs.len())];
    let prefix = keys::record_key(table, partition, "");
    let lo = match after {
        Some(id) => Bound::Excluded(keys::record_key(table, partition, id)),
        None => Bound::Included(prefix.clone()),
    };
    let hi = match prefix_successor(&prefix) {
        Some(s) => Bound::Excluded(s),
        None => Bound::Unbounded,
    };
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for guard in db.records.range::<Vec<u8>, _>((lo, hi)) {
        let (k, v) = guard.into_inner()?;
        let (Some((_, _, id)), Some(env)) = (keys::split_record_key(&k), Envelope::decode(&v))
        else {
            continue;
        };
        if bytes > 0 && bytes + env.body.len() + id.len() + 64 > max_bytes {
            let more = out.last().map(|r: &RepairRecord| r.id.clone());
            return Ok((out, more));
        }
        bytes += env.body.len() + id.len() + 64;
        out.push(RepairRecord {
            id: id.to_string(),
            clock: env.version.clock,
            node: env.version.node,
            tombstone: env.tombstone,
            body: env.body.to_vec(),
        });
    }
    Ok((out, None))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
