//! Query execution across shards: each shard runs its part on the partitions it owns (index
//! range scan or table scan, filter, sort, cut), and the shard that received the request fans
//! out over the mesh, merges the parts, and applies `limit()` and `select()`.

use super::mesh::{MeshMsg, ShardQuery, ShardRows};
use super::shard::Shard;
use crate::query::{self, compare_docs, IndexScan, Query};
use crate::storage::catalog::TableDef;
use crate::storage::shard_db::ShardDb;
use serde_json::Value;

/// Why a query failed.
#[derive(Debug)]
pub enum QueryFailure {
    /// The query itself is wrong (400).
    Bad(String),
    /// A shard could not take it now (503).
    Busy,
    /// Storage failed (500).
    Internal(String),
}

/// Rows a shard keeps before re-sorting and cutting (bounds memory for `limit()` queries).
fn keep_rows(q: &Query, cap: usize) -> usize {
    match &q.limit {
        Some(l) => l.end.map(|e| e.min(cap)).unwrap_or(cap),
        None => cap,
    }
}

/// Runs this shard's part of a query. `max_rows` bounds the rows returned.
pub async fn run_local(
    shard: &Shard,
    table: &str,
    raw: &str,
    max_rows: usize,
) -> Result<ShardRows, String> {
    let def = shard
        .table(table)
        .ok_or_else(|| format!("table {table} does not exist"))?;
    let q = query::parse_from_client(raw).map_err(|e| e.to_string())?;
    let docs = scan(shard, &def, &q, max_rows).await?;
    let truncated = docs.len() > max_rows;
    let rows = docs
        .into_iter()
        .take(max_rows)
        .map(|d| serde_json::to_vec(&d).unwrap_or_default())
        .collect();
    Ok(ShardRows { rows, truncated })
}

/// Matching documents of this shard, sorted; at most `max_rows + 1` (the extra one tells the
/// caller there were more).
async fn scan(
    shard: &Shard,
    def: &TableDef,
    q: &Query,
    max_rows: usize,
) -> Result<Vec<Value>, String> {
    let mut part = Part {
        shard,
        db: &shard.node.dbs[shard.id],
        def,
        q,
        keep: keep_rows(q, max_rows + 1).max(1),
        out: Vec::new(),
        seen: 0,
    };
    let is_indexed = |attr: &str| def.indexes.iter().any(|i| i == attr);
    let plan = q
        .filter
        .as_ref()
        .and_then(|f| query::plan_index(f, &is_indexed));
    match plan {
        Some(plan) => part.by_index(&plan).await?,
        None => part.scan_table().await?,
    }
    part.settle();
    Ok(part.out)
}

/// This shard's part of one query while it runs: the matches kept so far.
struct Part<'a> {
    shard: &'a Shard,
    db: &'a ShardDb,
    def: &'a TableDef,
    q: &'a Query,
    /// Rows kept (`keep_rows`, at least one).
    keep: usize,
    out: Vec<Value>,
    /// Candidates read so far (the shard yields every 256).
    seen: usize,
}

