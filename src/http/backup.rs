//! `POST /admin/backup {"to": DIR}`: writes a consistent backup of the running node
//! (`storage::backup`) into DIR, a new or empty directory under `storage.backup_dir` (a path
//! relative to it, or an absolute one inside it), and answers its manifest (size, duration,
//! entries). One backup at a time per process; the copy runs off the shard's executor.

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::router::not_allowed;
use super::shard::HttpShard;
use crate::storage::backup::{self, BackupError, Source};
use crate::storage::catalog::Catalog;
use crate::storage::layout;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set while a backup runs: a second one would only compete for the same disk.
static RUNNING: AtomicBool = AtomicBool::new(false);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupRequest {
    to: PathBuf,
}

pub async fn handle(shard: &Rc<HttpShard>, req: &Request<'_>, rest: &str) -> Response {
    if !rest.is_empty() {
        return problem(404, "no resource here; POST /admin/backup {\"to\": DIR}");
    }
    if req.method != Method::Post {
        return not_allowed(req.method, "POST");
    }
    let Some(root) = shard.node.config.storage.backup_dir.clone() else {
        return problem(
            409,
            "online backups are off: set `storage.backup_dir` to the directory backups may be written under, and restart",
        );
    };
    let body: BackupRequest = match serde_json::from_slice(req.body) {
        Ok(b) => b,
        Err(e) => return problem(400, &format!("expected {{\"to\": DIR}}: {e}")),
    };
    let target = match target_under(&root, &body.to) {
        Ok(t) => t,
        Err(m) => return problem(400, &m),
    };
    let Some(running) = Running::claim() else {
        return problem(
            409,
            "a backup is already running; try again when it has finished",
        );
    };
    let result = run(shard, target.clone(), running).await;
    match result {
        Ok(m) => {
            tracing::info!(dir = %target.display(), entries = m.entries, bytes = m.bytes, duration_ms = m.duration_ms, "backup written");
            let mut body = serde_json::to_value(&m).unwrap_or_default();
            body["dir"] = serde_json::Value::String(target.display().to_string());
            Response::json(201, serde_json::to_vec(&body).unwrap_or_default())
        }
        Err(BackupError::Target(m)) => problem(409, &m),
        Err(BackupError::Failed(m)) => {
            tracing::warn!(dir = %target.display(), "backup failed: {m}");
            problem(500, &format!("backup failed: {m}"))
        }
    }
}

/// The claim on `RUNNING`, released when dropped: when the copy ends, even if the request
/// that started it was abandoned meanwhile.
struct Running;

impl Running {
    fn claim() -> Option<Running> {
        (!RUNNING.swap(true, Ordering::AcqRel)).then_some(Running)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

/// Copies the node's storage on the blocking pool, holding `running` until the copy ends.
async fn run(
    shard: &Rc<HttpShard>,
    target: PathBuf,
    running: Running,
) -> Result<backup::Manifest, BackupError> {
    let node = shard.node.clone();
    glommio::executor()
        .spawn_blocking(move || {
            let _running = running;
            let layout =
                layout::read(&node.data_dir).map_err(|e| BackupError::Failed(e.to_string()))?;
            let catalog = || -> Catalog {
                let shared = node.catalog.read();
                shared.unwrap_or_else(|e| e.into_inner()).clone()
            };
            let source = Source {
                dbs: &node.dbs,
                catalog: &catalog,
                layout,
                node_id: node.config.cluster.node_id,
            };
            backup::write(&source, &target)
        })
        .await
}

/// `to` under `root`: a relative path of plain names, or an absolute path inside `root`.
fn target_under(root: &Path, to: &Path) -> Result<PathBuf, String> {
    let relative = match to.strip_prefix(root) {
        Ok(r) => r,
        Err(_) if to.is_absolute() => {
            return Err(format!(
                "{} is not inside `storage.backup_dir` ({})",
                to.display(),
                root.display()
            ))
        }
        Err(_) => to,
    };
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !plain || relative.as_os_str().is_empty() {
        return Err(format!(
            "{:?}: name a new directory under `storage.backup_dir` with plain names (no `..`)",
            to.display().to_string()
        ));
    }
    Ok(root.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stay_under_the_root() {
        let root = Path::new("/b");
        assert_eq!(target_under(root, Path::new("x/y")), Ok("/b/x/y".into()));
        assert_eq!(target_under(root, Path::new("/b/x")), Ok("/b/x".into()));
        for bad in ["../x", "/etc", "/b", "", "x/../../y", "/b/../c"] {
            assert!(target_under(root, Path::new(bad)).is_err(), "{bad}");
        }
    }
}
