//! A shard's HTTP and HTTPS listeners: accept connections (the kernel spreads them over the
//! shards' SO_REUSEPORT listeners), enforce the per-shard connection cap (both count against
//! it) and the per-address one (`limits.http_connections_per_ip`), and run each connection as
//! a task on this shard; on the HTTPS listener the task first runs the TLS handshake, bounded
//! by `tls.handshake_timeout_ms`.

use super::shard::HttpShard;
use crate::net::tls::Tls;
use crate::security::limits::{Client, Listener};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Serves the listener until the task is dropped; `tls`: the listener speaks HTTPS.
pub async fn accept_loop(
    shard: Rc<HttpShard>,
    listener: glommio::net::TcpListener,
    tls: Option<Arc<Tls>>,
) {
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
        let tls = tls.clone();
        glommio::spawn_local(async move {
            match tls {
                None => super::conn::serve(&shard2, stream, client).await,
                Some(tls) => serve_tls(&shard2, &tls, stream, client).await,
            }
            drop(slot);
            shard2.node.connections[shard2.id].fetch_sub(1, Ordering::Relaxed);
        })
        .detach();
    }
}

/// The TLS handshake (with the certificate of the moment), then HTTP over it.
async fn serve_tls(
    shard: &Rc<HttpShard>,
    tls: &Tls,
    stream: glommio::net::TcpStream,
    client: Client,
) {
    let config = tls.configs().http.clone();
    match crate::net::tls::accept(config, stream, tls.handshake_timeout()).await {
        Ok(stream) => super::conn::serve(shard, stream, client).await,
        Err(e) => tracing::debug!(shard = shard.id, "HTTPS handshake failed: {e}"),
    }
}

/// Waits until this shard's HTTP requests in flight are answered, or `deadline`.
pub async fn drain(shard: &HttpShard, deadline: std::time::Instant) {
    while shard.in_flight.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
}
