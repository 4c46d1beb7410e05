//! REST on tables, Harper-compatible: `GET/HEAD/PUT/PATCH/DELETE /{Table}/{id}`,
//! `POST /{Table}/`, `GET|DELETE /{Table}/?query`, `GET /{Table}` (description).
//! Reads go straight to the owning shard's storage; writes go to the owner's writer.
//! The answers have Harper's shapes where a Harper client reads them (`docs/harper.md`):
//! DELETE answers `true`, POST the new id as a JSON string, `?select()` applies to a record.
//! Records and query results take the format `Accept` asks for; bodies may be JSON, CBOR or
//! MessagePack (`negotiate`, `encode`, `decode`).

#![allow(clippy::result_large_err)] // handlers return their ready-made error response

use super::component::Wrapped;
use super::negotiate::{self, Format};
use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::router::not_allowed;
use super::shard::HttpShard;
use crate::runtime::query::{self, QueryFailure};
use crate::runtime::records::{self, Doc, Precondition, RecordError};
use crate::storage::catalog::TableDef;
use crate::storage::hlc::Version;
use crate::storage::record_id;
use serde_json::Value;
use std::rc::Rc;
use std::sync::Arc;

/// `/{Table}/{id}`.
pub async fn record(
    shard: &Rc<HttpShard>,
    def: &Arc<TableDef>,
    id: &str,
    req: &Request<'_>,
) -> Response {
    let precondition = match precondition(req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let wrapped = Wrapped::of(shard, &def.name);
    let body = |req: &Request<'_>| -> Result<Doc, Response> {
        let mut doc = json_object(shard, req)?;
        if let Some(w) = &wrapped {
            w.write(req.method, Some(id), &mut doc)?;
        }
        Ok(doc)
    };
    let result = match req.method {
        Method::Get | Method::Head => {
            let cached = super::cache::get(shard, def, id, req, wrapped.as_ref()).await;
            return cached.unwrap_or_else(|| get(shard, def, id, req, wrapped.as_ref()));
        }
        Method::Put => match body(req) {
            Ok(body) => records::put(shard, def, id, body, precondition).await,
            Err(r) => return r,
        },
        Method::Patch => match body(req) {
            Ok(fields) => records::patch(shard, def, id, fields, precondition).await,
            Err(r) => return r,
        },
        Method::Delete => records::delete(shard, def, id, precondition).await,
        m => return not_allowed(m, "GET, HEAD, PUT, PATCH, DELETE"),
    };
    match result {
        Ok(w) if req.method == Method::Delete => {
            let mut r = Response::json(200, b"true".to_vec());
            r.etag = Some(w.version);
            r
        }
        Ok(w) => {
            let mut r = Response::new(if w.created { 201 } else { 204 });
            r.etag = Some(w.version);
            if w.created {
                r.location = Some(location(def, id));
            }
            r
        }
        // Deleting what is not there is done (Harper's answer), unless a precondition asked.
        Err(RecordError::NotFound)
            if req.method == Method::Delete && matches!(precondition, Precondition::None) =>
        {
            Response::json(200, b"true".to_vec())
        }
        Err(e) => record_failure(shard, def, id, e),
    }
}

/// Where record `id` of `def` is: `/{Table}/{id}`, the id percent-encoded.
fn location(def: &TableDef, id: &str) -> String {
    let table = crate::query::percent::encode_segment(&def.name);
    format!("/{table}/{}", crate::query::percent::encode_segment(id))
}

fn get(
    shard: &HttpShard,
    def: &TableDef,
    id: &str,
    req: &Request<'_>,
    wrapped: Option<&Wrapped>,
) -> Response {
    match records::get(shard, def, id) {
        Err(e) => record_failure(shard, def, id, e),
        Ok(None) => problem(404, &format!("no record {id:?} in table {:?}", def.name)),
        Ok(Some(rec)) => match selected(req) {
            Ok(None) => send_record(Some(rec.version), rec.body(), req, wrapped),
            Ok(Some(select)) => send_selected(rec.version, rec.body(), &select, req, wrapped),
            Err(r) => r,
        },
    }
}

/// The `select()` of a record read (`/{Table}/{id}?select(a,b)`); other query terms are
/// refused there (they filter collections).
fn selected(req: &Request<'_>) -> Result<Option<crate::query::parse::Select>, Response> {
    let Some(q) = req.query.filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    let parsed = crate::query::parse_from_client(q).map_err(|e| problem(400, &e.to_string()))?;
    if parsed.filter.is_some() || !parsed.sort.is_empty() || parsed.limit.is_some() {
        return Err(problem(
            400,
            "a record read takes only select(); conditions, sort() and limit() apply to /{Table}/?…",
        ));
    }
    Ok(parsed.select)
}

