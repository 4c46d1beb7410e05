//! Safe by default: a node without users listens on loopback only (whatever `http.listen` and
//! `mqtt.listen` say) and asks for no credentials; `microlith user add` on the stopped node's
//! data dir (refused while it runs) gives it a user, and after a restart it listens where
//! configured and refuses requests without credentials. A running node that gets its first
//! user enforces authentication at once and keeps its loopback listeners until it restarts.

mod common;
use common::auth::*;
use common::*;

/// A config that asks for every interface.
fn write_config(dir: &std::path::Path, data: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("microlith.toml");
    let text = format!(
        "[storage]\ndata_dir = {:?}\n\n[http]\nlisten = \"0.0.0.0:0\"\n\n[mqtt]\nlisten = \"0.0.0.0:0\"\n\n[shards]\ncount = 2\n\n{PRODUCT_TABLE}",
        data.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn no_users_means_loopback_and_open_then_a_user_added_offline_means_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = write_config(tmp.path(), &data);
    let a = agent();

    let mut s = Server::start_with_config(tmp.path(), &config, &data).unwrap();
    assert!(
        s.addr.starts_with("127.0.0.1:"),
        "HTTP on loopback: {}",
        s.ready
    );
    assert!(
        s.mqtt_addr.starts_with("127.0.0.1:"),
        "MQTT on loopback: {}",
        s.ready
    );
    assert!(s.log().contains("no users exist"), "the log says why");
    assert_eq!(
        put(&a, &s.url("/Product/1"), r#"{"name":"open"}"#).status,
        201
    );
    assert_eq!(
        get(&a, &s.url("/Product/1")).status,
        200,
        "no credentials needed"
    );

    // Offline while the server runs: refused, naming the reason.
    let (ok, out) = user_add_offline(&config, "admin", "super_user", "admin-password");
    assert!(!ok && out.contains("in use"), "{out}");
    assert!(s.stop().success());

    let (ok, out) = user_add_offline(&config, "nobody", "no-such-role", "long-enough");
    assert!(!ok && out.contains("does not exist"), "{out}");
    let (ok, out) = user_add_offline(&config, "admin", "super_user", "admin-password");
    assert!(ok, "{out}");

    let s = Server::start_with_config(tmp.path(), &config, &data).unwrap();
    assert!(
        s.addr.starts_with("0.0.0.0:"),
        "configured address: {}",
        s.ready
    );
    assert!(s.mqtt_addr.starts_with("0.0.0.0:"), "{}", s.ready);
    let url = s.url("/Product/1");
    let r = get(&a, &url);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = a.get(&url).call();
    let Err(ureq::Error::Status(401, resp)) = r else {
        panic!("expected 401");
    };
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Basic realm=\"microlith\", Bearer")
    );
    assert_eq!(
        call(
            &a,
            "GET",
            &url,
            None,
            Some(&basic("admin", "wrong-password"))
        )
        .status,
        401
    );
    let r = as_user(&a, ADMIN, "GET", &url, None);
    assert_eq!((r.status, r.json()["name"].as_str()), (200, Some("open")));
    assert_eq!(get(&a, &s.url("/health")).status, 200, "health stays open");
}

#[test]
fn a_running_node_enforces_its_first_user_at_once_and_keeps_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = write_config(tmp.path(), &data);
    let a = agent();
    let s = Server::start_with_config(tmp.path(), &config, &data).unwrap();
    assert_eq!(put(&a, &s.url("/Product/1"), "{}").status, 201);
    create_admin(&a, &s);
    assert_eq!(
        get(&a, &s.url("/Product/1")).status,
        401,
        "enforced at once"
    );
    assert_eq!(
        as_user(&a, ADMIN, "GET", &s.url("/Product/1"), None).status,
        200
    );
    assert!(
        s.addr.starts_with("127.0.0.1:"),
        "listeners stay until a restart"
    );
}
