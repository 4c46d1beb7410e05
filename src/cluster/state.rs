//! What `/status` shows about the cluster: per peer, the state of each direction of its link
//! (inbound = changes we pull from it, outbound = changes it pulls from us), the last contact,
//! lag in entries and milliseconds, and the MQTT messages forwarded, received and dropped.
//! Written by the link tasks, read by any shard; a short `Mutex` hold on a path that is not the
//! request path.

use crate::storage::now_millis;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;

/// One direction of a link.
#[derive(Debug, Clone, Default)]
pub struct Direction {
    /// "connecting", "connected", "repairing", "disconnected", "refused".
    pub state: &'static str,
    pub since_ms: u64,
    pub lag_entries: u64,
    pub lag_ms: u64,
    /// Changes moved on this direction since start (applied inbound / sent outbound).
    pub changes: u64,
    pub bad_frames: u64,
    pub last_error: String,
    /// Inbound only: write-to-apply time of recent changes (see `lag`).
    pub apply_lag: super::lag::LagWindow,
    /// Inbound only: this link has reached the end of every one of the peer's logs (repairs
    /// done) since it connected.
    pub caught_up: bool,
}

/// The outbound side shows no apply lag or catch-up: those are known where changes are applied.
fn outbound_json(d: &Direction) -> Value {
    let mut o = d.to_json();
    if let Some(m) = o.as_object_mut() {
        m.remove("apply_lag");
        m.remove("caught_up");
    }
    o
}

impl Direction {
    fn to_json(&self) -> Value {
        json!({
            "state": if self.state.is_empty() { "none" } else { self.state },
            "since_ms": self.since_ms,
            "lag_entries": self.lag_entries,
            "lag_ms": self.lag_ms,
            "changes": self.changes,
            "bad_frames": self.bad_frames,
            "last_error": self.last_error,
            "apply_lag": self.apply_lag.to_json(),
            "caught_up": self.caught_up,
        })
    }

    pub fn set_state(&mut self, state: &'static str) {
        if self.state != state {
            self.state = state;
            self.since_ms = now_millis();
        }
    }
}

/// MQTT messages forwarded to and received from one peer (see `forward.rs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Publishes {
    /// Handed to the link to this peer.
    pub forwarded: u64,
    /// Received from this peer and handed to the shards.
    pub received: u64,
    /// Not forwarded to this peer: its queue was full, or the message was too large for a frame.
    pub dropped: u64,
    /// MQTT filters this peer's subscribers want (what it announced).
    pub filters: u64,
}

/// Everything known about one peer.
#[derive(Debug, Clone, Default)]
pub struct PeerStatus {
    pub node_id: Option<u16>,
    pub name: String,
    /// The configured address we dial (empty for a peer that only dials us).
    pub addr: String,
    pub last_contact_ms: u64,
    pub inbound: Direction,
    pub outbound: Direction,
    /// Anti-entropy repairs completed / records they applied.
    pub repairs: u64,
    pub repaired_records: u64,
    pub publishes: Publishes,
}

/// The cluster's shared status.
#[derive(Debug, Default)]
pub struct ClusterState {
    pub node_id: u16,
    pub name: String,
    pub peer_addr: Mutex<Option<SocketAddr>>,
    /// Peers by key: `addr:<configured addr>` until the node id is known, then `node:<id>`.
    peers: Mutex<BTreeMap<String, PeerStatus>>,
    /// Links refused (wrong secret, bad hello) by the listener.
    pub refused: Mutex<u64>,
    /// Tombstones purged since start, and the last purge bound (HLC clock; 0: none yet).
    pub tombstones_purged: std::sync::atomic::AtomicU64,
    pub purge_bound: Mutex<u64>,
    /// Why no tombstone can be purged now (empty when purging).
    pub purge_waiting: Mutex<String>,
}

impl ClusterState {
    pub fn new(node_id: u16, name: String, configured: &[String]) -> ClusterState {
        let peers = configured
            .iter()
            .map(|a| {
                (
                    format!("addr:{a}"),
                    PeerStatus {
                        addr: a.clone(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        ClusterState {
            node_id,
            name,
            peers: Mutex::new(peers),
            ..Default::default()
        }
    }

    /// Updates the status of the peer we dial at `addr` (its node id once known).
    pub fn dialed(&self, addr: &str, node_id: Option<u16>, f: impl FnOnce(&mut PeerStatus)) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let by_addr = format!("addr:{addr}");
        let key = match node_id {
            Some(id) => {
                let key = format!("node:{id}");
                // Move what we knew by address under the node id.
                if let Some(old) = peers.remove(&by_addr) {
                    let e = peers.entry(key.clone()).or_default();
                    if e.addr.is_empty() {
                        e.addr = old.addr;
                    }
                }
                key
            }
            None => peers
                .iter()
                .find(|(_, p)| p.addr == addr)
                .map(|(k, _)| k.clone())
                .unwrap_or(by_addr),
        };
        let e = peers.entry(key).or_default();
        if e.addr.is_empty() {
            e.addr = addr.to_string();
        }
        if node_id.is_some() {
            e.node_id = node_id;
        }
        f(e);
    }

    /// Updates the status of a peer that dialed us.
    pub fn accepted(&self, node_id: u16, f: impl FnOnce(&mut PeerStatus)) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let e = peers.entry(format!("node:{node_id}")).or_default();
        e.node_id = Some(node_id);
        f(e);
    }

    /// The node ids of the peers this node has a live link with now, in either direction
    /// (inbound connected or repairing, or outbound connected).
    pub fn linked_node_ids(&self) -> Vec<u16> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let live = |p: &&PeerStatus| {
            matches!(p.inbound.state, "connected" | "repairing") || p.outbound.state == "connected"
        };
        let mut ids: Vec<u16> = peers
            .values()
            .filter(live)
            .filter_map(|p| p.node_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// A copy of every peer's status.
    pub fn peers(&self) -> Vec<PeerStatus> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.values().cloned().collect()
    }

    pub fn to_json(&self) -> Value {
        let peers: Vec<Value> = self
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|p| {
                json!({
                    "node_id": p.node_id,
                    "name": p.name,
                    "addr": p.addr,
                    "last_contact_ms": p.last_contact_ms,
                    "inbound": p.inbound.to_json(),
                    "outbound": outbound_json(&p.outbound),
                    "repairs": p.repairs,
                    "repaired_records": p.repaired_records,
                    "publishes": {
                        "forwarded": p.publishes.forwarded,
                        "received": p.publishes.received,
                        "dropped": p.publishes.dropped,
                        "filters": p.publishes.filters,
                    },
                })
            })
            .collect();
        json!({
            "node_id": self.node_id,
            "name": self.name,
            "peer_listen": self.peer_addr.lock().unwrap_or_else(|e| e.into_inner()).map(|a| a.to_string()),
            "refused_links": *self.refused.lock().unwrap_or_else(|e| e.into_inner()),
            "tombstones_purged": self.tombstones_purged.load(std::sync::atomic::Ordering::Relaxed),
            "purge_bound": *self.purge_bound.lock().unwrap_or_else(|e| e.into_inner()),
            "purge_waiting": self.purge_waiting.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            "peers": peers,
        })
    }
}
