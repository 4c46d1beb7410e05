//! One snapshot of the node for the admin page, as JSON: the node and its shards, tables,
//! requests (cumulative, and the rate and latency percentiles since the previous snapshot of
//! the same stream), the broker and its clients, the replication links. `Window` is what a
//! stream remembers between snapshots to compute the rates.

use crate::http::metrics::gather::ShardSnapshot;
use crate::http::metrics::requests::RouteClass;
use crate::http::shard::HttpShard;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What the previous snapshot of a stream saw.
#[derive(Default)]
pub struct Window {
    previous: Option<(Instant, u64, Histogram<u64>)>,
}

impl Window {
    /// Requests per second and the latency histogram (µs) since the previous call; the first
    /// call covers everything since start.
    fn advance(&mut self, snaps: &[ShardSnapshot]) -> (f64, Histogram<u64>) {
        let now = Instant::now();
        let mut latency = Histogram::new_with_bounds(1, 60_000_000, 2).expect("static bounds");
        let mut total = 0;
        for s in snaps {
            total += s.requests.total();
            let classes = RouteClass::ALL.iter().zip(&s.requests.classes);
            for (_, c) in classes.filter(|(k, _)| **k != RouteClass::Stream) {
                let _ = latency.add(&c.latency);
            }
        }
        let (rate, interval) = match &self.previous {
            Some((at, before, hist)) => {
                let secs = now.duration_since(*at).as_secs_f64().max(1e-3);
                let mut interval = latency.clone();
                let _ = interval.subtract(hist);
                (total.saturating_sub(*before) as f64 / secs, interval)
            }
            None => (0.0, latency.clone()),
        };
        self.previous = Some((now, total, latency));
        (rate, interval)
    }
}

/// The snapshot as JSON.
pub fn build(shard: &HttpShard, snaps: &[ShardSnapshot], window: &mut Window) -> Value {
    let (rate, interval) = window.advance(snaps);
    let n = &shard.node;
    json!({
        "time_ms": crate::storage::now_millis(),
        "node": {
            "id": n.config.cluster.node_id,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_ms": crate::storage::now_millis().saturating_sub(n.started_ms),
            "partitions": n.partitions,
            "durability": n.config.storage.durability,
        },
        "shards": snaps.iter().map(|s| shard_json(shard, s)).collect::<Vec<_>>(),
        "tables": tables(shard),
        "requests": requests(snaps, rate, &interval),
        "mqtt": mqtt(shard, snaps),
        "replication": shard.cluster.as_ref().map(|c| c.to_json()["peers"].clone()),
    })
}

fn shard_json(shard: &HttpShard, s: &ShardSnapshot) -> Value {
    let n = &shard.node;
    let w = &n.writer_stats[s.shard];
    json!({
        "shard": s.shard,
        "core": n.cores[s.shard],
        "http_connections": n.connections[s.shard].load(Ordering::Relaxed),
        "in_flight": s.in_flight,
        "requests": s.requests.total(),
        "records": w.records.load(Ordering::Relaxed),
        "writes": w.writes.load(Ordering::Relaxed),
        "write_queue": n.writers[s.shard].len(),
        "mqtt_connections": shard.mqtt.mqtt_node.connections[s.shard].load(Ordering::Relaxed),
        "mqtt_sessions": s.mqtt_sessions,
        "storage_bytes": n.dbs[s.shard].db.disk_space().unwrap_or(0),
    })
}

fn tables(shard: &HttpShard) -> Vec<Value> {
    let catalog = shard.catalog.borrow();
    let user = catalog.tables.values().filter(|t| !t.name.starts_with('_'));
    user.map(|t| json!({ "name": t.name, "primary_key": t.primary_key, "indexes": t.indexes }))
        .collect()
}

fn requests(snaps: &[ShardSnapshot], rate: f64, interval: &Histogram<u64>) -> Value {
    let mut by_class = serde_json::Map::new();
    for (i, class) in RouteClass::ALL.iter().enumerate() {
        let n: u64 = snaps.iter().map(|s| s.requests.classes[i].total()).sum();
        by_class.insert(class.name().into(), n.into());
    }
    let q = |p: f64| (!interval.is_empty()).then(|| interval.value_at_quantile(p));
    json!({
        "total": snaps.iter().map(|s| s.requests.total()).sum::<u64>(),
        "by_class": by_class,
        "per_sec": (rate * 10.0).round() / 10.0,
        "interval_count": interval.len(),
        "p50_us": q(0.5),
        "p99_us": q(0.99),
        "max_us": (!interval.is_empty()).then(|| interval.max()),
    })
}

fn mqtt(shard: &HttpShard, snaps: &[ShardSnapshot]) -> Value {
    let node = &shard.mqtt.mqtt_node;
    let st = &node.stats;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let clients: Vec<_> = snaps.iter().flat_map(|s| s.mqtt_clients.iter()).collect();
    json!({
        "connections": node.connections.iter().map(|c| c.load(Ordering::Relaxed)).sum::<usize>(),
        "sessions": snaps.iter().map(|s| s.mqtt_sessions).sum::<usize>(),
        "subscriptions": snaps.iter().map(|s| s.mqtt_subscriptions).sum::<usize>(),
        "messages_in": g(&st.messages_in),
        "messages_out": g(&st.messages_out),
        "dropped": g(&st.qos0_dropped) + g(&st.offline_dropped) + g(&st.oversize_dropped) + g(&st.mesh_dropped),
        "clients": clients,
    })
}
