//! A multi-node cluster on loopback for replication tests: N real `microlith` processes, each
//! with its own data dir and config, and one fault-injecting proxy on every link (node i pulls
//! from node j through `proxies[i][j]`). Nodes listen for peers on port 0; the proxies are
//! pointed at the port each node prints on its ready line (again after a restart).

use super::proxy::Proxy;
use super::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-cluster-secret-0123456789";

pub struct Node {
    pub server: Option<Server>,
    pub dir: PathBuf,
    pub data: PathBuf,
    pub config: PathBuf,
    pub env: Vec<(String, String)>,
    pub peer_addr: String,
}

impl Node {
    pub fn s(&self) -> &Server {
        self.server.as_ref().expect("node is running")
    }

    pub fn url(&self, path: &str) -> String {
        self.s().url(path)
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// `proxies[i][j]`: the link on which node i pulls from node j (`None` for i == j).
    pub proxies: Vec<Vec<Option<Proxy>>>,
    _tmp: tempfile::TempDir,
}

/// Options of a cluster.
#[derive(Clone)]
pub struct Opts {
    /// Shards per node (its length is the node count).
    pub shards: Vec<usize>,
    /// Extra TOML per node (appended; must not repeat `[storage]`/`[http]`/`[cluster]`).
    pub extra: Vec<String>,
    /// Extra `[storage]` keys per node.
    pub storage: Vec<String>,
    /// Extra `[cluster]` keys per node.
    pub cluster: Vec<String>,
    pub env: Vec<Vec<(String, String)>>,
}

impl Opts {
    pub fn nodes(shards: &[usize]) -> Opts {
        Opts {
            shards: shards.to_vec(),
            extra: vec![String::new(); shards.len()],
            storage: vec![String::new(); shards.len()],
            cluster: vec![String::new(); shards.len()],
            env: vec![Vec::new(); shards.len()],
        }
    }
}

/// The config of node `i` (id i+1) pulling from `peers`.
pub fn node_config(
    i: usize,
    data: &std::path::Path,
    shards: usize,
    peers: &[String],
    secret: &str,
    storage: &str,
    extra: &str,
) -> String {
    let mut c = format!(
        "[cluster]\nnode_id = {}\nname = \"n{}\"\nsecret = \"{secret}\"\nlisten = \"127.0.0.1:0\"\nreconnect_max_ms = 300\n",
        i + 1,
        i + 1
    );
    for p in peers {
        c.push_str(&format!("[[cluster.peers]]\naddr = \"{p}\"\n"));
    }
    c.push_str(&format!(
        "\n[shards]\ncount = {shards}\n\n[storage]\ndata_dir = {:?}\n{storage}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n{PRODUCT_TABLE}\n{extra}\n",
        data.display().to_string()
    ));
    c
}

impl Cluster {
    pub fn start(o: Opts) -> Cluster {
        let n = o.shards.len();
        let tmp = tempfile::tempdir().unwrap();
        let proxies: Vec<Vec<Option<Proxy>>> = (0..n)
            .map(|i| (0..n).map(|j| (i != j).then(Proxy::new)).collect())
            .collect();
        let mut nodes = Vec::new();
        #[allow(clippy::needless_range_loop)]
        for i in 0..n {
            let dir = tmp.path().join(format!("n{}", i + 1));
            std::fs::create_dir_all(&dir).unwrap();
            let data = dir.join("data");
            let peers: Vec<String> = (0..n)
                .filter(|j| *j != i)
                .map(|j| proxies[i][j].as_ref().unwrap().addr.clone())
                .collect();
            let config = dir.join("microlith.toml");
            std::fs::write(
                &config,
                node_config(
                    i,
                    &data,
                    o.shards[i],
                    &peers,
                    SECRET,
                    &o.storage[i],
                    &o.extra[i],
                )
                .replace(
                    "reconnect_max_ms = 300\n",
                    &format!("reconnect_max_ms = 300\n{}\n", o.cluster[i]),
                ),
            )
            .unwrap();
            nodes.push(Node {
                server: None,
                dir,
                data,
                config,
                env: o.env[i].clone(),
                peer_addr: String::new(),
            });
        }
        let mut c = Cluster {
            nodes,
            proxies,
            _tmp: tmp,
        };
        for i in 0..n {
            c.boot(i);
        }
        c
    }

    /// Starts node `i` and points the proxies of links to it at its new peer port.
    pub fn boot(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let s = Server::start_with_env(&node.dir, &node.config, &node.data, &node.env)
            .unwrap_or_else(|e| panic!("node {} did not start: {e}", i + 1));
        node.peer_addr = s
            .ready_field("peer")
            .unwrap_or_else(|| panic!("no peer= on the ready line: {}", s.ready));
        node.server = Some(s);
        for row in &self.proxies {
            if let Some(p) = &row[i] {
                p.set_target(&self.nodes[i].peer_addr);
            }
        }
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut s) = self.nodes[i].server.take() {
            s.kill9();
        }
    }

    /// Cuts every link to and from node `i`.
    pub fn isolate(&self, i: usize) {
        for (a, row) in self.proxies.iter().enumerate() {
            for (b, p) in row.iter().enumerate() {
                if a == i || b == i {
                    if let Some(p) = p {
                        p.cut();
                    }
                }
            }
        }
    }

