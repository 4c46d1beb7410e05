//! Bad configuration: unknown key, wrong type, partition count mismatch, an unusable data
//! directory, a core that does not exist → exit code 2 and one message naming the key and fix.

mod common;
use common::*;
use std::process::Command;

fn serve_with(config: &str) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_microlith"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn unknown_key_is_named() {
    let (code, err) = serve_with("[http]\nlisten = \"127.0.0.1:0\"\nmax_bodyy = 5\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("max_bodyy") && err.contains("line 3"), "{err}");
}

#[test]
fn wrong_type_is_named() {
    let (code, err) = serve_with("[http]\nmax_body_bytes = \"lots\"\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("max_body_bytes") || err.contains("line 2"),
        "{err}"
    );
    let (code, err) = serve_with("[storage]\ndurability = \"sometimes\"\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("durability") || err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn check_config_validates_without_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.toml");
    let good_text =
        "[shards]\ncount = 1\n[http]\nlisten = \"127.0.0.1:0\"\n[mqtt]\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(&good, good_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_microlith"))
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[shards]\ncount = 0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_microlith"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shards.count"));
}

#[test]
fn partition_count_mismatch_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::start_at(tmp.path(), &data, "[cluster]\npartitions = 64\n").unwrap();
    assert!(s.stop().success());
    let cfg = config_text(&data, "[cluster]\npartitions = 128\n");
    let (code, err) = serve_with(&cfg);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cluster.partitions") && err.contains("64"),
        "{err}"
    );
}

#[test]
fn unusable_data_dir_is_refused() {
    // As root, permission bits do not stop us: /proc refuses new directories to everyone.
    let tmp = tempfile::tempdir().unwrap();
    let dir = if unsafe_is_root() {
        std::path::PathBuf::from("/proc/microlith-test/data")
    } else {
        let ro = tmp.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        ro.join("data")
    };
    let (code, err) = serve_with(&config_text(&dir, ""));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("storage.data_dir"), "{err}");
}

#[test]
fn missing_core_is_refused() {
    let (code, err) = serve_with("[shards]\ncount = 1\ncores = [4095]\n");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("shards.cores") && err.contains("4095"),
        "{err}"
    );
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn a_port_held_by_another_server_is_refused() {
    // Listeners use SO_REUSEPORT; a second server must not silently share the first's port.
    let first = Server::start("");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[storage]\ndata_dir = {:?}\n[http]\nlisten = {:?}\n[mqtt]\nlisten = \"127.0.0.1:0\"\n",
        tmp.path().join("data").display().to_string(),
        first.addr
    );
    let (code, err) = serve_with(&cfg);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("http.listen"), "{err}");
    assert_eq!(get(&agent(), &first.url("/health")).status, 200);
}
