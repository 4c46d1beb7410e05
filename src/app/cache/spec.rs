//! What a component declares about a caching table (`CacheSpec`): the table, where its
//! records come from (an HTTP origin or a function of the component), when a record goes
//! stale and when it is evicted, what may be served stale, and the bounds on origin calls.
//! `Setup::caching_table` checks a spec and records it with the component's declarations.

use super::super::component::Setup;
use super::super::{Ctx, Doc, Error};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How long an origin call may take unless the spec says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Origin calls of one caching table running at once on one shard, unless set.
pub const DEFAULT_MAX_FETCHES: usize = 16;
/// How long a failed origin call is remembered (and answered without calling again).
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(1);
/// Most origin calls one caching table may run at once on one shard.
pub const MAX_FETCHES: usize = 256;

/// The future a function source returns: the record (`None`: the origin has none).
pub type SourceFuture = Pin<Box<dyn Future<Output = Result<Option<Doc>, Error>>>>;

/// A component function that produces a caching table's records: any
/// `Fn(Ctx, String) -> impl Future<Output = Result<Option<Doc>, Error>>`. It runs on the
/// shard that owns the record, under the table's origin timeout.
pub trait CacheSource: Send + Sync + 'static {
    fn fetch(&self, ctx: Ctx, id: String) -> SourceFuture;
}

impl<F, Fut> CacheSource for F
where
    F: Fn(Ctx, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Doc>, Error>> + 'static,
{
    fn fetch(&self, ctx: Ctx, id: String) -> SourceFuture {
        Box::pin(self(ctx, id))
    }
}

/// Where a caching table's records come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// `GET` of this URL with `{id}` replaced by the percent-encoded id.
    Http(String),
    Function(Arc<dyn CacheSource>),
}

/// A caching table: a table whose records are copies of an origin's, fetched on a miss and
/// again once stale. Built with `CacheSpec::http` or `CacheSpec::function`, then adjusted.
#[derive(Clone)]
pub struct CacheSpec {
    pub(crate) table: String,
    pub(crate) primary_key: String,
    pub(crate) source: Source,
    pub(crate) expiration: Duration,
    pub(crate) eviction: Option<Duration>,
    pub(crate) stale_while_revalidate: bool,
    pub(crate) stale_if_error: bool,
    pub(crate) timeout: Duration,
    pub(crate) max_fetches: usize,
    pub(crate) negative_ttl: Duration,
    pub(crate) sweep_interval: Option<Duration>,
}

impl CacheSpec {
    /// A caching table whose records come from `GET url_template`, where `{id}` stands for
    /// the record's id (percent-encoded); a record older than `expiration` is stale.
    pub fn http(table: &str, url_template: &str, expiration: Duration) -> CacheSpec {
        CacheSpec::new(table, Source::Http(url_template.to_string()), expiration)
    }

    /// A caching table whose records come from a function of the component.
    pub fn function(table: &str, source: impl CacheSource, expiration: Duration) -> CacheSpec {
        CacheSpec::new(table, Source::Function(Arc::new(source)), expiration)
    }

    fn new(table: &str, source: Source, expiration: Duration) -> CacheSpec {
        CacheSpec {
            table: table.to_string(),
            primary_key: "id".to_string(),
            source,
            expiration,
            eviction: Some(Duration::ZERO),
            stale_while_revalidate: false,
            stale_if_error: false,
            timeout: DEFAULT_TIMEOUT,
            max_fetches: DEFAULT_MAX_FETCHES,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            sweep_interval: None,
        }
    }

    /// The table's primary key (default `id`).
    pub fn primary_key(mut self, attr: &str) -> CacheSpec {
        self.primary_key = attr.to_string();
        self
    }

    /// Extra time after expiry before the sweep removes a stale record (default zero: it
    /// goes at the first sweep after it expires).
    pub fn eviction(mut self, after_expiry: Duration) -> CacheSpec {
        self.eviction = Some(after_expiry);
        self
    }

    /// Stale records stay until they are fetched again or deleted (no sweep).
    pub fn no_eviction(mut self) -> CacheSpec {
        self.eviction = None;
        self
    }

    /// Serve a stale record at once and fetch a fresh one in the background.
    pub fn stale_while_revalidate(mut self, on: bool) -> CacheSpec {
        self.stale_while_revalidate = on;
        self
    }

    /// Serve a stale record when the origin fails, times out or is at its bound.
    pub fn stale_if_error(mut self, on: bool) -> CacheSpec {
        self.stale_if_error = on;
        self
    }

    /// How long an origin call may take (default 5 s); past it the call is answered 504.
    pub fn timeout(mut self, timeout: Duration) -> CacheSpec {
        self.timeout = timeout;
        self
    }

    /// Origin calls running at once on one shard (default 16, at most 256); past it a read
    /// that needs the origin is answered 503 with Retry-After.
    pub fn max_concurrent_fetches(mut self, n: usize) -> CacheSpec {
        self.max_fetches = n.clamp(1, MAX_FETCHES);
        self
    }

    /// How long a failed origin call (or a record the origin does not have) is remembered
    /// and answered without calling the origin again (default 1 s).
    pub fn negative_ttl(mut self, ttl: Duration) -> CacheSpec {
        self.negative_ttl = ttl;
        self
    }

    /// How often each shard sweeps its part of the table for records to evict (default a
    /// quarter of expiration + eviction, between 100 ms and 60 s).
    pub fn sweep_interval(mut self, every: Duration) -> CacheSpec {
        self.sweep_interval = Some(every);
        self
    }

    /// The sweep's period.
    pub(crate) fn sweep_every(&self, eviction: Duration) -> Duration {
        self.sweep_interval.unwrap_or_else(|| {
            ((self.expiration + eviction) / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(60))
        })
    }

    /// Refuses a spec that cannot work, saying why.
    fn check(&self) -> Result<(), String> {
        if self.expiration.is_zero() {
            return Err("expiration must be more than zero".into());
        }
        if self.timeout.is_zero() {
            return Err("the origin timeout must be more than zero".into());
        }
        if self.sweep_interval.is_some_and(|d| d.is_zero()) {
            return Err("the sweep interval must be more than zero".into());
        }
        if let Source::Http(url) = &self.source {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            if !scheme_ok || !url.contains("{id}") {
                return Err(format!(
                    "the origin {url:?} must be an http:// or https:// URL with {{id}} where the record's id goes"
                ));
            }
        }
        Ok(())
    }
}

impl Setup<'_> {
    /// Declares a caching table (created at start if the node does not have it): reads of
    /// `/{Table}/{id}` and `Table::get_cached` fetch a missing or stale record from its
    /// source. See `docs/components.md`, "Caching tables".
    pub fn caching_table(&mut self, spec: CacheSpec) -> Result<(), String> {
        let name = self.name();
        let refuse = |m: String| {
            Err(format!(
                "component {name}: caching table {:?}: {m}",
                spec.table
            ))
        };
        if let Err(m) = spec.check() {
            return refuse(m);
        }
        if self.decl.caches.iter().any(|c| c.table == spec.table) {
            return refuse("declared twice".into());
        }
        match self.decl.tables.iter().find(|t| t.name == spec.table) {
            Some(t) if t.primary_key != spec.primary_key => {
                return refuse(format!(
                    "its primary key is {:?} but the table is declared with {:?}",
                    spec.primary_key, t.primary_key
                ))
            }
            Some(_) => {}
            None => self.table(&spec.table, &spec.primary_key, &[]),
        }
        self.decl.caches.push(spec);
        Ok(())
    }
}
