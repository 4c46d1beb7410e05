//! REST on tables, Harper-compatible: `GET/HEAD/PUT/PATCH/DELETE /{Table}/{id}`,
//! `POST /{Table}/`, `GET|DELETE /{Table}/?query`, `GET /{Table}` (description).
//! Reads go straight to the owning shard's storage; writes go to the owner's writer.

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::router::not_allowed;
use crate::runtime::query::{self, QueryFailure};
use crate::runtime::shard::Shard;
use crate::storage::catalog::TableDef;
use crate::storage::hlc::Version;
use crate::storage::keys;
use crate::storage::writer::{Precondition, WriteOp, WriteOutcome, WriteRequest, WriterMsg};
use serde_json::Value;
use std::rc::Rc;

/// `/{Table}/{id}`.
pub async fn record(
    shard: &Rc<Shard>,
    def: &std::sync::Arc<TableDef>,
    id: &str,
    req: &Request<'_>,
) -> Response {
    match req.method {
        Method::Get | Method::Head => get(shard, def, id, req),
        Method::Put => {
            let body = match json_object(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let body = match with_primary_key(body, &def.primary_key, id) {
                Ok(b) => b,
                Err(r) => return r,
            };
            write(shard, def, id, WriteOp::Put { body }, req).await
        }
        Method::Patch => {
            let fields = match json_object(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if let Err(r) = check_primary_key(&fields, &def.primary_key, id) {
                return r;
            }
            let fields = serde_json::to_vec(&fields).unwrap_or_default();
            write(shard, def, id, WriteOp::Patch { fields }, req).await
        }
        Method::Delete => write(shard, def, id, WriteOp::Delete, req).await,
        m => not_allowed(m, "GET, HEAD, PUT, PATCH, DELETE"),
    }
}

fn get(shard: &Shard, def: &TableDef, id: &str, req: &Request<'_>) -> Response {
    let (p, owner) = shard.locate(&def.name, id);
    let key = keys::record_key(&def.name, p, id);
    match shard.node.dbs[owner].get(&key) {
        Err(e) => problem(500, &format!("storage read failed: {e}")),
        Ok(None) => problem(404, &format!("no record {id:?} in table {:?}", def.name)),
        Ok(Some(rec)) => {
            if let Some(inm) = req.if_none_match {
                if etag_matches(inm, rec.version) {
                    let mut r = Response::new(304);
                    r.etag = Some(rec.version);
                    return r;
                }
            }
            let mut r = Response::json(200, rec.body().to_vec());
            r.etag = Some(rec.version);
            r
        }
    }
}

/// True if an `If-None-Match`/`If-Match` list names this version (or is `*`).
fn etag_matches(list: &str, v: Version) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || Version::parse_etag(t.trim_start_matches("W/")) == Some(v)
    })
}

async fn write(
    shard: &Rc<Shard>,
    def: &std::sync::Arc<TableDef>,
    id: &str,
    op: WriteOp,
    req: &Request<'_>,
) -> Response {
    let precondition = match (req.if_match, req.if_none_match) {
        (Some(m), _) => match Version::parse_etag(m) {
            Some(v) => Precondition::IfMatch {
                clock: v.clock,
                node: v.node,
            },
            None if m.trim() == "*" => Precondition::None,
            None => {
                return problem(
                    412,
                    &format!("If-Match {m:?} names no version this server issued"),
                )
            }
        },
        (None, Some(n)) if n.trim() == "*" => Precondition::IfAbsent,
        _ => Precondition::None,
    };
    let is_delete = matches!(op, WriteOp::Delete);
    let must_exist = req.if_match.is_some_and(|m| m.trim() == "*");
    if must_exist && get_version(shard, def, id).is_none() {
        return problem(412, "If-Match: * but the record does not exist");
    }
    match submit(shard, def, id, op, precondition).await {
        Ok(WriteOutcome::Written { version, created }) => {
            let mut r = Response::new(if created && !is_delete { 201 } else { 204 });
            r.etag = Some(version);
            if created && !is_delete {
                r.location = Some(format!("/{}/{}", def.name, id));
            }
            r
        }
        Ok(WriteOutcome::NotFound) => {
            problem(404, &format!("no record {id:?} in table {:?}", def.name))
        }
        Ok(WriteOutcome::Exists) => problem(
            409,
            &format!("record {id:?} already exists in table {:?}", def.name),
        ),
        Ok(WriteOutcome::PreconditionFailed) => {
            let mut r = problem(
                412,
                "the record's current version does not match the precondition",
            );
            r.etag = get_version(shard, def, id);
            r
        }
        Ok(WriteOutcome::Invalid(m)) => problem(400, &m),
        Ok(WriteOutcome::Failed(m)) => problem(500, &m),
        Err(r) => r,
    }
}

fn get_version(shard: &Shard, def: &TableDef, id: &str) -> Option<Version> {
    let (p, owner) = shard.locate(&def.name, id);
    shard.node.dbs[owner]
        .get(&keys::record_key(&def.name, p, id))
        .ok()
        .flatten()
        .map(|r| r.version)
}

