//! Query execution across shards: each shard runs its part on the partitions it owns (index
//! range scan or table scan, filter, sort, cut), and the shard that received the request fans
//! out over the mesh, merges the parts, and applies `limit()` and `select()`.

use super::mesh::{MeshMsg, ShardQuery, ShardRows};
use super::shard::Shard;
use crate::query::{self, compare_docs, Query};
use serde_json::Value;
use std::cmp::Ordering;

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
    let q = query::parse(raw).map_err(|e| e.to_string())?;
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
    def: &crate::storage::catalog::TableDef,
    q: &Query,
    max_rows: usize,
) -> Result<Vec<Value>, String> {
    let db = &shard.node.dbs[shard.id];
    let keep = keep_rows(q, max_rows + 1).max(1);
    let pk = def.primary_key.as_str();
    let cmp = |a: &Value, b: &Value| -> Ordering { compare_docs(a, b, &q.sort, pk) };
    let mut out: Vec<Value> = Vec::new();
    // Sorted, one row per record (a record read twice, through two index terms, is equal to
    // itself and sorts next to itself), at most `keep`.
    let settle = |out: &mut Vec<Value>| {
        out.sort_by(cmp);
        out.dedup_by(|a, b| a.get(pk) == b.get(pk));
        out.truncate(keep);
    };
    let consider = |doc: Value, out: &mut Vec<Value>| -> bool {
        if q.filter.as_ref().is_none_or(|f| f.matches(&doc)) {
            out.push(doc);
            if out.len() >= keep * 2 + 64 {
                settle(out);
            }
            return true;
        }
        false
    };
    let is_indexed = |attr: &str| def.indexes.iter().any(|i| i == attr);
    let plan = q
        .filter
        .as_ref()
        .and_then(|f| query::plan_index(f, &is_indexed));
    let mut seen = 0usize;
    if let Some(plan) = plan {
        let prefix = crate::storage::keys::index_prefix(&def.name, &plan.attr);
        // Ordered by id (how unsorted rows come), the first `keep` matches are the answer and
        // the rest need not be read; that needs every candidate id first. Past
        // `http.max_index_ids` the ids are dropped and every candidate is read instead, so
        // memory stays bounded by the rows kept, whatever the range covers.
        let max_ids = shard.config().http.max_index_ids;
        let mut ids = Vec::new();
        let mut too_many = false;
        let read = |id: &str| -> Result<Option<Value>, String> {
            let (p, _) = shard.locate(&def.name, id);
            let key = crate::storage::keys::record_key(&def.name, p, id);
            Ok(db
                .get(&key)
                .map_err(|e| e.to_string())?
                .and_then(|rec| serde_json::from_slice::<Value>(rec.body()).ok()))
        };
        if q.sort.is_empty() && plan.exact {
            // Every range is one value, whose ids come in id order: merge the ranges and stop
            // at `keep` matches, reading no more candidates than that needs.
            let mut iters: Vec<_> = plan
                .ranges
                .iter()
                .map(|(lo, hi)| db.index_ids(&prefix, lo, hi))
                .collect();
            let mut heads = Vec::with_capacity(iters.len());
            for it in iters.iter_mut() {
                heads.push(it.next().transpose().map_err(|e| e.to_string())?);
            }
            let mut last: Option<String> = None;
            let mut accepted = 0usize;
            while accepted < keep {
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
                if let Some(doc) = read(&id)? {
                    accepted += usize::from(consider(doc, &mut out));
                }
                last = Some(id);
                seen += 1;
                if seen.is_multiple_of(256) {
                    glommio::yield_if_needed().await;
                }
            }
            settle(&mut out);
            return Ok(out);
        }
        'collect: for (lo, hi) in &plan.ranges {
            for id in db.index_ids(&prefix, lo, hi) {
                ids.push(id.map_err(|e| e.to_string())?);
                if ids.len() > max_ids {
                    too_many = true;
                    break 'collect;
                }
                if ids.len().is_multiple_of(4096) {
                    glommio::yield_if_needed().await;
                }
            }
        }
        if too_many {
            drop(ids);
            for (lo, hi) in &plan.ranges {
                for id in db.index_ids(&prefix, lo, hi) {
                    if let Some(doc) = read(&id.map_err(|e| e.to_string())?)? {
                        consider(doc, &mut out);
                    }
                    seen += 1;
                    if seen.is_multiple_of(256) {
                        glommio::yield_if_needed().await;
                    }
                }
            }
        } else {
            ids.sort_unstable();
            ids.dedup();
            let stop_after = q.sort.is_empty().then_some(keep);
            let mut accepted = 0usize;
            for id in ids {
                if stop_after.is_some_and(|n| accepted >= n) {
                    break;
                }
                if let Some(doc) = read(&id)? {
                    accepted += usize::from(consider(doc, &mut out));
                }
                seen += 1;
                if seen.is_multiple_of(256) {
                    glommio::yield_if_needed().await;
                }
            }
        }
    } else {
        for item in db.scan_table(&def.name) {
            let (_, _, value) = item.map_err(|e| e.to_string())?;
            if let Some(env) = crate::storage::envelope::Envelope::decode(&value) {
                if let Ok(doc) = serde_json::from_slice::<Value>(env.body) {
                    consider(doc, &mut out);
                }
            }
            seen += 1;
            if seen.is_multiple_of(256) {
                glommio::yield_if_needed().await;
            }
        }
    }
    settle(&mut out);
    Ok(out)
}

/// Runs a query on every shard and merges: the rows to return, after limit and select.
pub async fn run(shard: &Shard, table: &str, raw: &str) -> Result<Vec<Value>, QueryFailure> {
    let q = query::parse(raw).map_err(|e| QueryFailure::Bad(e.to_string()))?;
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