impl Part<'_> {
    /// Sorted, one row per record (a record read twice, through two index terms, is equal to
    /// itself and sorts next to itself), at most `keep`.
    fn settle(&mut self) {
        let (q, pk) = (self.q, self.def.primary_key.as_str());
        self.out.sort_by(|a, b| compare_docs(a, b, &q.sort, pk));
        self.out.dedup_by(|a, b| a.get(pk) == b.get(pk));
        self.out.truncate(self.keep);
    }

    /// Keeps `doc` if it passes the filter (settling now and then); true when it did.
    fn consider(&mut self, doc: Value) -> bool {
        if self.q.filter.as_ref().is_none_or(|f| f.matches(&doc)) {
            self.out.push(doc);
            if self.out.len() >= self.keep * 2 + 64 {
                self.settle();
            }
            return true;
        }
        false
    }

    /// The record `id` of the table, if this shard holds it and its body is JSON.
    fn read(&self, id: &str) -> Result<Option<Value>, String> {
        let (p, _) = self.shard.locate(&self.def.name, id);
        let key = crate::storage::keys::record_key(&self.def.name, p, id);
        Ok(self
            .db
            .get(&key)
            .map_err(|e| e.to_string())?
            .and_then(|rec| serde_json::from_slice::<Value>(rec.body()).ok()))
    }

    /// Counts one candidate read; every 256, lets the shard's other tasks run.
    async fn tick(&mut self) {
        self.seen += 1;
        if self.seen.is_multiple_of(256) {
            glommio::yield_if_needed().await;
        }
    }

    /// Reads the candidates the index plan finds.
    async fn by_index(&mut self, plan: &IndexScan) -> Result<(), String> {
        let prefix = crate::storage::keys::index_prefix(&self.def.name, &plan.attr);
        // Ordered by id (how unsorted rows come), the first `keep` matches are the answer and
        // the rest need not be read; that needs every candidate id first. Past
        // `http.max_index_ids` the ids are dropped and every candidate is read instead, so
        // memory stays bounded by the rows kept, whatever the range covers.
        if self.q.sort.is_empty() && plan.exact {
            return self.merge_exact(plan, &prefix).await;
        }
        match self.collect_ids(plan, &prefix).await? {
            Some(ids) => self.read_ids(ids).await,
            None => self.read_candidates(plan, &prefix).await,
        }
    }

    /// Every range is one value, whose ids come in id order: merge the ranges and stop at
    /// `keep` matches, reading no more candidates than that needs.
    async fn merge_exact(&mut self, plan: &IndexScan, prefix: &[u8]) -> Result<(), String> {
        let db = self.db;
        let mut iters: Vec<_> = plan
            .ranges
            .iter()
            .map(|(lo, hi)| db.index_ids(prefix, lo, hi))
            .collect();
        let mut heads = Vec::with_capacity(iters.len());
        for it in iters.iter_mut() {
            heads.push(it.next().transpose().map_err(|e| e.to_string())?);
        }
        let mut last: Option<String> = None;
        let mut accepted = 0usize;
        while accepted < self.keep {
            let next = (0..heads.len())
                .filter(|i| heads[*i].is_some())
                .min_by(|a, b| heads[*a].cmp(&heads[*b]));
            let Some(i) = next else {
                break;
            };
            let id = heads[i].take().unwrap_or_default();
            heads[i] = iters[i].next().transpose().map_err(|e| e.to_string())?;
            // A record with several matching values (an array) is in several ranges.
            if last.as_ref() == Some(&id) {
                continue;
            }
            if let Some(doc) = self.read(&id)? {
                accepted += usize::from(self.consider(doc));
            }
            last = Some(id);
            self.tick().await;
        }
        Ok(())
    }

    /// Every candidate id of the plan's ranges; `None` past `http.max_index_ids` of them.
    async fn collect_ids(
        &self,
        plan: &IndexScan,
        prefix: &[u8],
    ) -> Result<Option<Vec<String>>, String> {
        let max_ids = self.shard.config().http.max_index_ids;
        let mut ids = Vec::new();
        for (lo, hi) in &plan.ranges {
            for id in self.db.index_ids(prefix, lo, hi) {
                ids.push(id.map_err(|e| e.to_string())?);
                if ids.len() > max_ids {
                    return Ok(None);
                }
                if ids.len().is_multiple_of(4096) {
                    glommio::yield_if_needed().await;
                }
            }
        }
        Ok(Some(ids))
    }

    /// Reads the candidates in id order; without `sort()`, only until `keep` of them match.
    async fn read_ids(&mut self, mut ids: Vec<String>) -> Result<(), String> {
        ids.sort_unstable();
        ids.dedup();
        let stop_after = self.q.sort.is_empty().then_some(self.keep);
        let mut accepted = 0usize;
        for id in ids {
            if stop_after.is_some_and(|n| accepted >= n) {
                break;
            }
            if let Some(doc) = self.read(&id)? {
                accepted += usize::from(self.consider(doc));
            }
            self.tick().await;
        }
        Ok(())
    }

    /// Reads every candidate straight from the index, ids and all (too many to gather).
    async fn read_candidates(&mut self, plan: &IndexScan, prefix: &[u8]) -> Result<(), String> {
        let db = self.db;
        for (lo, hi) in &plan.ranges {
            for id in db.index_ids(prefix, lo, hi) {
                if let Some(doc) = self.read(&id.map_err(|e| e.to_string())?)? {
                    self.consider(doc);
                }
                self.tick().await;
            }
        }
        Ok(())
    }

    /// No index applies: reads the whole table.
    async fn scan_table(&mut self) -> Result<(), String> {
        let (db, def) = (self.db, self.def);
        for item in db.scan_table(&def.name) {
            let (_, _, value) = item.map_err(|e| e.to_string())?;
            if let Some(env) = crate::storage::envelope::Envelope::decode(&value) {
                if let Ok(doc) = serde_json::from_slice::<Value>(env.body) {
                    self.consider(doc);
                }
            }
            self.tick().await;
        }
        Ok(())
    }
}

/// Runs a query on every shard and merges: the rows to return, after limit and select.
pub async fn run(shard: &Shard, table: &str, raw: &str) -> Result<Vec<Value>, QueryFailure> {
    let q = query::parse_from_client(raw).map_err(|e| QueryFailure::Bad(e.to_string()))?;
    let def = shard
        .table(table)
        .ok_or_else(|| QueryFailure::Bad(format!("table {table} does not exist")))?;
    let cap = shard.config().http.max_query_rows;
    let per_shard = keep_rows(&q, cap + 1);
    let mut waits = Vec::new();
    for (s, inbox) in shard.node.inboxes.iter().enumerate() {
        if s == shard.id {
            continue;
        }
        let (tx, rx) = flume::bounded(1);
        let req = ShardQuery {
            table: table.to_string(),
            query: raw.to_string(),
            max_rows: per_shard as u64,
        };
        inbox
            .try_send(MeshMsg::Query { req, reply: tx })
            .map_err(|_| QueryFailure::Busy)?;
        waits.push(rx);
    }
    let mut rows = scan(shard, &def, &q, per_shard)
        .await
        .map_err(QueryFailure::Internal)?;
    let mut truncated = rows.len() > per_shard;
    for rx in waits {
        let part: ShardRows = rx
            .recv_async()
            .await
            .map_err(|_| QueryFailure::Internal("a shard stopped during the query".into()))?
            .map_err(QueryFailure::Internal)?;
        truncated |= part.truncated;
        for r in part.rows {
            if let Ok(v) = serde_json::from_slice(&r) {
                rows.push(v);
            }
        }
    }
    let pk = def.primary_key.as_str();
    rows.sort_by(|a, b| compare_docs(a, b, &q.sort, pk));
    let (start, end) = match &q.limit {
        Some(l) => (l.start, l.end),
        None => (0, None),
    };
    if end.is_none() && (truncated || rows.len() > cap) {
        return Err(QueryFailure::Bad(format!(
            "the query matches more than {cap} rows (`http.max_query_rows`); add limit(start,end) to page through them"
        )));
    }
    let end = end.unwrap_or(rows.len()).min(rows.len());
    let mut rows: Vec<Value> = if start < end {
        rows.drain(start..end).collect()
    } else {
        Vec::new()
    };
    if let Some(sel) = &q.select {
        rows = rows.iter().map(|r| query::project(r, sel)).collect();
    }
    Ok(rows)
}