/// A record's selected attributes: an object of them, or one bare value (`select(a)`).
fn send_selected(
    version: Version,
    body: &[u8],
    select: &crate::query::parse::Select,
    req: &Request<'_>,
    wrapped: Option<&Wrapped>,
) -> Response {
    let full = send_record(Some(version), body, req, wrapped);
    if full.status != 200 {
        return full;
    }
    match serde_json::from_slice::<Value>(&full.body) {
        Ok(doc) => {
            let mut r = json_response(200, &crate::query::eval::project(&doc, select));
            r.etag = Some(version);
            r
        }
        Err(e) => problem(500, &format!("stored record is not JSON: {e}")),
    }
}

/// The answer that sends a record: 304 when `If-None-Match` names its version, else its body
/// as the table's wrapper shows it, with its version (if stored) as the ETag.
pub fn send_record(
    version: Option<Version>,
    body: &[u8],
    req: &Request<'_>,
    wrapped: Option<&Wrapped>,
) -> Response {
    let format = match answer_format(req) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let (Some(inm), Some(v)) = (req.if_none_match, version) {
        if etag_matches(inm, v) {
            let mut r = Response::new(304);
            r.etag = Some(v);
            r.vary("Accept");
            return r;
        }
    }
    let body = match wrapped.map(|w| w.read(body)) {
        None => body.to_vec(),
        Some(Ok(b)) => b,
        Some(Err(r)) => return r,
    };
    let mut r = super::encode::json_bytes(200, format, body);
    r.etag = version;
    r
}

/// The format `Accept` asks for, or the 406 to send.
fn answer_format(req: &Request<'_>) -> Result<Format, Response> {
    negotiate::answer_format(req.accept)
        .ok_or_else(|| super::encode::not_acceptable(req.accept.unwrap_or("")))
}

/// True if an `If-None-Match`/`If-Match` list names this version (or is `*`).
fn etag_matches(list: &str, v: Version) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || Version::parse_etag(t.trim_start_matches("W/")) == Some(v)
    })
}

/// The precondition of a write: `If-Match` with a version this server issued, `If-Match: *`
/// (the record must exist), `If-None-Match: *` (it must not).
fn precondition(req: &Request<'_>) -> Result<Precondition, Response> {
    match (
        req.if_match.map(str::trim),
        req.if_none_match.map(str::trim),
    ) {
        (Some("*"), _) => Ok(Precondition::IfExists),
        (Some(m), _) => match Version::parse_etag(m) {
            Some(v) => Ok(Precondition::IfMatch {
                clock: v.clock,
                node: v.node,
            }),
            None => Err(problem(
                412,
                &format!("If-Match {m:?} names no version this server issued"),
            )),
        },
        (None, Some("*")) => Ok(Precondition::IfAbsent),
        _ => Ok(Precondition::None),
    }
}

/// The answer to a record operation that did not happen.
fn record_failure(shard: &HttpShard, def: &TableDef, id: &str, e: RecordError) -> Response {
    match e {
        RecordError::NotFound => problem(404, &format!("no record {id:?} in table {:?}", def.name)),
        RecordError::Exists => problem(
            409,
            &format!("record {id:?} already exists in table {:?}", def.name),
        ),
        RecordError::PreconditionFailed => {
            let mut r = problem(412, &e.to_string());
            r.etag = records::version_of(shard, def, id);
            r
        }
        RecordError::Invalid(m) => problem(400, &m),
        RecordError::Rejected { status, message } => problem(status, &message),
        RecordError::Storage(m) => problem(500, &m),
        RecordError::Busy => {
            let mut r = problem(503, "the owning shard's write queue is full; retry shortly");
            r.retry_after = Some(1);
            r
        }
        RecordError::Stopping => problem(503, "shutting down"),
    }
}

/// `/{Table}/`: query (GET/HEAD), create with a generated id (POST), delete by query (DELETE).
pub async fn collection(shard: &Rc<HttpShard>, def: &Arc<TableDef>, req: &Request<'_>) -> Response {
    let wrapped = Wrapped::of(shard, &def.name);
    match req.method {
        Method::Get | Method::Head => {
            let format = match answer_format(req) {
                Ok(f) => f,
                Err(r) => return r,
            };
            match query::run(shard, &def.name, req.query.unwrap_or("")).await {
                Ok(mut rows) => {
                    if let Some(w) = &wrapped {
                        rows.iter_mut().for_each(|r| w.read_row(r));
                    }
                    super::encode::value(200, format, &Value::Array(rows))
                }
                Err(f) => query_failure(f),
            }
        }
        Method::Post => create(shard, def, req, wrapped.as_ref()).await,
        Method::Delete => delete_by_query(shard, def, req).await,
        m => not_allowed(m, "GET, HEAD, POST, DELETE"),
    }
}

