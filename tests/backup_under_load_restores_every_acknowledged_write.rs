//! `microlith backup` while writers keep writing, `microlith restore` onto a fresh data dir,
//! and a node started on it: every write acknowledged before the backup started is there,
//! with its value, and so are the users (system tables). A backup of the quiet node restores
//! to the same digests as the node itself. Refusals: a backup without credentials, into a
//! non-empty directory or outside `storage.backup_dir`; a restore from an incomplete backup
//! or into a non-empty data dir.

mod common;
use common::auth::*;
use common::*;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const TABLES: &str = "[[tables]]\nname = \"Load\"\nprimary_key = \"id\"\n\n[[tables]]\nname = \"Static\"\nprimary_key = \"id\"\n\n[shards]\ncount = 2\n";

/// `microlith backup --to DIR` against `s`, as the super-user unless `anonymous`.
fn backup(s: &Server, to: &str, anonymous: bool) -> (bool, String) {
    let url = s.url("");
    let mut args = vec!["backup", "--to", to, "--url", &url];
    if !anonymous {
        args.extend(["--user", ADMIN.0, "--password-stdin"]);
    }
    cli(&args, &format!("{}\n", ADMIN.1))
}

fn restore(from: &Path, data: &Path) -> (bool, String) {
    let (from, data) = (from.display().to_string(), data.display().to_string());
    cli(&["restore", "--from", &from, "--data-dir", &data], "")
}

/// Per table: the digest `/cluster/digest` reports.
fn digests(a: &ureq::Agent, s: &Server) -> HashMap<String, String> {
    let r = as_admin(a, "GET", &s.url("/cluster/digest"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let tables = r.json()["tables"].as_object().unwrap().clone();
    tables
        .into_iter()
        .map(|(t, v)| (t, v["digest"].as_str().unwrap().to_string()))
        .collect()
}

/// Writers on `Load` until `stop`: each acknowledged id, with whether its acknowledgement
/// came before `started` was set (those are also counted in `early`).
fn writers(
    s: &Server,
    started: &Arc<AtomicBool>,
    stop: &Arc<AtomicBool>,
    early: &Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<Vec<(String, bool)>>> {
    (0..4)
        .map(|w| {
            let (url, started, stop) = (s.url("/Load/"), started.clone(), stop.clone());
            let early = early.clone();
            std::thread::spawn(move || {
                let a = agent();
                let mut acked = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Acquire) {
                    let id = format!("w{w}-{n}");
                    let body = json!({ "n": n }).to_string();
                    let r = as_user(&a, ADMIN, "PUT", &format!("{url}{id}"), Some(&body));
                    if matches!(r.status, 200 | 201 | 204) {
                        let before = !started.load(Ordering::Acquire);
                        early.fetch_add(usize::from(before), Ordering::AcqRel);
                        acked.push((id, before));
                    }
                    n += 1;
                }
                acked
            })
        })
        .collect()
}

#[test]
fn backup_under_load_then_restore_serves_every_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("backups");
    let extra = TABLES;
    let live_dir = tmp.path().join("live");
    std::fs::create_dir_all(&live_dir).unwrap();
    let config = format!(
        "[storage]\ndata_dir = {:?}\nbackup_dir = {:?}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n{extra}",
        live_dir.join("data").display().to_string(),
        root.display().to_string()
    );
    let config_path = live_dir.join("microlith.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut live =
        Server::start_with_config(&live_dir, &config_path, &live_dir.join("data")).unwrap();
    let a = agent();
    create_admin(&a, &live);
    for i in 0..200 {
        let r = as_admin(
            &a,
            "PUT",
            &live.url(&format!("/Static/{i}")),
            Some(json!({ "i": i })),
        );
        assert!(matches!(r.status, 201 | 204), "{}", r.body);
    }

    // Refusals before any backup exists.
    let (ok, out) = backup(&live, "anonymous", true);
    assert!(!ok && out.contains("401"), "{out}");
    let (ok, out) = backup(&live, "../outside", false);
    assert!(!ok && out.contains("plain names"), "{out}");

    let (started, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let early = Arc::new(AtomicUsize::new(0));
    let threads = writers(&live, &started, &stop, &early);
    // Let the writers get going, then back up while they write.
    while early.load(Ordering::Acquire) < 200 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    started.store(true, Ordering::Release);
    let (ok, out) = backup(&live, "under-load", false);
    assert!(ok, "{out}");
    assert!(
        out.contains("backup written to") && out.contains(" ms"),
        "{out}"
    );
    stop.store(true, Ordering::Release);
    let acked: Vec<(String, bool)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let before: Vec<&String> = acked.iter().filter(|(_, b)| *b).map(|(id, _)| id).collect();
    assert!(
        before.len() >= 200,
        "{} writes before the backup",
        before.len()
    );

    // A second backup into the same directory is refused; nothing there changes.
    let manifest = std::fs::read(root.join("under-load/backup.json")).unwrap();
    let (ok, out) = backup(&live, "under-load", false);
    assert!(!ok && out.contains("not empty"), "{out}");
    assert_eq!(
        std::fs::read(root.join("under-load/backup.json")).unwrap(),
        manifest
    );

    // The quiet node: its backup restores to its own digests.
    let (ok, out) = backup(&live, "quiet", false);
    assert!(ok, "{out}");
    let live_digests = digests(&a, &live);
    live.stop();

    let restored = restore_and_start(tmp.path(), &root.join("under-load"), "r1");
    for id in &before {
        let r = as_admin(&a, "GET", &restored.url(&format!("/Load/{id}")), None);
        assert_eq!(
            r.status, 200,
            "{id} acknowledged before the backup: {}",
            r.body
        );
        let n: u64 = id.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(r.json()["n"], json!(n), "{id}");
    }
    assert_eq!(digests(&a, &restored)["Static"], live_digests["Static"]);
    drop(restored);

    let quiet = restore_and_start(tmp.path(), &root.join("quiet"), "r2");
    assert_eq!(digests(&a, &quiet), live_digests);
}

/// Restores `backup` into a fresh data dir under `dir/name` and starts a node on it.
fn restore_and_start(dir: &Path, backup: &Path, name: &str) -> Server {
    let node_dir = dir.join(name);
    std::fs::create_dir_all(&node_dir).unwrap();
    let data = node_dir.join("data");
    let (ok, out) = restore(backup, &data);
    assert!(ok, "{out}");
    assert!(out.contains("new log generation"), "{out}");
    // Into a data dir that now holds data: refused.
    let (ok, out) = restore(backup, &data);
    assert!(!ok && out.contains("not empty"), "{out}");
    Server::start_at(&node_dir, &data, TABLES).unwrap()
}

#[test]
fn restore_refuses_an_incomplete_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let partial = tmp.path().join("partial");
    std::fs::create_dir_all(partial.join("gen-1")).unwrap();
    std::fs::write(partial.join("layout.json"), "{}").unwrap();
    let data = tmp.path().join("data");
    let (ok, out) = restore(&partial, &data);
    assert!(!ok && out.contains("not a complete backup"), "{out}");
    assert!(!data.exists(), "a refused restore creates nothing");
}
