//! Applying what peers send: each change (streamed or repaired) is checked, routed to the
//! writer of the shard that owns its key in *this* node's partition map, and applied there
//! last-writer-wins (`WriterMsg::Replicate`). Returns once every writer involved has committed,
//! so a cursor saved after it never runs ahead of the data.

use crate::runtime::records;
use crate::runtime::schema;
use crate::runtime::shard::NodeShared;
use crate::storage::changelog::{Change, ChangeOp};

/// Checks a change from the network before it goes near storage.
pub fn check_change(c: &Change) -> Result<(), String> {
    check_table_name(&c.table)?;
    if c.id.is_empty() || c.id.len() > 1024 {
        return Err(format!("record id of {} bytes", c.id.len()));
    }
    if c.node == 0 || c.clock == 0 {
        return Err("change without a version".into());
    }
    match c.op {
        ChangeOp::Put => {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&c.body).is_err() {
                return Err(format!("record {:?} body is not JSON", c.id));
            }
        }
        ChangeOp::Delete => {
            if !c.body.is_empty() {
                return Err("delete with a body".into());
            }
        }
    }
    Ok(())
}

/// Table names from the network must be names this build could have made.
pub fn check_table_name(t: &str) -> Result<(), String> {
    if t.is_empty()
        || t.len() > crate::config::MAX_NAME_BYTES
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("bad table name {t:?}"));
    }
    Ok(())
}

/// Applies changes on their owner shards; `Ok(applied)` once every writer has committed.
pub async fn apply(node: &NodeShared, changes: Vec<Change>) -> Result<usize, String> {
    for change in &changes {
        check_change(change)?;
    }
    let touches_schema = changes.iter().any(|c| c.table == schema::TABLE);
    let applied = records::replicate(node, changes).await?;
    if touches_schema && applied > 0 {
        // A table was created, changed or dropped on a peer: shard 0 catches up (in the
        // background; a full inbox only delays it).
        schema::request_reconcile(node, false).await;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    //! Last-writer-wins in the writer: whatever order changes arrive in, the stored record and
    //! its index entries are those of the highest version, and tombstones win like writes.
    use crate::config::{Durability, TableConfig};
    use crate::storage::changelog::{Change, ChangeOp};
    use crate::storage::envelope::Envelope;
    use crate::storage::hlc::Version;
    use crate::storage::keys;
    use crate::storage::shard_db::ShardDb;
    use crate::storage::writer::{RemoteChange, Writer, WriterMsg, WriterSettings};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    fn change(id: &str, clock: u64, node: u16, category: Option<&str>) -> Change {
        Change {
            table: "T".into(),
            id: id.into(),
            clock,
            node,
            op: if category.is_some() {
                ChangeOp::Put
            } else {
                ChangeOp::Delete
            },
            body: category
                .map(|c| format!(r#"{{"id":"{id}","category":"{c}"}}"#).into_bytes())
                .unwrap_or_default(),
        }
    }

    /// Applies `changes` one message each, in order, on a fresh shard; returns the database.
    fn apply_in_order(dir: &std::path::Path, changes: &[Change]) -> ShardDb {
        let db = ShardDb::open(dir, 1 << 20).unwrap();
        let settings = WriterSettings {
            node_id: 9,
            clock: crate::storage::clock::Clock::system(),
            durability: Durability::Buffered,
            changelog_retention: Duration::from_secs(3600),
            changelog_max_entries: 1_000_000,
            spin: Duration::ZERO,
        };
        let w = Writer::new(db.clone(), settings, Arc::new(AtomicBool::new(false))).unwrap();
        let (tx, rx) = flume::bounded(16);
        let t = std::thread::spawn(move || w.run(rx));
        let table = Arc::new(TableConfig {
            name: "T".into(),
            primary_key: "id".into(),
            indexes: vec!["category".into()],
            attributes: Default::default(),
        });
        for c in changes {
            let (reply, wait) = flume::bounded(1);
            let partition = keys::partition_of(&c.table, &c.id, 16);
            tx.send(WriterMsg::Replicate {
                changes: vec![RemoteChange {
                    partition,
                    table: Some(table.clone()),
                    change: c.clone(),
                }],
                reply,
            })
            .unwrap();
            wait.recv().unwrap().unwrap();
        }
        let (done, wait) = flume::bounded(1);
        tx.send(WriterMsg::Stop { done }).unwrap();
        wait.recv().unwrap();
        t.join().unwrap();
        db
    }

    fn stored(db: &ShardDb, id: &str) -> (Version, bool) {
        let v = db
            .records
            .get(keys::record_key("T", keys::partition_of("T", id, 16), id))
            .unwrap()
            .unwrap();
        let e = Envelope::decode(&v).unwrap();
        (e.version, e.tombstone)
    }

    fn index_terms(db: &ShardDb) -> usize {
        db.index.prefix(keys::index_prefix("T", "category")).count()
    }

    #[test]
    fn every_delivery_order_converges_to_the_highest_version() {
        let base = 0x0190_0000_0000_0000u64;
        let changes = vec![
            change("a", base + 1, 1, Some("red")),
            change("a", base + 3, 2, Some("blue")),
            change("a", base + 3, 1, Some("green")), // same clock: node 2 wins the tie
            change("a", base + 2, 3, None),
            change("b", base + 5, 1, Some("red")),
            change("b", base + 6, 2, None), // the delete is newest
            change("b", base + 4, 3, Some("blue")),
        ];
        // Every rotation and its reverse: 14 different orders.
        for r in 0..changes.len() {
            for reverse in [false, true] {
                let mut order = changes.clone();
                order.rotate_left(r);
                if reverse {
                    order.reverse();
                }
                let dir = tempfile::tempdir().unwrap();
                let db = apply_in_order(dir.path(), &order);
                assert_eq!(
                    stored(&db, "a"),
                    (
                        Version {
                            clock: base + 3,
                            node: 2
                        },
                        false
                    ),
                    "order {order:?}"
                );
                assert_eq!(
                    stored(&db, "b"),
                    (
                        Version {
                            clock: base + 6,
                            node: 2
                        },
                        true
                    ),
                    "order {order:?}"
                );
                // Only the winner's index term is left ("blue" of a; b is deleted).
                assert_eq!(index_terms(&db), 1, "order {order:?}");
            }
        }
    }

    #[test]
    fn network_changes_are_checked() {
        let mut c = change("a", 5, 1, Some("x"));
        assert!(super::check_change(&c).is_ok());
        c.table = "bad table".into();
        assert!(super::check_change(&c).is_err());
        let mut c = change("a", 5, 1, Some("x"));
        c.body = b"{not json".to_vec();
        assert!(super::check_change(&c).is_err());
        let mut c = change("a", 5, 1, Some("x"));
        c.node = 0;
        assert!(super::check_change(&c).is_err());
        let mut c = change("", 5, 1, Some("x"));
        c.id = String::new();
        assert!(super::check_change(&c).is_err());
    }
}
