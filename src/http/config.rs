//! The `[http]` section of the configuration (and `[http.cors]`): where the HTTP front end
//! listens, the limits on requests and connections, the host names and origins it answers,
//! static files and compression.

use crate::config::{check_range, err, ConfigError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: String,
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
    pub idle_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub max_connections_per_shard: usize,
    pub max_query_rows: usize,
    pub max_index_ids: usize,
    /// Host names requests may name (`Host`) and WebSocket pages may come from (`Origin`),
    /// besides loopback and IP addresses: `"example.com"`, `"*.example.com"`, or `"*"` for any.
    pub allowed_hosts: Vec<String>,
    /// Compress answers (brotli or gzip, as the client accepts) of at least
    /// `compress_min_bytes`.
    pub compress: bool,
    pub compress_min_bytes: usize,
    /// Which pages of other origins may call the API from a browser (`[http.cors]`).
    pub cors: CorsConfig,
    /// A directory whose files are served as they are (`[http] static_dir`); `None`: none.
    pub static_dir: Option<String>,
    /// The most bytes `static_dir` may hold (its files are kept in memory).
    pub static_max_bytes: usize,
}

/// `[http.cors]`: cross-origin resource sharing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Answer CORS at all (preflights and `Access-Control-Allow-Origin`).
    pub enabled: bool,
    /// Origins allowed (`https://app.example.com`), or `"*"` for any.
    pub origins: Vec<String>,
    /// Let pages of the listed origins send credentials (cookies, HTTP auth); never for `*`.
    pub credentials: bool,
    /// How long a browser may cache a preflight's answer, in seconds.
    pub max_age_secs: u32,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            origins: vec!["*".into()],
            credentials: false,
            max_age_secs: 86_400,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:9926".into(),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            idle_timeout_ms: 60_000,
            request_timeout_ms: 10_000,
            max_connections_per_shard: 10_000,
            max_query_rows: 100_000,
            max_index_ids: 262_144,
            allowed_hosts: Vec::new(),
            cors: CorsConfig::default(),
            static_dir: None,
            static_max_bytes: 64 * 1024 * 1024,
            compress: true,
            compress_min_bytes: 1024,
        }
    }
}

impl HttpConfig {
    /// Checks every key of `[http]`; the error names the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "http.max_header_bytes",
            self.max_header_bytes,
            1024,
            1 << 20,
        )?;
        check_range("http.max_body_bytes", self.max_body_bytes, 1024, 1 << 30)?;
        check_range(
            "http.max_connections_per_shard",
            self.max_connections_per_shard,
            1,
            1 << 20,
        )?;
        check_range("http.max_query_rows", self.max_query_rows, 1, 10_000_000)?;
        check_range("http.max_index_ids", self.max_index_ids, 1, 100_000_000)?;
        if self.idle_timeout_ms < 100 {
            return Err(err(
                "http.idle_timeout_ms",
                "must be at least 100 milliseconds",
            ));
        }
        if self.request_timeout_ms < 100 {
            return Err(err(
                "http.request_timeout_ms",
                "must be at least 100 milliseconds",
            ));
        }
        validate_allowed_hosts(&self.allowed_hosts)?;
        validate_cors(&self.cors)?;
        check_range("http.static_max_bytes", self.static_max_bytes, 0, 1 << 30)?;
        Ok(())
    }
}

/// Longest `http.allowed_hosts` list accepted.
pub const MAX_ALLOWED_HOSTS: usize = 256;

/// Each entry is `*`, a host name, or `*.` and a host name (its subdomains).
fn validate_allowed_hosts(list: &[String]) -> Result<(), ConfigError> {
    if list.len() > MAX_ALLOWED_HOSTS {
        return Err(err(
            "http.allowed_hosts",
            format!("at most {MAX_ALLOWED_HOSTS} entries"),
        ));
    }
    for (i, h) in list.iter().enumerate() {
        let name = h.strip_prefix("*.").unwrap_or(h);
        let ok = h == "*"
            || (!name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }));
        if !ok {
            return Err(err(
                &format!("http.allowed_hosts[{i}]"),
                format!("{h:?} is not a host name like \"example.com\", \"*.example.com\" or \"*\" (no port, no scheme)"),
            ));
        }
    }
    Ok(())
}

/// Longest `http.cors.origins` list accepted.
pub const MAX_CORS_ORIGINS: usize = 256;

/// Each origin is `*` or `scheme://host[:port]`; credentials need named origins.
fn validate_cors(cors: &CorsConfig) -> Result<(), ConfigError> {
    if cors.origins.len() > MAX_CORS_ORIGINS {
        return Err(err(
            "http.cors.origins",
            format!("at most {MAX_CORS_ORIGINS} entries"),
        ));
    }
    for (i, o) in cors.origins.iter().enumerate() {
        let ok = o == "*"
            || o.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    && !rest.is_empty()
                    && !rest.contains(['/', '?', '#', ' '])
            });
        if !ok {
            return Err(err(
                &format!("http.cors.origins[{i}]"),
                format!("{o:?} is not an origin like \"https://app.example.com\" or \"http://localhost:3000\" (no path), or \"*\""),
            ));
        }
    }
    if cors.credentials && cors.origins.iter().any(|o| o == "*") {
        return Err(err(
            "http.cors.credentials",
            "needs the allowed origins named: browsers refuse credentials for any origin (\"*\")",
        ));
    }
    Ok(())
}
