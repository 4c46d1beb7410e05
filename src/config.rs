//! Configuration: the TOML schema, its defaults (`shards/default.toml` is compiled in), and
//! validation that names the offending key and says how to fix it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use crate::http::config::{CorsConfig, HttpConfig};

/// The embedded default configuration, used when `serve` gets no `--config`.
pub const DEFAULT_TOML: &str = include_str!("../shards/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub cluster: ClusterConfig,
    pub shards: ShardsConfig,
    pub storage: StorageConfig,
    pub http: HttpConfig,
    pub mqtt: crate::mqtt::config::MqttConfig,
    pub security: crate::security::config::SecurityConfig,
    pub tls: crate::net::tls_config::TlsConfig,
    pub limits: crate::security::limits::config::LimitsConfig,
    pub log: LogConfig,
    pub tables: Vec<TableConfig>,
    /// `[components.NAME]`: the sections of the components to run, each read by its
    /// component (`app::Setup::config`); a name this binary has no component for is refused.
    pub components: std::collections::BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub node_id: u16,
    pub partitions: u32,
    /// Human-readable node name shown to peers and in `/status` (default `node-{node_id}`).
    pub name: String,
    /// The shared cluster secret, inline. Prefer `secret_file` or `secret_env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A file holding the cluster secret (trailing newline ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the cluster secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Address of the peer listener (replication links). Port 0 picks a free port.
    pub listen: String,
    /// Peers this node pulls changes from: `[[cluster.peers]] addr = "host:port"`.
    pub peers: Vec<PeerConfig>,
    /// Largest replication frame accepted or sent (bytes).
    pub max_frame_bytes: usize,
    /// Longest wait between two attempts to reach a peer (milliseconds).
    pub reconnect_max_ms: u64,
    /// A tombstone is purged once every node holds it and it is at least this old (ms).
    pub tombstone_grace_ms: u64,
    /// A change from a peer whose version is more than this far ahead of this node's wall
    /// clock is refused (the link closes and retries) rather than dragging every node's
    /// hybrid logical clock into the future (milliseconds).
    pub max_clock_drift_ms: u64,
}

/// One `[[cluster.peers]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub addr: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            partitions: 256,
            name: String::new(),
            secret: None,
            secret_file: None,
            secret_env: None,
            listen: "0.0.0.0:9933".into(),
            peers: Vec::new(),
            max_frame_bytes: 4 * 1024 * 1024,
            reconnect_max_ms: 5_000,
            tombstone_grace_ms: 3_600_000,
            max_clock_drift_ms: 60_000,
        }
    }
}

impl ClusterConfig {
    /// True when a cluster secret is configured: the node then runs its peer listener.
    pub fn enabled(&self) -> bool {
        self.secret.is_some() || self.secret_file.is_some() || self.secret_env.is_some()
    }

    /// The node's name, `node-{id}` when none is set.
    pub fn node_name(&self) -> String {
        if self.name.is_empty() {
            format!("node-{}", self.node_id)
        } else {
            self.name.clone()
        }
    }

