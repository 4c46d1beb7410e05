//! What every shard shares about caching tables: each table's spec, counters and HTTP
//! client, the tables by name, and each shard's bounded cache inbox (a read that needs the
//! origin asks the record's owner shard through it; a full inbox is answered 503).

use super::spec::{CacheSpec, Source};
use super::Outcome;
use crate::app::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Blocking threads a shard keeps for origin calls and its other blocking work, at most.
const MAX_BLOCKING_THREADS: usize = 64;

/// What one caching table's reads came to, node-wide.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Fresh records served without asking the origin.
    pub hits: AtomicU64,
    /// Reads that asked the owner shard for a fetch (absent, stale, or `no-cache`).
    pub misses: AtomicU64,
    /// Stale records served (stale-while-revalidate, stale-if-error, `only-if-cached`).
    pub stale_served: AtomicU64,
    /// Origin calls made.
    pub origin_calls: AtomicU64,
    /// Origin calls that failed (not counting timeouts and records the origin lacks).
    pub origin_errors: AtomicU64,
    /// Origin calls cut at the timeout.
    pub timeouts: AtomicU64,
    /// Records removed by the sweep.
    pub evicted: AtomicU64,
    /// Reads refused because the owner was at its bound of origin calls or its inbox was full.
    pub busy: AtomicU64,
    /// Fetched records not stored because a newer write had landed meanwhile.
    pub fills_discarded: AtomicU64,
}

/// A fetch asked of the owner shard of record `id`.
pub(crate) struct FillRequest {
    pub cache: usize,
    pub id: String,
    /// A stored record whose version time (ms) is at least this is fresh enough.
    pub fresh_after: u64,
    /// Where the outcome goes (`None`: a background refresh nobody waits for).
    pub reply: Option<flume::Sender<Outcome>>,
}

/// One caching table.
pub(crate) struct CacheEntry {
    pub component: usize,
    pub spec: CacheSpec,
    pub stats: CacheStats,
    /// The HTTP client of an HTTP origin (connections kept alive between calls).
    pub agent: Option<ureq::Agent>,
}

/// Every caching table of the node.
pub struct NodeCaches {
    pub(crate) tables: Vec<CacheEntry>,
    by_name: HashMap<String, usize>,
    pub(crate) inboxes: Vec<flume::Sender<FillRequest>>,
    inbox_rx: Mutex<Vec<Option<flume::Receiver<FillRequest>>>>,
}

impl NodeCaches {
    /// The caching tables the components declared, for a node of `shards` shards whose cache
    /// inboxes hold `queue_depth` requests each (no inboxes when there are no caching tables).
    pub fn new(registry: &Registry, shards: usize, queue_depth: usize) -> NodeCaches {
        let tables: Vec<CacheEntry> = registry
            .components
            .iter()
            .enumerate()
            .flat_map(|(ci, c)| c.caches.iter().map(move |s| (ci, s)))
            .map(|(component, spec)| CacheEntry {
                component,
                agent: matches!(spec.source, Source::Http(_)).then(|| {
                    ureq::AgentBuilder::new()
                        .timeout(spec.timeout)
                        .max_idle_connections_per_host(spec.max_fetches)
                        .build()
                }),
                spec: spec.clone(),
                stats: CacheStats::default(),
            })
            .collect();
        let by_name = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.spec.table.clone(), i))
            .collect();
        let shards = if tables.is_empty() { 0 } else { shards };
        let (inboxes, inbox_rx): (Vec<_>, Vec<_>) = (0..shards)
            .map(|_| {
                let (tx, rx) = flume::bounded(queue_depth.max(1));
                (tx, Some(rx))
            })
            .unzip();
        NodeCaches {
            tables,
            by_name,
            inboxes,
            inbox_rx: Mutex::new(inbox_rx),
        }
    }

    /// The caching table of this name, if it is one.
    pub fn find(&self, table: &str) -> Option<usize> {
        if self.tables.is_empty() {
            return None;
        }
        self.by_name.get(table).copied()
    }

    /// Threads each shard's blocking pool needs: one for the shard's own blocking work, and
    /// one per origin call the HTTP caching tables may run at once (bounded).
    pub fn blocking_threads(&self) -> usize {
        let fetches: usize = self
            .tables
            .iter()
            .filter(|t| t.agent.is_some())
            .map(|t| t.spec.max_fetches)
            .sum();
        (1 + fetches).min(MAX_BLOCKING_THREADS)
    }

    /// Takes shard `s`'s cache inbox (once; `None` without caching tables).
    pub(crate) fn take_inbox(&self, s: usize) -> Option<flume::Receiver<FillRequest>> {
        self.inbox_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(s)
            .and_then(Option::take)
    }

    /// Every caching table's name and counters, as of now.
    pub fn counters(&self) -> Vec<(&str, [(&'static str, u64); 9])> {
        self.tables
            .iter()
            .map(|t| (t.spec.table.as_str(), t.stats.counters()))
            .collect()
    }

    /// The counters of every caching table as JSON for `/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .counters()
            .into_iter()
            .map(|(table, counters)| {
                let v = counters.iter().map(|(k, n)| (k.to_string(), (*n).into()));
                (table.to_string(), serde_json::Value::Object(v.collect()))
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

impl CacheStats {
    /// Every counter by name, as of now.
    pub fn counters(&self) -> [(&'static str, u64); 9] {
        let pairs: [(&str, &AtomicU64); 9] = [
            ("hits", &self.hits),
            ("misses", &self.misses),
            ("stale_served", &self.stale_served),
            ("origin_calls", &self.origin_calls),
            ("origin_errors", &self.origin_errors),
            ("timeouts", &self.timeouts),
            ("evicted", &self.evicted),
            ("busy", &self.busy),
            ("fills_discarded", &self.fills_discarded),
        ];
        pairs.map(|(name, c)| (name, c.load(Ordering::Relaxed)))
    }
}

/// Bumps a counter.
pub(crate) fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