/// Sends a write to the owner's writer and waits for its answer. A full queue is a 503.
pub async fn submit(
    shard: &Shard,
    def: &std::sync::Arc<TableDef>,
    id: &str,
    op: WriteOp,
    precondition: Precondition,
) -> Result<WriteOutcome, Response> {
    let (partition, owner) = shard.locate(&def.name, id);
    let (tx, rx) = flume::bounded(1);
    let req = WriteRequest {
        table: def.name.clone(),
        id: id.to_string(),
        partition,
        op,
        precondition,
    };
    match shard.node.writers[owner].try_send(WriterMsg::Write {
        req,
        table: def.clone(),
        reply: tx,
    }) {
        Ok(()) => {}
        Err(flume::TrySendError::Full(_)) => {
            let mut r = problem(503, "the owning shard's write queue is full; retry shortly");
            r.retry_after = Some(1);
            return Err(r);
        }
        Err(flume::TrySendError::Disconnected(_)) => return Err(problem(503, "shutting down")),
    }
    rx.recv_async()
        .await
        .map_err(|_| problem(503, "the writer stopped before answering"))
}

/// `/{Table}/`: query (GET/HEAD), create with a generated id (POST), delete by query (DELETE).
pub async fn collection(
    shard: &Rc<Shard>,
    def: &std::sync::Arc<TableDef>,
    req: &Request<'_>,
) -> Response {
    match req.method {
        Method::Get | Method::Head => {
            match query::run(shard, &def.name, req.query.unwrap_or("")).await {
                Ok(rows) => Response::json(200, serde_json::to_vec(&rows).unwrap_or_default()),
                Err(f) => query_failure(f),
            }
        }
        Method::Post => {
            let mut body = match json_object(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let id = match body.get(&def.primary_key) {
                None => {
                    let id = new_id(shard);
                    body.insert(def.primary_key.clone(), Value::String(id.clone()));
                    id
                }
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(_) => {
                    return problem(
                        400,
                        &format!(
                            "primary key {:?} must be a string or a number",
                            def.primary_key
                        ),
                    )
                }
            };
            if id.is_empty() || id.len() > super::router::MAX_ID_BYTES {
                return problem(400, "primary key must be 1 to 1024 bytes");
            }
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let mut r = write(
                shard,
                def,
                &id,
                WriteOp::Create {
                    body: bytes.clone(),
                },
                req,
            )
            .await;
            if r.status == 201 {
                r.body = bytes;
            }
            r
        }
        Method::Delete => {
            let Some(q) = req.query.filter(|q| !q.is_empty()) else {
                return problem(400, "DELETE /{Table}/ needs a query (e.g. ?status=old); drop a table with DELETE /admin/tables/{name}");
            };
            let rows = match query::run(shard, &def.name, q).await {
                Ok(rows) => rows,
                Err(f) => return query_failure(f),
            };
            let mut deleted = 0u64;
            for row in rows {
                let id = match row.get(&def.primary_key) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => continue,
                };
                match submit(shard, def, &id, WriteOp::Delete, Precondition::None).await {
                    Ok(WriteOutcome::Written { .. }) => deleted += 1,
                    Ok(_) => {}
                    Err(r) => return r,
                }
            }
            Response::json(200, format!("{{\"deleted\":{deleted}}}").into_bytes())
        }
        m => not_allowed(m, "GET, HEAD, POST, DELETE"),
    }
}

/// `GET /{Table}`: the table's definition and record count.
pub fn describe(shard: &Shard, def: &TableDef, req: &Request<'_>) -> Response {
    if !matches!(req.method, Method::Get | Method::Head) {
        return not_allowed(req.method, "GET, HEAD");
    }
    let body = serde_json::json!({
        "name": def.name,
        "primary_key": def.primary_key,
        "indexes": def.indexes,
    });
    let _ = shard;
    Response::json(200, serde_json::to_vec(&body).unwrap_or_default())
}

fn query_failure(f: QueryFailure) -> Response {
    match f {
        QueryFailure::Bad(m) => problem(400, &m),
        QueryFailure::Busy => {
            let mut r = problem(503, "a shard's queue is full; retry shortly");
            r.retry_after = Some(1);
            r
        }
        QueryFailure::Internal(m) => problem(500, &m),
    }
}

/// The request body as a JSON object, or the problem response to send.
fn json_object(req: &Request<'_>) -> Result<serde_json::Map<String, Value>, Response> {
    if let Some(ct) = req.content_type {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(problem(
                415,
                &format!("Content-Type {ct:?} is not supported; send application/json"),
            ));
        }
    }
    if req.body.is_empty() {
        return Err(problem(400, "a JSON object body is required"));
    }
    match serde_json::from_slice::<Value>(req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(problem(400, "the body must be a JSON object")),
        Err(e) => Err(problem(
            400,
            &format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )),
    }
}

fn check_primary_key(
    body: &serde_json::Map<String, Value>,
    pk: &str,
    id: &str,
) -> Result<(), Response> {
    match body.get(pk) {
        None => Ok(()),
        Some(Value::String(s)) if s == id => Ok(()),
        Some(Value::Number(n)) if n.to_string() == id => Ok(()),
        Some(other) => Err(problem(
            400,
            &format!("the body's {pk:?} is {other} but the URL names record {id:?}"),
        )),
    }
}

/// Normalized document bytes with the primary key set to the URL's id.
fn with_primary_key(
    mut body: serde_json::Map<String, Value>,
    pk: &str,
    id: &str,
) -> Result<Vec<u8>, Response> {
    check_primary_key(&body, pk, id)?;
    if !body.contains_key(pk) {
        body.insert(pk.to_string(), Value::String(id.to_string()));
    }
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

/// A new random id in UUID v4 form.
fn new_id(shard: &Shard) -> String {
    let next = || {
        // splitmix64 over a per-shard state seeded at start.
        let mut s = shard.id_counter.get();
        if s == 0 {
            s = crate::storage::now_millis()
                ^ ((shard.id as u64) << 48)
                ^ (std::process::id() as u64) << 20
                ^ (shard as *const Shard as u64);
        }
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        shard.id_counter.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (a, b) = (next(), next());
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}
