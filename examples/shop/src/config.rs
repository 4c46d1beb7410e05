//! The `[components.shop]` section: seeding, how long a pre-rendered page stays fresh, and
//! the bounds on what one page lists and what one shard keeps decoded.
//!
//! ```toml
//! [components.shop]
//! seed = true               # seed the SPEC's data into empty tables at start
//! page_ttl_secs = 300       # a page older than this is re-rendered on its next read
//! max_decoded_pages = 2048  # pages each shard keeps decoded in memory
//! max_listed = 2000         # products one listing (and one home count) covers
//! max_reviews = 200         # reviews one product page shows
//! ```
//!
//! A page is one record: its size follows `max_listed` (about 400 bytes per product, both
//! formats), and a record must fit a replication frame (`cluster.max_frame_bytes`, 4 MiB).

use serde::Deserialize;
use std::time::Duration;

/// Most products a listing, or reviews a product page, may be configured to hold.
const MAX_LISTED: usize = 10_000;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub seed: bool,
    pub page_ttl_secs: u64,
    pub max_decoded_pages: usize,
    pub max_listed: usize,
    pub max_reviews: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            seed: true,
            page_ttl_secs: 300,
            max_decoded_pages: 2048,
            max_listed: 2000,
            max_reviews: 200,
        }
    }
}

impl Config {
    /// Refuses values that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        let refuse = |key: &str, why: &str| Err(format!("`components.shop.{key}`: {why}"));
        if self.page_ttl_secs == 0 || self.page_ttl_secs > 86_400 * 31 {
            return refuse("page_ttl_secs", "must be 1 to 2678400 (31 days)");
        }
        if self.max_decoded_pages == 0 {
            return refuse("max_decoded_pages", "must be at least 1");
        }
        if !(1..=MAX_LISTED).contains(&self.max_listed) {
            return refuse("max_listed", "must be 1 to 10000");
        }
        if !(1..=MAX_LISTED).contains(&self.max_reviews) {
            return refuse("max_reviews", "must be 1 to 10000");
        }
        Ok(())
    }

    pub fn page_ttl(&self) -> Duration {
        Duration::from_secs(self.page_ttl_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_out_of_range_values_are_refused_by_name() {
        assert!(Config::default().check().is_ok());
        let bad = Config {
            max_listed: 0,
            ..Config::default()
        };
        assert!(bad
            .check()
            .unwrap_err()
            .contains("components.shop.max_listed"));
        let bad = Config {
            page_ttl_secs: 0,
            ..Config::default()
        };
        assert!(bad.check().unwrap_err().contains("page_ttl_secs"));
        let typo = serde_json::from_value::<Config>(serde_json::json!({"sed": true}));
        assert!(typo.is_err(), "a misspelt key is refused");
    }
}
