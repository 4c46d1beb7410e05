//! The invariants the simulator holds the cluster to: after a crash, no durable cursor is ahead
//! of the data it covers; a tombstone is purged only when every node holds it; no node's
//! clock is dragged past the drift bound (checked in `world.rs` as it happens); and once the
//! cluster is healed and quiet, every node holds the same records, and every write the
//! cluster acknowledged is there or was overwritten by a newer one.

use crate::node::{version_of, Key};
use crate::world::World;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    pub fn add(&mut self, v: String) {
        if self.0.len() < 20 {
            self.0.push(v);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn list(&self) -> &[String] {
        &self.0
    }
}

/// Node `n` just crashed: each durable cursor it holds covers only changes it holds.
pub fn cursors_behind_data(w: &mut World, n: usize) {
    let node = w.node(n);
    let mut found = Vec::new();
    for ((peer, shard), c) in &node.durable.cursors {
        let Some(p) = w.nodes().find(|p| p.id == *peer) else {
            continue;
        };
        if p.durable.generation != c.generation {
            continue;
        }
        let log = &p.durable.logs[*shard as usize];
        for (seq, change) in log.entries.range(..c.next) {
            if change.node != *peer {
                continue;
            }
            let key: Key = (
                change.table.clone(),
                microlith::storage::keys::partition_of(
                    &change.table,
                    &change.id,
                    crate::node::PARTITIONS,
                ),
                change.id.clone(),
            );
            if node.effective(&key) < Some(version_of(change)) {
                found.push(format!(
                    "node {} crashed with its cursor for node {peer} shard {shard} at {} but without change {seq} ({}/{})",
                    node.id, c.next, change.table, change.id
                ));
            }
        }
    }
    for f in found {
        w.v.add(f);
    }
}

/// Node `n` just purged a tombstone: every other node holds it (or newer, or purged it).
pub fn purge_was_safe(
    w: &mut World,
    n: usize,
    key: &Key,
    version: microlith::storage::hlc::Version,
) {
    let me = w.node(n).id;
    let mut found = Vec::new();
    for other in w.nodes() {
        if other.id != me && other.effective(key) < Some(version) {
            found.push(format!(
                "node {me} purged the tombstone of {}/{} ({version}) while node {} holds only {:?}",
                key.0,
                key.2,
                other.id,
                other.effective(key)
            ));
        }
    }
    for f in found {
        w.v.add(f);
    }
}

/// Healed and quiet: the same records everywhere, and every acknowledged write kept.
pub fn converged(w: &mut World) {
    let mut found = Vec::new();
    let keys: BTreeSet<Key> = w
        .nodes()
        .flat_map(|n| {
            n.durable
                .records
                .keys()
                .chain(n.durable.purged.keys())
                .cloned()
        })
        .collect();
    let first = w.node(0);
    let live = |n: &crate::node::Node| -> BTreeMap<Key, (String, Vec<u8>)> {
        n.durable
            .records
            .iter()
            .filter(|(_, r)| !r.tombstone)
            .map(|(k, r)| (k.clone(), (r.version.to_string(), r.body.clone())))
            .collect()
    };
    let expected = live(first);
    for n in w.nodes() {
        if !n.up() {
            found.push(format!("node {} is down after the quiet phase", n.id));
        }
        if live(n) != expected {
            found.push(format!(
                "node {} holds other records than node {}",
                n.id, first.id
            ));
        }
        for k in &keys {
            if n.effective(k) != first.effective(k) {
                found.push(format!(
                    "{}/{}: node {} holds {:?}, node {} {:?}",
                    k.0,
                    k.2,
                    n.id,
                    n.effective(k),
                    first.id,
                    first.effective(k)
                ));
            }
        }
    }
    for a in &w.acked {
        for n in w.nodes() {
            if n.effective(&a.key) < Some(a.version) {
                found.push(format!(
                    "acknowledged write {}/{} ({}) lost on node {}: it holds {:?}",
                    a.key.0,
                    a.key.2,
                    a.version,
                    n.id,
                    n.effective(&a.key)
                ));
            }
        }
    }
    for f in found {
        w.v.add(f);
    }
}
