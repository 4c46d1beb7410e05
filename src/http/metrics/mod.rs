//! `/metrics`: the node's counters in the Prometheus text format. Each shard counts its own
//! requests in plain shard-local cells (`requests`); a scrape collects every shard's copy
//! through the metrics mesh (`gather`) and reads the node-wide counters `/status` reads too
//! (writers, storage, broker, replication links, components, caching tables), then writes the
//! families (`shards`, `services`) in the text format (`text`). Access is as for `/status`:
//! any user once users exist. See `docs/operations.md` for the metric names.

pub mod gather;
pub mod requests;
pub mod services;
pub mod shards;
pub mod text;

use super::problem::problem;
use super::response::Response;
use super::shard::HttpShard;
use gather::{GatherError, NodeMetrics};
use std::sync::Arc;

/// A shard's metrics state: its request counters and the way to every shard's.
pub struct ShardMetrics {
    pub requests: requests::ShardRequests,
    pub node: Arc<NodeMetrics>,
}

impl ShardMetrics {
    pub fn new(node: Arc<NodeMetrics>) -> ShardMetrics {
        ShardMetrics {
            requests: Default::default(),
            node,
        }
    }
}

/// The answer to a failed gathering.
pub fn gather_failed(e: GatherError) -> Response {
    let mut r = match e {
        GatherError::Busy => problem(503, "too many metrics requests at once; retry shortly"),
        GatherError::ShuttingDown => problem(503, "shutting down"),
    };
    r.retry_after = Some(1);
    r
}

/// `GET /metrics`.
pub async fn serve(shard: &HttpShard) -> Response {
    let snaps = match gather::all(shard).await {
        Ok(s) => s,
        Err(e) => return gather_failed(e),
    };
    let mut e = text::Exposition::default();
    node_info(&mut e, shard);
    shards::http(&mut e, &snaps);
    shards::node(&mut e, &shard.node, &shard.mqtt.mqtt_node);
    services::mqtt(&mut e, &shard.mqtt.mqtt_node, &snaps);
    if let Some(c) = &shard.cluster {
        services::cluster(&mut e, c);
    }
    services::components(&mut e, &shard.app.stats);
    services::caches(&mut e, &shard.app.caches.node);
    let mut r = Response::json(200, e.finish().into_bytes());
    r.content_type = text::CONTENT_TYPE.into();
    r
}

/// The node's version, id, shard count and uptime.
fn node_info(e: &mut text::Exposition, shard: &HttpShard) {
    use text::Kind;
    let n = &shard.node;
    let node_id = n.config.cluster.node_id.to_string();
    e.family(
        "microlith_info",
        Kind::Gauge,
        "Always 1; the labels say which node and version.",
    );
    let labels = [
        ("version", env!("CARGO_PKG_VERSION")),
        ("node", node_id.as_str()),
    ];
    e.sample("microlith_info", &labels, 1);
    e.family(
        "microlith_shards",
        Kind::Gauge,
        "Shards (one per core) this node runs.",
    );
    e.sample("microlith_shards", &[], n.dbs.len());
    e.family(
        "microlith_uptime_seconds",
        Kind::Gauge,
        "Seconds since the node started.",
    );
    let ms = crate::storage::now_millis().saturating_sub(n.started_ms);
    e.sample("microlith_uptime_seconds", &[], ms as f64 / 1e3);
}
