//! `microlith backup` asks the running node for a backup (`POST /admin/backup`): the node
//! holds the lock on its data directory and is the only process that can read it
//! consistently. `microlith restore` copies a backup into an empty data directory of a stopped
//! node and forgets the replication cursors, so the node rejoins its peers by digest repair.

use crate::config::Config;
use crate::storage::{restore, shard_db::ShardDb};
use base64::Engine;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How `backup` reaches the node.
pub(super) struct Target {
    /// The node's base URL; without it, the config's `http.listen` on loopback.
    pub url: Option<String>,
    /// A super-user; the password comes from the terminal or standard input.
    pub user: Option<String>,
    pub password_stdin: bool,
}

pub(super) fn backup(to: &Path, config: &Config, target: Target) -> Result<(), String> {
    let base = match target.url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{}", loopback(config)?),
    };
    let mut req = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .build()
        .post(&format!("{base}/admin/backup"))
        .set("Content-Type", "application/json");
    if let Some(user) = &target.user {
        let password = super::accounts::read_password(target.password_stdin, false)?;
        let pair = format!("{user}:{password}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        req = req.set("Authorization", &format!("Basic {encoded}"));
    }
    let body = serde_json::json!({ "to": to }).to_string();
    let resp = match req.send_string(&body) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("cannot reach the node at {base}: {e}")),
    };
    let status = resp.status();
    let text = resp
        .into_string()
        .map_err(|e| format!("cannot read the node's answer ({status}): {e}"))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("the node answered {status} without JSON ({e}): {text}"))?;
    if status != 201 {
        let detail = json["detail"].as_str().unwrap_or("no detail");
        return Err(format!("the node refused the backup ({status}): {detail}"));
    }
    println!(
        "backup written to {}: {} entries, {} in {} ms",
        json["dir"].as_str().unwrap_or("?"),
        json["entries"],
        size(json["bytes"].as_u64().unwrap_or(0)),
        json["duration_ms"],
    );
    Ok(())
}

/// The node's HTTP address as seen from this host.
fn loopback(config: &Config) -> Result<std::net::SocketAddr, String> {
    let mut addr = config.http_addr().map_err(|e| e.to_string())?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(addr)
}

pub(super) fn restore(
    from: &Path,
    data_dir: Option<PathBuf>,
    config: &Config,
) -> Result<(), String> {
    let dir = data_dir.unwrap_or_else(|| config.storage.data_dir.clone());
    let r = restore::restore(from, &dir)?;
    let shard0 = ShardDb::open(&r.layout.shard_dir(&dir, 0), 8 << 20)
        .map_err(|e| format!("cannot open the restored data in {}: {e}", dir.display()))?;
    let forgotten = crate::cluster::cursor::forget_all(&shard0)
        .map_err(|e| format!("cannot reset the replication cursors: {e}"))?;
    drop(shard0);
    let m = &r.manifest;
    println!(
        "restored {} into {}: {} entries, {} shards, {} in {} ms; backup of node {} taken at {} ms since the epoch; new log generation {}; {forgotten} replication cursors reset (the node rejoins its peers by digest repair)",
        from.display(),
        dir.display(),
        m.entries,
        m.shards,
        size(r.bytes),
        r.duration_ms,
        m.node_id,
        m.started_ms,
        r.layout.generation,
    );
    if config.cluster.node_id != m.node_id {
        eprintln!(
            "note: the backup was taken on node {} but this config says `cluster.node_id = {}`; set it to {} to restore that node in its cluster",
            m.node_id, config.cluster.node_id, m.node_id
        );
    }
    Ok(())
}

/// Bytes for people: `12.3 MiB`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}
