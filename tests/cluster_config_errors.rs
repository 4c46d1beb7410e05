//! Cluster configuration: peers without a secret, two secret sources, a bad peer address and
//! a missing secret file or variable are refused with the key at fault (exit 2); the secret can
//! come from a file or the environment; the shipped 3-node configs are valid.

mod common;
use common::*;
use std::process::Command;

fn serve_with(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.toml");
    let data = tmp.path().join("data");
    std::fs::write(&path, config_text(&data, config)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_microlith"));
    cmd.args(["serve", "--config"]).arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn peers_without_a_secret_are_refused() {
    let (code, err) = serve_with(
        "[cluster]\n[[cluster.peers]]\naddr = \"127.0.0.1:9\"\n",
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cluster.secret"), "{err}");
}

#[test]
fn two_secret_sources_are_refused() {
    let (code, err) = serve_with(
        "[cluster]\nsecret = \"0123456789abcdef0123\"\nsecret_env = \"X\"\n",
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cluster.secret") && err.contains("one way"),
        "{err}"
    );
}

#[test]
fn bad_peer_address_and_short_secret_are_named() {
    let (code, err) = serve_with(
        "[cluster]\nsecret = \"0123456789abcdef0123\"\n[[cluster.peers]]\naddr = \"nowhere\"\n",
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cluster.peers[0].addr"), "{err}");
    let (code, err) = serve_with("[cluster]\nsecret = \"short\"\n", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("16 bytes"), "{err}");
}

#[test]
fn missing_secret_file_or_variable_stops_the_start() {
    let (code, err) = serve_with(
        "[cluster]\nsecret_file = \"/nonexistent/secret\"\nlisten = \"127.0.0.1:0\"\n",
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cluster.secret_file"), "{err}");
    let (code, err) = serve_with(
        "[cluster]\nsecret_env = \"MICROLITH_TEST_NO_SUCH_VAR\"\nlisten = \"127.0.0.1:0\"\n",
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("MICROLITH_TEST_NO_SUCH_VAR"), "{err}");
}

#[test]
fn secret_from_file_or_environment_starts_the_peer_listener() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "a-secret-kept-in-a-file-0123\n").unwrap();
    let s = Server::start(&format!(
        "[cluster]\nsecret_file = {:?}\nlisten = \"127.0.0.1:0\"\n",
        secret.display().to_string()
    ));
    assert!(
        s.ready.starts_with("http="),
        "http= stays first: {}",
        s.ready
    );
    assert!(s.ready_field("peer").is_some(), "{}", s.ready);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("m.toml");
    std::fs::write(
        &cfg,
        config_text(
            &data,
            "[cluster]\nsecret_env = \"MICROLITH_SECRET\"\nlisten = \"127.0.0.1:0\"\n",
        ),
    )
    .unwrap();
    let s = Server::start_with_env(
        dir.path(),
        &cfg,
        &data,
        &[(
            "MICROLITH_SECRET".into(),
            "a-secret-from-the-environment".into(),
        )],
    )
    .unwrap();
    assert!(s.ready_field("peer").is_some(), "{}", s.ready);
    let mut s = s;
    assert!(
        s.stop().success(),
        "a clustered node stops cleanly on SIGTERM"
    );
    // Without a secret there is no peer listener at all.
    let plain = Server::start("");
    assert!(plain.ready_field("peer").is_none(), "{}", plain.ready);
}

#[test]
fn shipped_cluster_configs_are_valid() {
    for n in 1..=3 {
        let path = format!(
            "{}/shards/cluster-3/node{n}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let out = Command::new(env!("CARGO_BIN_EXE_microlith"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