/// `POST /{Table}/`: creates a record with the body's id or a new one; answers the id as a
/// JSON string (Harper's answer) and where the record is.
async fn create(
    shard: &Rc<HttpShard>,
    def: &Arc<TableDef>,
    req: &Request<'_>,
    wrapped: Option<&Wrapped>,
) -> Response {
    let mut body = match json_object(shard, req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let named = records::body_id(&body, &def.primary_key).ok().flatten();
    if let Some(w) = wrapped {
        if let Err(r) = w.write(req.method, named.as_deref(), &mut body) {
            return r;
        }
    }
    match records::create(shard, def, body).await {
        Ok((id, _stored, w)) => {
            let mut r = json_response(201, &id);
            r.etag = Some(w.version);
            r.location = Some(location(def, &id));
            r
        }
        Err(e) => record_failure(shard, def, named.as_deref().unwrap_or(""), e),
    }
}

/// `DELETE /{Table}/?query`: deletes every matching record; answers `true` (Harper's
/// answer) and how many went in `X-Records-Deleted`.
async fn delete_by_query(
    shard: &Rc<HttpShard>,
    def: &Arc<TableDef>,
    req: &Request<'_>,
) -> Response {
    let Some(q) = req.query.filter(|q| !q.is_empty()) else {
        return problem(400, "DELETE /{Table}/ needs a query (e.g. ?status=old); drop a table with DELETE /admin/tables/{name}");
    };
    let rows = match query::run(shard, &def.name, q).await {
        Ok(rows) => rows,
        Err(f) => return query_failure(f),
    };
    let mut deleted = 0u64;
    for row in rows {
        let Some(id) = row.get(&def.primary_key).and_then(record_id::id_text) else {
            continue;
        };
        match records::delete(shard, def, &id, Precondition::None).await {
            Ok(_) => deleted += 1,
            Err(RecordError::NotFound) => {}
            Err(e) => return record_failure(shard, def, &id, e),
        }
    }
    let mut r = Response::json(200, b"true".to_vec());
    r.extra.push(format!("X-Records-Deleted: {deleted}"));
    r
}

/// `GET /{Table}`: the table's definition.
pub fn describe(def: &TableDef, req: &Request<'_>) -> Response {
    if !matches!(req.method, Method::Get | Method::Head) {
        return not_allowed(req.method, "GET, HEAD");
    }
    let attributes = describe_attributes(def);
    json_response(
        200,
        &serde_json::json!({
            "records": "./",
            "name": def.name,
            "database": "data",
            "attributes": attributes,
            "primary_key": def.primary_key,
            "indexes": def.indexes,
        }),
    )
}

/// The attributes a table's description lists (Harper's shape): the primary key, then the
/// indexed and the typed attributes, with their declared types (`Any` if none).
fn describe_attributes(def: &TableDef) -> Vec<Value> {
    let mut names = vec![&def.primary_key];
    for name in def.indexes.iter().chain(def.attributes.keys()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let described = |name: &String| {
        let ty = def.attributes.get(name);
        let mut a = serde_json::json!({
            "name": name,
            "attribute": name,
            "type": ty.map_or(if *name == def.primary_key { "ID" } else { "Any" }, |t| t.kind.name()),
        });
        if *name == def.primary_key {
            a["isPrimaryKey"] = Value::Bool(true);
        }
        if def.indexes.contains(name) {
            a["indexed"] = serde_json::json!({});
        }
        if ty.is_some_and(|t| t.required) {
            a["nullable"] = Value::Bool(false);
        }
        a
    };
    names.into_iter().map(described).collect()
}

/// A JSON answer (serializing a `Value` or a definition cannot fail short of a bug: it is
/// logged and answered 500).
pub fn json_response<T: serde::Serialize + ?Sized>(status: u16, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => Response::json(status, bytes),
        Err(e) => {
            tracing::error!("cannot encode a JSON answer: {e}");
            problem(500, "cannot encode the answer")
        }
    }
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

/// The request body (JSON, CBOR or MessagePack) as a JSON object, or the problem response
/// to send.
fn json_object(shard: &HttpShard, req: &Request<'_>) -> Result<Doc, Response> {
    let Some(format) = negotiate::body_format(req.content_type) else {
        let ct = req.content_type.unwrap_or("");
        let detail = format!(
            "Content-Type {ct:?} is not supported; send one of {}",
            negotiate::BODY_TYPES
        );
        return Err(problem(415, &detail));
    };
    if req.body.is_empty() {
        return Err(problem(400, "a JSON object body is required"));
    }
    if format != Format::Json {
        let limit = shard.config().http.max_body_bytes;
        return super::decode::object(format, req.body, limit).map_err(|(s, m)| problem(s, &m));
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