    /// The peer listener address.
    /// The configured peers' addresses, in config order.
    pub fn peer_addrs(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.addr.clone()).collect()
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            err(
                "cluster.listen",
                format!("{:?} is not an address like \"0.0.0.0:9933\"", self.listen),
            )
        })
    }

    fn validate(&self, max_body_bytes: usize) -> Result<(), ConfigError> {
        let sources = [
            self.secret.is_some(),
            self.secret_file.is_some(),
            self.secret_env.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(err(
                "cluster.secret",
                "give the secret one way only: `secret`, `secret_file` or `secret_env`",
            ));
        }
        if !self.peers.is_empty() && !self.enabled() {
            return Err(err(
                "cluster.secret",
                "peers are listed but no cluster secret is set; add `secret_file = \"...\"` or `secret_env = \"MICROLITH_SECRET\"`",
            ));
        }
        if let Some(s) = &self.secret {
            if s.len() < 16 {
                return Err(err("cluster.secret", "must be at least 16 bytes"));
            }
        }
        if self.name.len() > 64 {
            return Err(err("cluster.name", "must be at most 64 bytes"));
        }
        self.listen_addr()?;
        for (i, p) in self.peers.iter().enumerate() {
            let ok = p
                .addr
                .rsplit_once(':')
                .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok_and(|n| n > 0));
            if !ok {
                return Err(err(
                    &format!("cluster.peers[{i}].addr"),
                    format!("{:?} is not an address like \"10.0.0.2:9933\"", p.addr),
                ));
            }
        }
        let min_frame = max_body_bytes + 64 * 1024;
        if self.max_frame_bytes < min_frame.max(1 << 20) || self.max_frame_bytes > 256 << 20 {
            return Err(err(
                "cluster.max_frame_bytes",
                format!(
                    "must be between {} (1 MiB and at least http.max_body_bytes + 64 KiB) and 268435456",
                    min_frame.max(1 << 20)
                ),
            ));
        }
        if self.tombstone_grace_ms > 30 * 86_400_000 {
            return Err(err(
                "cluster.tombstone_grace_ms",
                "must be at most 30 days (2592000000)",
            ));
        }
        if !(1_000..=86_400_000).contains(&self.max_clock_drift_ms) {
            return Err(err(
                "cluster.max_clock_drift_ms",
                "must be between 1000 (1 s) and 86400000 (1 day) milliseconds",
            ));
        }
        if !(100..=600_000).contains(&self.reconnect_max_ms) {
            return Err(err(
                "cluster.reconnect_max_ms",
                "must be between 100 and 600000 milliseconds",
            ));
        }
        Ok(())
    }
}

/// `count = "auto"` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ShardCount {
    Number(usize),
    Word(AutoWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoWord {
    Auto,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardsConfig {
    pub count: ShardCount,
    pub cores: Vec<usize>,
    pub preempt_timer_us: u64,
    pub spin_before_park_us: u64,
    pub io_memory_kib: usize,
    pub mesh_queue_depth: usize,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        Self {
            count: ShardCount::Word(AutoWord::Auto),
            cores: Vec::new(),
            preempt_timer_us: 500,
            spin_before_park_us: 0,
            io_memory_kib: 512,
            mesh_queue_depth: 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    Buffered,
    Sync,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub flush_interval_ms: u64,
    pub write_queue_depth: usize,
    pub cache_mib: u64,
    pub changelog_retention_secs: u64,
    pub changelog_max_entries: u64,
    /// Where `POST /admin/backup` may write backups (none: online backups are off).
    pub backup_dir: Option<PathBuf>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            durability: Durability::Buffered,
            flush_interval_ms: 5,
            write_queue_depth: 4096,
            cache_mib: 64,
            changelog_retention_secs: 86_400,
            changelog_max_entries: 1_000_000,
            backup_dir: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
    /// One line per sampled HTTP request (at info level).
    pub access: bool,
    /// With `access`: log one request in this many (1: every request).
    pub access_sample: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            access: false,
            access_sample: 1,
        }
    }
}

/// A table declaration: `[[tables]] name, primary_key, indexes, attributes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    pub name: String,
    #[serde(default = "default_primary_key")]
    pub primary_key: String,
    #[serde(default)]
    pub indexes: Vec<String>,
    /// Declared attribute types (`crate::storage::attributes`); others take any value.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: crate::storage::attributes::Attributes,
}

fn default_primary_key() -> String {
    "id".into()
}

/// A configuration error: the key at fault and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}`: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// Longest table or attribute name accepted (they are part of every storage key).
pub const MAX_NAME_BYTES: usize = 128;

