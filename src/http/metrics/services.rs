//! The families of `/metrics` that belong to the services on top of the runtime: the MQTT
//! broker (connections, sessions, subscriptions, messages in / out / dropped, refusals), each
//! replication link (state, lag, changes, forwarded publishes), the components and the
//! caching tables.

use super::gather::ShardSnapshot;
use super::text::{Exposition, Kind, Read};
use crate::app::{AppStats, NodeCaches};
use crate::cluster::state::{ClusterState, Direction};
use crate::mqtt::NodeMqtt;
use std::sync::atomic::{AtomicU64, Ordering};

/// States a link direction reports (`microlith_replication_link_state`).
const LINK_STATES: [&str; 6] = [
    "none",
    "connecting",
    "connected",
    "repairing",
    "disconnected",
    "refused",
];

pub fn mqtt(e: &mut Exposition, node: &NodeMqtt, snaps: &[ShardSnapshot]) {
    let per_shard: [Read<ShardSnapshot, usize>; 2] = [
        (
            "microlith_mqtt_sessions",
            "MQTT sessions (connected or kept for offline clients).",
            |s| s.mqtt_sessions,
        ),
        (
            "microlith_mqtt_subscriptions",
            "Subscriptions of the shard's MQTT sessions.",
            |s| s.mqtt_subscriptions,
        ),
    ];
    for (name, help, get) in per_shard {
        e.family(name, Kind::Gauge, help);
        for s in snaps {
            e.sample(name, &[("shard", &s.shard.to_string())], get(s));
        }
    }
    let name = "microlith_mqtt_connections";
    e.family(name, Kind::Gauge, "Open MQTT connections.");
    for (s, c) in node.connections.iter().enumerate() {
        e.sample(
            name,
            &[("shard", &s.to_string())],
            c.load(Ordering::Relaxed),
        );
    }
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let st = &node.stats;
    let name = "microlith_mqtt_retained_messages";
    e.family(
        name,
        Kind::Gauge,
        "Retained messages stored (plain topics).",
    );
    e.sample(name, &[], node.retained.load(Ordering::Relaxed));
    let name = "microlith_mqtt_messages_in_total";
    e.family(
        name,
        Kind::Counter,
        "PUBLISH packets received from clients.",
    );
    e.sample(name, &[], g(&st.messages_in));
    let name = "microlith_mqtt_messages_out_total";
    e.family(name, Kind::Counter, "PUBLISH packets sent to clients.");
    e.sample(name, &[], g(&st.messages_out));
    let name = "microlith_mqtt_messages_dropped_total";
    e.family(name, Kind::Counter, "Messages not delivered, by reason.");
    let dropped = [
        ("qos0_queue_full", &st.qos0_dropped),
        ("offline_queue_full", &st.offline_dropped),
        ("oversize", &st.oversize_dropped),
        ("shard_inbox_full", &st.mesh_dropped),
    ];
    for (reason, c) in dropped {
        e.sample(name, &[("reason", reason)], g(c));
    }
    let name = "microlith_mqtt_refusals_total";
    e.family(
        name,
        Kind::Counter,
        "What the broker refused or cut, by kind.",
    );
    let refused = [
        ("slow_disconnect", &st.slow_disconnects),
        ("retained", &st.retained_refused),
        ("persist_wait", &st.persist_waits),
        ("session", &st.sessions_refused),
        ("connect_unauthorized", &st.connects_unauthorized),
        ("publish_unauthorized", &st.publishes_unauthorized),
        ("subscribe_unauthorized", &st.subscribes_unauthorized),
        ("user_revoked", &st.users_revoked),
    ];
    for (kind, c) in refused {
        e.sample(name, &[("kind", kind)], g(c));
    }
}

