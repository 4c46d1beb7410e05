//! One shard's fjall database and its keyspaces, with the read side of storage: point reads,
//! table scans and index range scans. Reads are safe from any thread (fjall is internally
//! synchronized); every write goes through the shard's writer (`writer.rs`).

use super::envelope::Envelope;
use super::hlc::Version;
use super::keys;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, Slice};
use std::ops::Bound;
use std::path::Path;

/// Handles to one shard's keyspaces. Cheap to clone.
#[derive(Clone)]
pub struct ShardDb {
    pub db: Database,
    pub records: Keyspace,
    pub index: Keyspace,
    pub changelog: Keyspace,
    /// MQTT sessions, offline queues, QoS 2 state and retained messages (see `mqtt::store`).
    pub mqtt: Keyspace,
}

/// A live record read from storage: the stored value, which holds the body.
pub struct StoredRecord {
    pub version: Version,
    value: Slice,
}

impl StoredRecord {
    /// The document bytes as stored.
    pub fn body(&self) -> &[u8] {
        Envelope::decode(&self.value).map(|e| e.body).unwrap_or(b"")
    }
}

pub type Result<T> = std::result::Result<T, fjall::Error>;

impl ShardDb {
    /// Opens (or creates) a shard database. Call from a thread that is not pinned to a shard's
    /// core: fjall's background workers inherit the caller's CPU affinity.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<ShardDb> {
        let db = Database::builder(path)
            .cache_size(cache_bytes)
            .worker_threads(1)
            .manual_journal_persist(true)
            .open()?;
        let records = db.keyspace("records", KeyspaceCreateOptions::default)?;
        let index = db.keyspace("index", KeyspaceCreateOptions::default)?;
        let changelog = db.keyspace("changelog", KeyspaceCreateOptions::default)?;
        let mqtt = db.keyspace("mqtt", KeyspaceCreateOptions::default)?;
        Ok(ShardDb {
            db,
            records,
            index,
            changelog,
            mqtt,
        })
    }

    /// The live record at `key` (see `keys::record_key`), `None` if absent or deleted.
    pub fn get(&self, key: &[u8]) -> Result<Option<StoredRecord>> {
        Ok(self.records.get(key)?.and_then(|value| {
            let env = Envelope::decode(&value)?;
            if env.tombstone {
                return None;
            }
            let version = env.version;
            Some(StoredRecord { version, value })
        }))
    }

    /// Every live record of a table on this shard: (id, version, body).
    pub fn scan_table<'a>(
        &'a self,
        table: &str,
    ) -> impl Iterator<Item = Result<(String, Version, Slice)>> + 'a {
        let mut prefix = Vec::with_capacity(table.len() + 1);
        keys::table_prefix(table, &mut prefix);
        self.records
            .prefix(prefix)
            .filter_map(|guard| match guard.into_inner() {
                Err(e) => Some(Err(e)),
                Ok((k, v)) => {
                    let (_, _, id) = keys::split_record_key(&k)?;
                    let env = Envelope::decode(&v)?;
                    if env.tombstone {
                        return None;
                    }
                    Some(Ok((id.to_string(), env.version, v)))
                }
            })
    }

    /// Ids from an index range, lazily, in index order: keys in [prefix+lo, prefix+hi) where
    /// lo/hi are encoded values.
    pub fn index_ids<'a>(
        &'a self,
        prefix: &'a [u8],
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
    ) -> impl Iterator<Item = Result<String>> + 'a {
        let with_prefix = |b: &Bound<Vec<u8>>, upper: bool| -> Bound<Vec<u8>> {
            let mut k = prefix.to_vec();
            match b {
                Bound::Included(v) => {
                    k.extend_from_slice(v);
                    if upper {
                        // An included upper bound on a value covers every id after it.
                        k.extend_from_slice(&[0xff; 8]);
                    }
                    Bound::Included(k)
                }
                Bound::Excluded(v) => {
                    k.extend_from_slice(v);
                    if !upper {
                        // Skip every id that follows the excluded value.
                        k.extend_from_slice(&[0xff; 8]);
                    }
                    Bound::Excluded(k)
                }
                Bound::Unbounded => {
                    if upper {
                        match prefix_successor(prefix) {
                            Some(s) => Bound::Excluded(s),
                            None => Bound::Unbounded,
                        }
                    } else {
                        Bound::Included(k)
                    }
                }
            }
        };
        let range = (with_prefix(lo, false), with_prefix(hi, true));
        self.index
            .range::<Vec<u8>, _>(range)
            .filter_map(move |guard| match guard.key() {
                Err(e) => Some(Err(e)),
                Ok(key) => {
                    let rest = &key[prefix.len()..];
                    let (_, used) = super::index_key::decode_value(rest)?;
                    let id = std::str::from_utf8(&rest[used..]).ok()?;
                    Some(Ok(id.to_string()))
                }
            })
    }

    /// The highest change-log sequence and the version of that change, if any.
    pub fn last_change(&self) -> Result<Option<(u64, Version)>> {
        Ok(match self.changelog.last_key_value() {
            None => None,
            Some(g) => {
                let (k, v) = g.into_inner()?;
                let seq = u64::from_be_bytes(k[..8].try_into().unwrap_or([0; 8]));
                let c = super::changelog::Change::decode(&v);
                Some((
                    seq,
                    c.map(|c| Version {
                        clock: c.clock,
                        node: c.node,
                    })
                    .unwrap_or_default(),
                ))
            }
        })
    }

    /// The lowest change-log sequence still kept.
    pub fn first_seq(&self) -> Result<Option<u64>> {
        Ok(match self.changelog.first_key_value() {
            None => None,
            Some(g) => {
                let k = g.key()?;
                Some(u64::from_be_bytes(k[..8].try_into().unwrap_or([0; 8])))
            }
        })
    }
}

/// The smallest key greater than every key that starts with `prefix`.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xff {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}
