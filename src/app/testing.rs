//! A node inside a component's own tests: `TestNode::start` runs a node in this process, on
//! ephemeral loopback ports with a temporary data directory, with the given components, and
//! stops it (every thread joined) when dropped. Talk to it with any HTTP or MQTT client.

use super::Component;
use crate::config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running in-process node.
pub struct TestNode {
    /// `host:port` of the HTTP listener.
    pub http: SocketAddr,
    /// `host:port` of the MQTT listener.
    pub mqtt: SocketAddr,
    /// `host:port` of the replication listener (when the config sets a cluster secret):
    /// what another test node lists in its `[[cluster.peers]]`.
    pub peer: Option<SocketAddr>,
    /// `host:port` of the HTTPS and MQTT-over-TLS listeners (when the config has a `[tls]`
    /// certificate; give them port 0 in `https_listen` and `mqtt_listen`).
    pub https: Option<SocketAddr>,
    pub mqtts: Option<SocketAddr>,
    reload: crate::node::Reload,
    stop: Option<flume::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    /// Starts a node with `components` on the config `toml` (for example
    /// `[components.telemetry]` sections and `[[tables]]`), where unless it says otherwise the
    /// node listens on loopback port 0 for HTTP and MQTT (and for peers, when it has a
    /// `[cluster]` section; for HTTPS and MQTT over TLS, when it has a `[tls]` section) and
    /// keeps its data in a temporary directory.
    pub fn start(components: Vec<Arc<dyn Component>>, toml: &str) -> Result<TestNode, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary dir: {e}"))?;
        let text = with_test_defaults(toml, &dir.path().join("data"))?;
        let config = Config::from_toml(&text, "the test config").map_err(|e| e.to_string())?;
        let (stop, stopped) = flume::bounded::<()>(1);
        let (ready_tx, ready_rx) = flume::bounded(1);
        let thread = std::thread::Builder::new()
            .name("test-node".into())
            .spawn(move || {
                let ready = |r: &crate::node::Ready| {
                    let _ = ready_tx.send(r.clone());
                };
                let until = move || {
                    let _ = stopped.recv();
                    "test end"
                };
                crate::node::run(config, &components, ready, until).map_err(|e| e.to_string())
            })
            .map_err(|e| format!("cannot start the node's thread: {e}"))?;
        match ready_rx.recv() {
            Ok(r) => Ok(TestNode {
                http: r.http,
                mqtt: r.mqtt,
                peer: r.peer,
                https: r.https,
                mqtts: r.mqtts,
                reload: r.reload,
                stop: Some(stop),
                thread: Some(thread),
                _dir: dir,
            }),
            Err(_) => Err(match thread.join() {
                Ok(Err(e)) => e,
                _ => "the node stopped during start-up".into(),
            }),
        }
    }

    /// `http://host:port` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Re-reads the TLS files, as SIGHUP does for a served node.
    pub fn reload(&self) -> Result<(), String> {
        self.reload.run()
    }

    /// Stops the node and waits until every thread has ended.
    pub fn stop(mut self) -> Result<(), String> {
        self.shut()
    }

    fn shut(&mut self) -> Result<(), String> {
        drop(self.stop.take());
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err("the node's thread panicked".into()),
            None => Ok(()),
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.shut();
    }
}

/// `toml` with a temporary data dir and loopback listeners where it sets none (the TLS ones
/// too when it has a `[tls]` section).
fn with_test_defaults(toml: &str, data_dir: &std::path::Path) -> Result<String, String> {
    let mut doc: toml::Table = toml.parse().map_err(|e| format!("the test config: {e}"))?;
    let clustered = doc.contains_key("cluster");
    let tls = doc.contains_key("tls");
    let mut set = |section: &str, key: &str, value: toml::Value| -> Result<(), String> {
        let table = doc
            .entry(section)
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .ok_or_else(|| format!("the test config: `{section}` is not a table"))?;
        table.entry(key).or_insert(value);
        Ok(())
    };
    set("storage", "data_dir", data_dir.display().to_string().into())?;
    set("http", "listen", "127.0.0.1:0".into())?;
    set("mqtt", "listen", "127.0.0.1:0".into())?;
    if clustered {
        set("cluster", "listen", "127.0.0.1:0".into())?;
    }
    if tls {
        set("tls", "https_listen", "127.0.0.1:0".into())?;
        set("tls", "mqtt_listen", "127.0.0.1:0".into())?;
    }
    toml::to_string(&doc).map_err(|e| format!("the test config: {e}"))
}