/// Every replication link: one series per peer and direction.
pub fn cluster(e: &mut Exposition, cluster: &ClusterState) {
    let peers = cluster.peers();
    let name = "microlith_replication_refused_links_total";
    e.family(
        name,
        Kind::Counter,
        "Peer links refused (wrong secret, bad hello).",
    );
    e.sample(
        name,
        &[],
        *cluster.refused.lock().unwrap_or_else(|x| x.into_inner()),
    );
    let links: Vec<(String, String, &'static str, &Direction)> = peers
        .iter()
        .flat_map(|p| {
            let peer = p
                .node_id
                .map_or_else(|| p.addr.clone(), |id| id.to_string());
            [("inbound", &p.inbound), ("outbound", &p.outbound)]
                .map(|(dir, d)| (peer.clone(), p.addr.clone(), dir, d))
        })
        .collect();
    let name = "microlith_replication_link_state";
    e.family(
        name,
        Kind::Gauge,
        "1 for the state a link direction is in, 0 for the others.",
    );
    for (peer, addr, dir, d) in &links {
        let now = if d.state.is_empty() { "none" } else { d.state };
        for state in LINK_STATES {
            let labels = [
                ("peer", peer.as_str()),
                ("addr", addr),
                ("direction", dir),
                ("state", state),
            ];
            e.sample(name, &labels, u8::from(state == now));
        }
    }
    type Get = fn(&Direction) -> f64;
    let per_link: [(&str, Kind, &str, Get); 4] = [
        (
            "microlith_replication_lag_entries",
            Kind::Gauge,
            "Change-log entries the receiving side is behind.",
            |d| d.lag_entries as f64,
        ),
        (
            "microlith_replication_lag_seconds",
            Kind::Gauge,
            "How far behind the receiving side is, in time.",
            |d| d.lag_ms as f64 / 1e3,
        ),
        (
            "microlith_replication_changes_total",
            Kind::Counter,
            "Changes applied (inbound) or sent (outbound).",
            |d| d.changes as f64,
        ),
        (
            "microlith_replication_bad_frames_total",
            Kind::Counter,
            "Frames that failed validation (the link was closed).",
            |d| d.bad_frames as f64,
        ),
    ];
    for (name, kind, help, get) in per_link {
        e.family(name, kind, help);
        for (peer, addr, dir, d) in &links {
            e.sample(
                name,
                &[("peer", peer), ("addr", addr), ("direction", dir)],
                get(d),
            );
        }
    }
    let name = "microlith_replication_apply_lag_seconds";
    e.family(
        name,
        Kind::Gauge,
        "Write-to-apply time of changes from a peer over the last 5 to 10 s, by quantile.",
    );
    for (peer, addr, dir, d) in links.iter().filter(|l| l.2 == "inbound") {
        let j = d.apply_lag.to_json();
        for (q, key) in [("0.5", "p50_ms"), ("0.99", "p99_ms")] {
            let ms = j[key].as_u64().unwrap_or(0) as f64;
            e.sample(
                name,
                &[
                    ("peer", peer),
                    ("addr", addr),
                    ("direction", dir),
                    ("quantile", q),
                ],
                ms / 1e3,
            );
        }
    }
    let name = "microlith_replication_publishes_total";
    e.family(
        name,
        Kind::Counter,
        "MQTT messages forwarded to, received from and dropped for a peer.",
    );
    for p in &peers {
        let peer = p
            .node_id
            .map_or_else(|| p.addr.clone(), |id| id.to_string());
        let m = &p.publishes;
        for (kind, n) in [
            ("forwarded", m.forwarded),
            ("received", m.received),
            ("dropped", m.dropped),
        ] {
            e.sample(
                name,
                &[("peer", &peer), ("addr", &p.addr), ("kind", kind)],
                n,
            );
        }
    }
}

/// Each component's calls and outcomes, and its hooks' counters.
pub fn components(e: &mut Exposition, stats: &AppStats) {
    let name = "microlith_component_calls_total";
    e.family(name, Kind::Counter, "Calls of a component's resources.");
    for (c, s) in &stats.components {
        e.sample(name, &[("component", c)], s.calls.load(Ordering::Relaxed));
    }
    let name = "microlith_component_failures_total";
    e.family(name, Kind::Counter, "Calls answered 5xx by the handler (error), that panicked, timed out, or were refused at the concurrency bound (busy).");
    for (c, s) in &stats.components {
        let kinds = [
            ("error", &s.errors),
            ("panic", &s.panics),
            ("timeout", &s.timeouts),
            ("busy", &s.busy),
        ];
        for (kind, n) in kinds {
            e.sample(
                name,
                &[("component", c), ("kind", kind)],
                n.load(Ordering::Relaxed),
            );
        }
    }
    let name = "microlith_component_hook_events_total";
    e.family(
        name,
        Kind::Counter,
        "What a component's hooks came to (validations, change and publish handlers), by event.",
    );
    for (c, s) in &stats.components {
        for (event, n) in s.hooks.counters() {
            e.sample(name, &[("component", c), ("event", event)], n);
        }
    }
}

/// Each caching table's counters.
pub fn caches(e: &mut Exposition, caches: &NodeCaches) {
    let name = "microlith_cache_events_total";
    e.family(
        name,
        Kind::Counter,
        "A caching table's hits, misses, origin calls and the rest, by event.",
    );
    for (table, counters) in caches.counters() {
        for (event, n) in counters {
            e.sample(name, &[("table", table), ("event", event)], n);
        }
    }
}
