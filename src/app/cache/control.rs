//! A reader's `Cache-Control` directives, as Harper reads them: `max-age=N` (a record older
//! than N seconds counts as stale for this read), `no-cache` (ask the origin even if the
//! record is fresh) and `only-if-cached` (serve what is stored, fresh or stale, and never
//! call the origin). Other directives are ignored.

use std::time::Duration;

/// What a read asks of a caching table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub max_age: Option<Duration>,
    pub no_cache: bool,
    pub only_if_cached: bool,
}

impl CacheControl {
    /// The directives of a `Cache-Control` header value (several headers joined with `,`).
    pub fn parse(header: &str) -> CacheControl {
        let mut cc = CacheControl::default();
        for part in header.split(',') {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (part.trim(), None),
            };
            match name.to_ascii_lowercase().as_str() {
                "no-cache" => cc.no_cache = true,
                "only-if-cached" => cc.only_if_cached = true,
                "max-age" => {
                    if let Some(secs) = value.and_then(|v| v.parse::<u64>().ok()) {
                        cc.max_age = Some(Duration::from_secs(secs));
                    }
                }
                _ => {}
            }
        }
        cc
    }

    /// The oldest version time (Unix ms) a record may have to be fresh for this read, `now`
    /// being when the read started: younger than `expiration` and than `max-age`; with
    /// `no-cache`, written after the read started.
    pub(crate) fn fresh_after(&self, now: u64, expiration: Duration) -> u64 {
        if self.no_cache {
            return now;
        }
        let age = match self.max_age {
            Some(max) => max.min(expiration),
            None => expiration,
        };
        (now + 1).saturating_sub(age.as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_read_case_insensitively_and_unknown_ones_ignored() {
        let cc = CacheControl::parse("Max-Age=30, no-cache, foo=bar,only-if-cached");
        assert_eq!(cc.max_age, Some(Duration::from_secs(30)));
        assert!(cc.no_cache && cc.only_if_cached);
        assert_eq!(CacheControl::parse(""), CacheControl::default());
        assert_eq!(CacheControl::parse("max-age=x").max_age, None);
    }

    #[test]
    fn max_age_shortens_freshness_and_no_cache_needs_a_newer_record() {
        let exp = Duration::from_secs(60);
        let now = 1_000_000;
        assert_eq!(
            CacheControl::default().fresh_after(now, exp),
            now + 1 - 60_000
        );
        let cc = CacheControl::parse("max-age=5");
        assert_eq!(cc.fresh_after(now, exp), now + 1 - 5_000);
        let cc = CacheControl::parse("max-age=600");
        assert_eq!(cc.fresh_after(now, exp), now + 1 - 60_000);
        assert_eq!(
            CacheControl::parse("max-age=0").fresh_after(now, exp),
            now + 1
        );
        assert_eq!(CacheControl::parse("no-cache").fresh_after(now, exp), now);
    }
}
