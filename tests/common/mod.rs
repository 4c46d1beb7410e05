//! Test harness: starts the real `microlith` binary on an ephemeral loopback port with a temp
//! data dir, waits for its ready line, and talks to it with an independent HTTP client (ureq)
//! or raw sockets.
#![allow(dead_code)]

pub mod auth;
pub mod cluster;
pub mod conformance;
pub mod mqtt;
pub mod origin;
pub mod proxy;
pub mod raw_http;
pub mod raw_mqtt;
pub mod shop;
pub mod sse;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    /// The MQTT listener (`mqtt=` on the ready line).
    pub mqtt_addr: String,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    /// The ready line after `microlith ready ` (e.g. `http=... shards=2 node=1 peer=...`).
    pub ready: String,
    log_path: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// A config on loopback port 0 with the given data dir and extra TOML appended.
pub fn config_text(data_dir: &Path, extra: &str) -> String {
    format!(
        "[storage]\ndata_dir = {:?}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n{extra}\n",
        data_dir.display().to_string()
    )
}

pub const PRODUCT_TABLE: &str =
    "[[tables]]\nname = \"Product\"\nprimary_key = \"id\"\nindexes = [\"category\", \"price\"]\n";

impl Server {
    /// Starts a server with a fresh temp data dir.
    pub fn start(extra: &str) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut s = Server::start_at(tmp.path(), &data, extra)
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server whose files live under `dir`, data in `data_dir`.
    pub fn start_at(dir: &Path, data_dir: &Path, extra: &str) -> Result<Server, String> {
        let config_path = dir.join("microlith.toml");
        std::fs::write(&config_path, config_text(data_dir, extra)).unwrap();
        Server::start_with_config(dir, &config_path, data_dir)
    }

    pub fn start_with_config(
        dir: &Path,
        config_path: &Path,
        data_dir: &Path,
    ) -> Result<Server, String> {
        Server::start_with_env(dir, config_path, data_dir, &[])
    }

    /// Like `start_with_config`, with extra environment variables for the server.
    pub fn start_with_env(
        dir: &Path,
        config_path: &Path,
        data_dir: &Path,
        env: &[(String, String)],
    ) -> Result<Server, String> {
        // Test servers never take the default MQTT port: loopback, port 0, unless the test
        // configures `[mqtt] listen` itself.
        let text = std::fs::read_to_string(config_path).unwrap_or_default();
        if !text.contains("[mqtt]") {
            std::fs::write(
                config_path,
                format!("{text}\n[mqtt]\nlisten = \"127.0.0.1:0\"\n"),
            )
            .unwrap();
        } else if !mqtt_section_sets_listen(&text) {
            let text = text.replacen("[mqtt]\n", "[mqtt]\nlisten = \"127.0.0.1:0\"\n", 1);
            std::fs::write(config_path, text).unwrap();
        }
        let log_path = dir.join(format!("server-{}.log", std::process::id()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_microlith"))
            .arg("serve")
            .arg("--config")
            .arg(config_path)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn microlith");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("microlith ready ") {
                    let _ = tx.send(rest.to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(ready) => Ok(Server {
                child: Some(child),
                addr: ready_field(&ready, "http").unwrap_or_default(),
                mqtt_addr: ready_field(&ready, "mqtt").unwrap_or_default(),
                ready,
                data_dir: data_dir.to_path_buf(),
                config_path: config_path.to_path_buf(),
                log_path,
                _tmp: None,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                Err(format!(
                    "no ready line (exit {status:?}); log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                ))
            }
        }
    }

    /// A `key=value` field of the ready line.
    pub fn ready_field(&self, key: &str) -> Option<String> {
        ready_field(&self.ready, key)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        unsafe_kill(c.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("server did not stop within 30 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn mqtt_section_sets_listen(text: &str) -> bool {
    let Some((_, section)) = text.split_once("[mqtt]") else {
        return false;
    };
    let section = section.split("\n[").next().unwrap_or("");
    section
        .lines()
        .any(|l| l.trim_start().starts_with("listen"))
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- server log ----\n{}", self.log());
            if std::env::var("MICROLITH_GDB_ON_PANIC").is_ok() {
                let out = Command::new("gdb")
                    .args([
                        "-p",
                        &self.pid().to_string(),
                        "-batch",
                        "-ex",
                        "thread apply all bt 30",
                    ])
                    .output();
                if let Ok(o) = out {
                    eprintln!("---- gdb ----\n{}", String::from_utf8_lossy(&o.stdout));
                }
            }
        }
        self.kill9();
    }
}

/// A `key=value` field of a ready line.
pub fn ready_field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('=').map(String::from))
}

fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// A response, whatever its status.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: String,
    pub etag: Option<String>,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
}

impl Resp {
    /// Reads a ureq answer whole.
    pub fn from_ureq(resp: ureq::Response) -> Resp {
        let header = |n: &str| resp.header(n).map(String::from);
        let (etag, location) = (header("etag"), header("location"));
        let (content_type, retry_after) = (header("content-type"), header("retry-after"));
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| {
                let v = resp.header(&n)?.to_string();
                Some((n.to_ascii_lowercase(), v))
            })
            .collect();
        Resp {
            status: resp.status(),
            etag,
            location,
            content_type,
            retry_after,
            headers,
            body: resp.into_string().unwrap_or_default(),
        }
    }

    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

/// (status, JSON body — or the text as a JSON string) of a request with an optional JSON
/// body, whatever the status.
pub fn call_json(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let req = a.request(method, url);
    let resp = match body {
        Some(b) => req
            .set("content-type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match resp {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

/// Sends a request with an optional JSON body and extra headers.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut r = agent.request(method, url);
    for (k, v) in headers {
        r = r.set(k, v);
    }
    let result = match body {
        Some(b) => {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                r = r.set("Content-Type", "application/json");
            }
            r.send_string(b)
        }
        None => r.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    Resp::from_ureq(resp)
}

pub fn get(a: &ureq::Agent, url: &str) -> Resp {
    send(a, "GET", url, None, &[])
}

pub fn put(a: &ureq::Agent, url: &str, body: &str) -> Resp {
    send(a, "PUT", url, Some(body), &[])
}

/// Writes raw bytes on a new connection and reads until the server closes or `wait` passes.
pub fn raw(addr: &str, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Per-shard record counts from `/status`.
pub fn shard_records(a: &ureq::Agent, s: &Server) -> Vec<i64> {
    get(a, &s.url("/status")).json()["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["records"].as_i64().unwrap())
        .collect()
}

/// Runs the binary with `args` and `stdin` as its input: (success, stdout + stderr).
pub fn cli(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_microlith"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn microlith");
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