impl Config {
    /// Parses TOML text and validates it. `origin` names the file in messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            let key = key_from_toml_error(&message);
            let position = e
                .span()
                .map(|s| line_col(text, s.start))
                .map(|(l, c)| format!(" (line {l}, column {c})"))
                .unwrap_or_default();
            ConfigError {
                key,
                message: format!("{message}{position} in {origin}; see shards/default.toml for every key and its meaning"),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(
                "",
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// The embedded default.
    pub fn embedded_default() -> Config {
        Config::from_toml(DEFAULT_TOML, "the embedded default")
            .expect("embedded default config is valid")
    }

    /// Checks every value range and cross-key rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster.node_id == 0 {
            return Err(err("cluster.node_id", "must be between 1 and 65535"));
        }
        if !(1..=65_536).contains(&self.cluster.partitions) {
            return Err(err(
                "cluster.partitions",
                "must be between 1 and 65536 (256 is a good default)",
            ));
        }
        if let ShardCount::Number(n) = self.shards.count {
            if n == 0 || n > 1024 {
                return Err(err(
                    "shards.count",
                    "must be \"auto\" or a number between 1 and 1024",
                ));
            }
            if !self.shards.cores.is_empty() && self.shards.cores.len() != n {
                return Err(err(
                    "shards.cores",
                    format!("lists {} cores but shards.count is {n}: give one core per shard or leave cores empty", self.shards.cores.len()),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.shards.cores {
            if !seen.insert(*c) {
                return Err(err(
                    "shards.cores",
                    format!("core {c} is listed twice: each shard needs its own core"),
                ));
            }
        }
        if !(100..=1000).contains(&self.shards.preempt_timer_us) {
            return Err(err(
                "shards.preempt_timer_us",
                "must be between 100 and 1000 microseconds",
            ));
        }
        if self.shards.spin_before_park_us > 10_000 {
            return Err(err(
                "shards.spin_before_park_us",
                "must be at most 10000 microseconds",
            ));
        }
        if !(64..=65_536).contains(&self.shards.io_memory_kib) {
            return Err(err(
                "shards.io_memory_kib",
                "must be between 64 and 65536 KiB",
            ));
        }
        check_range(
            "shards.mesh_queue_depth",
            self.shards.mesh_queue_depth,
            16,
            1 << 20,
        )?;
        check_range(
            "storage.write_queue_depth",
            self.storage.write_queue_depth,
            16,
            1 << 20,
        )?;
        if !(1..=1000).contains(&self.storage.flush_interval_ms) {
            return Err(err(
                "storage.flush_interval_ms",
                "must be between 1 and 1000 milliseconds",
            ));
        }
        if self.storage.cache_mib == 0 {
            return Err(err("storage.cache_mib", "must be at least 1 MiB"));
        }
        if self.storage.changelog_max_entries < 1000 {
            return Err(err(
                "storage.changelog_max_entries",
                "must be at least 1000",
            ));
        }
        check_range(
            "log.access_sample",
            self.log.access_sample as usize,
            1,
            1_000_000,
        )?;
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err(err("storage.data_dir", "must not be empty"));
        }
        self.http_addr()?;
        self.cluster.validate(self.http.max_body_bytes)?;
        self.http.validate()?;
        self.mqtt.validate()?;
        self.security.validate()?;
        self.tls.validate(self.cluster.enabled())?;
        self.limits.validate()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(err(
                "log.level",
                "is not a valid filter: use error, warn, info, debug or trace",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.tables.iter().enumerate() {
            let key = format!("tables[{i}]");
            validate_table(t).map_err(|m| err(&key, m))?;
            if !names.insert(t.name.as_str()) {
                return Err(err(
                    &format!("{key}.name"),
                    format!("table {:?} is declared twice", t.name),
                ));
            }
        }
        Ok(())
    }

    /// The HTTP listen address.
    pub fn http_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.http.listen.parse().map_err(|_| {
            err(
                "http.listen",
                format!(
                    "{:?} is not an address like \"0.0.0.0:9926\"",
                    self.http.listen
                ),
            )
        })
    }
}

/// Checks a table definition; used for TOML tables and for tables created at run time.
pub fn validate_table(t: &TableConfig) -> Result<(), String> {
    validate_name(&t.name).map_err(|m| format!("name {:?} {m}", t.name))?;
    validate_name(&t.primary_key).map_err(|m| format!("primary_key {:?} {m}", t.primary_key))?;
    if t.name.starts_with('_') {
        return Err(format!(
            "name {:?}: names starting with '_' are reserved for the system",
            t.name
        ));
    }
    if t.name == "admin" || t.name == "health" || t.name == "status" || t.name == "cluster" {
        return Err(format!(
            "name {:?} is reserved for a built-in endpoint",
            t.name
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for attr in &t.indexes {
        validate_name(attr).map_err(|m| format!("index {attr:?} {m}"))?;
        if attr == &t.primary_key {
            return Err(format!(
                "index {attr:?} is the primary key, which is always indexed"
            ));
        }
        if !seen.insert(attr) {
            return Err(format!("index {attr:?} is listed twice"));
        }
    }
    if t.indexes.len() > 64 {
        return Err("at most 64 indexes per table".into());
    }
    validate_attributes(t)
}

/// Declared attribute names are names; the primary key, if declared, is an ID or a String.
fn validate_attributes(t: &TableConfig) -> Result<(), String> {
    use crate::storage::attributes::{Kind, MAX_ATTRIBUTES};
    if t.attributes.len() > MAX_ATTRIBUTES {
        return Err(format!(
            "at most {MAX_ATTRIBUTES} typed attributes per table"
        ));
    }
    for (name, ty) in &t.attributes {
        validate_name(name).map_err(|m| format!("attribute {name:?} {m}"))?;
        let id_kind = matches!(ty.kind, Kind::Id | Kind::String | Kind::Any);
        if name == &t.primary_key && !id_kind {
            return Err(format!(
                "attribute {name:?} is the primary key: its type is ID (ids are strings)"
            ));
        }
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err("must be 1 to 128 bytes");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("may only contain letters, digits, '_' and '-'");
    }
    Ok(())
}

pub(crate) fn check_range(key: &str, v: usize, lo: usize, hi: usize) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(err(key, format!("must be between {lo} and {hi}")));
    }
    Ok(())
}

/// toml reports unknown keys as "unknown field `x`"; pull the name out so the message leads with it.
fn key_from_toml_error(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            return rest[..end].to_string();
        }
    }
    String::new()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|p| offset - p).unwrap_or(offset + 1);
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded_default();
        assert_eq!(c.http.listen, "0.0.0.0:9926");
        assert_eq!(c.cluster.partitions, 256);
        assert_eq!(c.shards.count, ShardCount::Word(AutoWord::Auto));
    }

    #[test]
    fn unknown_key_is_named() {
        let e =
            Config::from_toml("[http]\nlisten = \"127.0.0.1:1\"\nbogus = 3\n", "t").unwrap_err();
        assert_eq!(e.key, "bogus");
        assert!(e.message.contains("line 3"), "{e}");
    }

    #[test]
    fn wrong_type_is_reported_with_position() {
        let e = Config::from_toml("[http]\nmax_body_bytes = \"big\"\n", "t").unwrap_err();
        assert!(e.message.contains("line 2"), "{e}");
    }

    #[test]
    fn shard_count_accepts_number_and_auto() {
        let c = Config::from_toml("[shards]\ncount = 3\n", "t").unwrap();
        assert_eq!(c.shards.count, ShardCount::Number(3));
        assert!(Config::from_toml("[shards]\ncount = \"many\"\n", "t").is_err());
        assert!(Config::from_toml("[shards]\ncount = 0\n", "t").is_err());
    }

    #[test]
    fn allowed_hosts_are_names_wildcards_or_star() {
        let ok = "[http]\nallowed_hosts = [\"example.com\", \"*.apps.example.com\", \"*\"]\n";
        assert!(Config::from_toml(ok, "t").is_ok());
        for bad in [
            "http://example.com",
            "example.com:80",
            "",
            "a..b",
            "*example.com",
        ] {
            let t = format!("[http]\nallowed_hosts = [\"x\", {bad:?}]\n");
            let e = Config::from_toml(&t, "t").unwrap_err();
            assert_eq!(e.key, "http.allowed_hosts[1]", "{bad}");
        }
    }

    #[test]
    fn duplicate_tables_and_bad_names_are_refused() {
        let t = "[[tables]]\nname = \"A\"\n[[tables]]\nname = \"A\"\n";
        assert_eq!(Config::from_toml(t, "t").unwrap_err().key, "tables[1].name");
        let t = "[[tables]]\nname = \"a b\"\n";
        assert_eq!(Config::from_toml(t, "t").unwrap_err().key, "tables[0]");
    }
}
