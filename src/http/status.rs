//! `/health` (200 once every shard serves) and `/status` (per-shard counters: records,
//! writes, connections, change-log range; the tables; the broker's, the limits' and the
//! components' counters).

use super::response::Response;
use super::shard::HttpShard;
use std::sync::atomic::Ordering;

pub fn health(shard: &HttpShard) -> Response {
    let serving = shard
        .node
        .serving
        .iter()
        .filter(|s| s.load(Ordering::Acquire))
        .count();
    let total = shard.node.serving.len();
    let ok = serving == total;
    let body = serde_json::json!({ "status": if ok { "ok" } else { "starting" }, "shards_serving": serving, "shards": total });
    Response::json(
        if ok { 200 } else { 503 },
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

pub fn status(shard: &HttpShard) -> Response {
    let n = &shard.node;
    let mqtt = &shard.mqtt.mqtt_node;
    let shards: Vec<_> = (0..n.dbs.len())
        .map(|s| {
            let w = &n.writer_stats[s];
            serde_json::json!({
                "shard": s,
                "core": n.cores[s],
                "serving": n.serving[s].load(Ordering::Relaxed),
                "connections": n.connections[s].load(Ordering::Relaxed),
                "records": w.records.load(Ordering::Relaxed),
                "writes": w.writes.load(Ordering::Relaxed),
                "write_batches": w.batches.load(Ordering::Relaxed),
                "write_queue": n.writers[s].len(),
                "write_failures": w.failures.load(Ordering::Relaxed),
                "feed_drops": w.feed_drops.load(Ordering::Relaxed),
                "changelog_first": w.changelog_first.load(Ordering::Relaxed),
                "changelog_next": w.changelog_next.load(Ordering::Relaxed),
            })
        })
        .collect();
    let tables: Vec<_> = shard
        .catalog
        .borrow()
        .tables
        .values()
        .map(|t| serde_json::to_value(t.as_ref()).unwrap_or_default())
        .collect();
    let body = serde_json::json!({
        "node_id": n.config.cluster.node_id,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_ms": crate::storage::now_millis().saturating_sub(n.started_ms),
        "partitions": n.partitions,
        "durability": n.config.storage.durability,
        "shards": shards,
        "tables": tables,
        "mqtt": mqtt.status_json(),
        "limits": shard.limits.node_status_json(),
        "components": crate::app::add_job_status(shard.app.stats.status_json(), &shard.app.registry),
        "caches": shard.app.caches.node.status_json(),
        "cluster": shard.cluster.as_ref().map(|c| {
            let mut j = c.to_json();
            j["interest_filters"] = mqtt.interest.as_ref().map_or(0, |i| i.len()).into();
            j["publishes_dropped"] = mqtt
                .peers
                .as_ref()
                .map_or(0, |p| p.dropped.load(Ordering::Relaxed))
                .into();
            j
        }),
    });
    Response::json(200, serde_json::to_vec(&body).unwrap_or_default())
}
