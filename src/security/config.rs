//! The `[security]` section of the configuration: how long bearer tokens live, how many
//! verified credentials each shard remembers, and how many password checks may run at once.
//! Users and roles themselves are data (replicated system tables), not configuration.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Lifetime of an access token from `POST /auth/login` or `/auth/refresh` (seconds).
    pub access_token_secs: u64,
    /// Lifetime of a refresh token (seconds).
    pub refresh_token_secs: u64,
    /// Verified credentials (and refused ones) each shard remembers, so that a request does
    /// not pay a password hash. Past it the oldest-looking entry makes room.
    pub credential_cache_entries: usize,
    /// Password checks (argon2, tens of milliseconds each) one shard runs at once; past it a
    /// request with credentials not yet verified gets 503 with Retry-After.
    pub max_concurrent_password_checks: usize,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            access_token_secs: 3600,
            refresh_token_secs: 7 * 86_400,
            credential_cache_entries: 4096,
            max_concurrent_password_checks: 4,
        }
    }
}

fn range(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(ConfigError {
            key: format!("security.{key}"),
            message: format!("must be between {lo} and {hi}"),
        });
    }
    Ok(())
}

impl SecurityConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        range("access_token_secs", self.access_token_secs, 1, 30 * 86_400)?;
        range(
            "refresh_token_secs",
            self.refresh_token_secs,
            self.access_token_secs,
            365 * 86_400,
        )?;
        range(
            "credential_cache_entries",
            self.credential_cache_entries as u64,
            1,
            1 << 20,
        )?;
        range(
            "max_concurrent_password_checks",
            self.max_concurrent_password_checks as u64,
            1,
            64,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn security_keys_are_validated_by_name() {
        let e = Config::from_toml("[security]\naccess_token_secs = 0\n", "t").unwrap_err();
        assert_eq!(e.key, "security.access_token_secs");
        let e = Config::from_toml(
            "[security]\naccess_token_secs = 100\nrefresh_token_secs = 10\n",
            "t",
        )
        .unwrap_err();
        assert_eq!(e.key, "security.refresh_token_secs");
        let c = Config::from_toml("[security]\naccess_token_secs = 2\n", "t").unwrap();
        assert_eq!(c.security.access_token_secs, 2);
        assert_eq!(c.security.credential_cache_entries, 4096);
    }
}
