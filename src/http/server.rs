//! A shard's HTTP listener: accepts connections (the kernel spreads them over the shards'
//! SO_REUSEPORT listeners), enforces the per-shard connection cap and the per-address one
//! (`limits.http_connections_per_ip`), and runs each connection as a task on this shard.

use super::shard::HttpShard;
use crate::security::limits::Listener;
use std::rc::Rc;
use std::sync::atomic::Ordering;

pub async fn accept_loop(shard: Rc<HttpShard>, listener: glommio::net::TcpListener) {
    let max = shard.config().http.max_connections_per_shard;
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(shard = shard.id, "accept failed: {e}");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let open = &shard.node.connections[shard.id];
        if open.load(Ordering::Relaxed) >= max {
            // Over the cap: close at once rather than queue without bound.
            tracing::debug!(
                shard = shard.id,
                max,
                "connection refused: http.max_connections_per_shard reached"
            );
            drop(stream);
            continue;
        }
        let client = shard.limits.client(stream.peer_addr().ok().map(|a| a.ip()));
        let Some(slot) = shard.limits.connection(Listener::Http, &client) else {
            tracing::debug!(
                shard = shard.id,
                ip = %client.ip,
                "connection refused: limits.http_connections_per_ip reached"
            );
            drop(stream);
            continue;
        };
        open.fetch_add(1, Ordering::Relaxed);
        let shard2 = shard.clone();
        glommio::spawn_local(async move {
            super::conn::serve(&shard2, stream, client).await;
            drop(slot);
            shard2.node.connections[shard2.id].fetch_sub(1, Ordering::Relaxed);
        })
        .detach();
    }
}

/// Waits until this shard's HTTP requests in flight are answered, or `deadline`.
pub async fn drain(shard: &HttpShard, deadline: std::time::Instant) {
    while shard.in_flight.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
}