    pub fn heal(&self) {
        for p in self.proxies.iter().flatten().flatten() {
            p.resume();
        }
    }

    pub fn proxy(&self, puller: usize, from: usize) -> &Proxy {
        self.proxies[puller][from].as_ref().unwrap()
    }

    pub fn log(&self, i: usize) -> String {
        self.nodes[i]
            .server
            .as_ref()
            .map(|s| s.log())
            .unwrap_or_default()
    }

    pub fn digest(&self, i: usize) -> Value {
        let r = fetch(&self.nodes[i].url("/cluster/digest"));
        assert_eq!(r.status, 200, "digest of node {}: {}", i + 1, r.body);
        r.json()["tables"].clone()
    }

    /// Waits until every link is up both ways (and initial repairs are done).
    pub fn wait_linked(&self, timeout: Duration) {
        let n = self.nodes.len();
        let deadline = Instant::now() + timeout;
        loop {
            let mut missing = Vec::new();
            for i in 0..n {
                let st = fetch(&self.nodes[i].url("/status")).json();
                let peers = st["cluster"]["peers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let up = |dir: &str| {
                    peers
                        .iter()
                        .filter(|p| p[dir]["state"] == "connected")
                        .count()
                };
                // And past the first catch-up (a repair for a node without cursors), so that
                // tests start from quiet links.
                let caught_up = peers
                    .iter()
                    .filter(|p| p["inbound"]["caught_up"] == true)
                    .count();
                if up("inbound") < n - 1 || up("outbound") < n - 1 || caught_up < n - 1 {
                    missing.push(format!("node {}: {}", i + 1, st["cluster"]));
                }
            }
            if missing.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "links not all up after {timeout:?}:\n{}",
                    missing.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running node has the same digest for every table.
    pub fn wait_converged(&self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let ds: Vec<(usize, Value)> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].server.is_some())
                .map(|i| (i, self.digest(i)))
                .collect();
            if ds.iter().all(|(_, d)| *d == ds[0].1) {
                return ds[0].1.clone();
            }
            if Instant::now() > deadline {
                let detail: Vec<String> = ds
                    .iter()
                    .map(|(i, d)| format!("node {}: {d}", i + 1))
                    .collect();
                let status: Vec<String> = ds
                    .iter()
                    .map(|(i, _)| {
                        format!(
                            "node {}: {}",
                            i + 1,
                            fetch(&self.nodes[*i].url("/status")).json()["cluster"]
                        )
                    })
                    .collect();
                panic!(
                    "nodes did not converge within {timeout:?}\ndigests:\n{}\nstatus:\n{}",
                    detail.join("\n"),
                    status.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// (status, ETag, body) of a record on every running node.
    pub fn read_everywhere(&self, path: &str) -> Vec<(u16, Option<String>, String)> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].server.is_some())
            .map(|i| {
                let r = fetch(&self.nodes[i].url(path));
                (r.status, r.etag, r.body)
            })
            .collect()
    }
}

/// Parses an ETag `"<clock hex>.<node>"` into a comparable (clock, node).
pub fn version(etag: &str) -> (u64, u16) {
    let t = etag.trim_matches('"');
    let (c, n) = t
        .split_once('.')
        .unwrap_or_else(|| panic!("bad etag {etag}"));
    (u64::from_str_radix(c, 16).unwrap(), n.parse().unwrap())
}

/// Waits for `cond`, panicking with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                let log = std::fs::read_dir(&self.nodes[i].dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect::<String>();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("---- node {} log (last 60 lines) ----", i + 1);
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// One request with a short timeout, retried on transport errors. Under load a fresh
/// connection's request sometimes sits unread on the server for good (a lost wake-up in the HTTP
/// front end, seen without replication too), so each thread keeps one keep-alive connection and
/// a failed try starts a new one instead of waiting 30 s. A retried write may have been applied
/// once already; the tests only count writes whose answer they saw.
pub fn call(method: &str, url: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Resp {
    thread_local! {
        static AGENT: std::cell::RefCell<ureq::Agent> = std::cell::RefCell::new(short_agent());
    }
    let mut last = String::new();
    for _ in 0..10 {
        let a = AGENT.with(|a| a.borrow().clone());
        let mut r = a.request(method, url);
        for (k, v) in headers {
            r = r.set(k, v);
        }
        let result = match body {
            Some(b) => r.set("Content-Type", "application/json").send_string(b),
            None => r.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                last = e.to_string();
                AGENT.with(|a| *a.borrow_mut() = short_agent());
                continue;
            }
        };
        return Resp::from_ureq(resp);
    }
    panic!("{method} {url}: no answer in 10 tries: {last}");
}

fn short_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(3))
        .build()
}

/// `call("GET", ...)`.
pub fn fetch(url: &str) -> Resp {
    call("GET", url, None, &[])
}

/// `call("PUT", ...)` with a JSON body.
pub fn cput(url: &str, body: &str) -> Resp {
    call("PUT", url, Some(body), &[])
}
