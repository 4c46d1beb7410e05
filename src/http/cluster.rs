//! `GET /cluster/digest`: per-table anti-entropy digests of this node (SHA-256 root over the
//! per-partition digests, live records, tombstones), so anyone can check that nodes converged:
//! equal digests mean the same version of every record, tombstones included.

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::router::not_allowed;
use super::shard::HttpShard;
use crate::cluster::digest;

pub async fn digest(shard: &HttpShard, req: &Request<'_>) -> Response {
    if !matches!(req.method, Method::Get | Method::Head) {
        return not_allowed(req.method, "GET, HEAD");
    }
    let dbs = shard.node.dbs.clone();
    // A full scan of storage: never on the shard's executor.
    let result = glommio::executor()
        .spawn_blocking(move || digest::compute(&dbs))
        .await;
    match result {
        Err(e) => problem(500, &format!("storage read failed: {e}")),
        Ok(tables) => {
            let mut all = serde_json::Map::new();
            for (name, t) in &tables {
                all.insert(
                    name.clone(),
                    serde_json::json!({
                        "digest": digest::hex(&t.root()),
                        "records": t.records,
                        "tombstones": t.tombstones,
                        "partitions": t.parts.len(),
                    }),
                );
            }
            let body = serde_json::json!({
                "node_id": shard.node.config.cluster.node_id,
                "tables": all,
            });
            Response::json(200, serde_json::to_vec(&body).unwrap_or_default())
        }
    }
}
