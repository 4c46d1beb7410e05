//! The `[limits]` section of the configuration: the admission bounds (request and publish
//! rates, connections per address), the size of the maps that track them, and the addresses
//! they do not apply to.

use super::addr::Cidr;
use crate::config::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// HTTP requests per second from one client address, on each shard (token bucket); 0 = off.
    pub http_requests_per_sec: u32,
    /// Requests one address may make at once before the rate applies (the bucket's size).
    pub http_burst: u32,
    /// Open HTTP connections from one address on each shard; 0 = off.
    pub http_connections_per_ip: u32,
    /// Open MQTT connections from one address on each shard; 0 = off.
    pub mqtt_connections_per_ip: u32,
    /// PUBLISH packets per second from one MQTT connection (token bucket); 0 = off.
    pub mqtt_publishes_per_sec: u32,
    /// Publishes one connection may make at once before the rate applies.
    pub mqtt_publish_burst: u32,
    /// Requests per second of one authenticated user, on each shard; 0 = off.
    pub user_requests_per_sec: u32,
    /// Requests one user may make at once before the rate applies.
    pub user_burst: u32,
    /// Keys (addresses, users) each shard tracks a rate for; past it a new key shares one
    /// overflow bucket until idle keys are forgotten.
    pub max_tracked: usize,
    /// Addresses (CIDR blocks) none of the per-address limits apply to.
    pub exempt: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            http_requests_per_sec: 1000,
            http_burst: 2000,
            http_connections_per_ip: 1000,
            mqtt_connections_per_ip: 1000,
            mqtt_publishes_per_sec: 1000,
            mqtt_publish_burst: 2000,
            user_requests_per_sec: 1000,
            user_burst: 2000,
            max_tracked: 10_000,
            exempt: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

/// Longest `exempt` list accepted (it is scanned once per connection).
pub const MAX_EXEMPT: usize = 64;

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

fn range(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(err(key, format!("must be between {lo} and {hi}")));
    }
    Ok(())
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rates = [
            (
                "http_requests_per_sec",
                self.http_requests_per_sec,
                "http_burst",
                self.http_burst,
            ),
            (
                "mqtt_publishes_per_sec",
                self.mqtt_publishes_per_sec,
                "mqtt_publish_burst",
                self.mqtt_publish_burst,
            ),
            (
                "user_requests_per_sec",
                self.user_requests_per_sec,
                "user_burst",
                self.user_burst,
            ),
        ];
        for (rate_key, rate, burst_key, burst) in rates {
            range(&format!("limits.{rate_key}"), rate as u64, 0, 10_000_000)?;
            // A bucket smaller than one token would refuse everything.
            let lo = if rate > 0 { 1 } else { 0 };
            range(
                &format!("limits.{burst_key}"),
                burst as u64,
                lo,
                100_000_000,
            )?;
        }
        for (key, v) in [
            (
                "limits.http_connections_per_ip",
                self.http_connections_per_ip,
            ),
            (
                "limits.mqtt_connections_per_ip",
                self.mqtt_connections_per_ip,
            ),
        ] {
            range(key, v as u64, 0, 1 << 20)?;
        }
        range("limits.max_tracked", self.max_tracked as u64, 1, 10_000_000)?;
        if self.exempt.len() > MAX_EXEMPT {
            return Err(err(
                "limits.exempt",
                format!("at most {MAX_EXEMPT} entries"),
            ));
        }
        self.exempt_blocks()?;
        Ok(())
    }

    /// The `exempt` entries parsed.
    pub fn exempt_blocks(&self) -> Result<Vec<Cidr>, ConfigError> {
        self.exempt
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Cidr::parse(e).ok_or_else(|| {
                    err(
                        &format!("limits.exempt[{i}]"),
                        format!("{e:?} is not an address or a block like \"10.0.0.0/8\" or \"fd00::/8\""),
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn limits_keys_are_validated_by_name() {
        let e = Config::from_toml("[limits]\nhttp_burst = 0\n", "t").unwrap_err();
        assert_eq!(e.key, "limits.http_burst");
        let c = Config::from_toml("[limits]\nhttp_requests_per_sec = 0\nhttp_burst = 0\n", "t");
        assert!(c.is_ok(), "a burst of 0 is fine when the rate is off");
        let e = Config::from_toml("[limits]\nexempt = [\"10.0.0.0/33\"]\n", "t").unwrap_err();
        assert_eq!(e.key, "limits.exempt[0]");
        let e = Config::from_toml("[limits]\nmax_tracked = 0\n", "t").unwrap_err();
        assert_eq!(e.key, "limits.max_tracked");
        let e = Config::from_toml("[limits]\nbogus = 1\n", "t").unwrap_err();
        assert_eq!(e.key, "bogus");
        let c = Config::from_toml("", "t").unwrap();
        assert_eq!(c.limits.http_requests_per_sec, 1000);
        assert_eq!(c.limits.exempt_blocks().unwrap().len(), 2);
    }
}
