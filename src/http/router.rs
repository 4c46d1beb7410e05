//! Routes a parsed request to its handler: `/health`, `/status`, `/metrics`, `/openapi`,
//! `/auth/…`, `/admin/tables…`, `/admin/users…`, `/admin/roles…`, `/admin/backup`, the admin
//! page (`/admin/`, its files and `/admin/live`), then components' routes, then static files,
//! and `/{Table}`, `/{Table}/`, `/{Table}/{id}` for REST.

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::shard::HttpShard;
use std::borrow::Cow;
use std::rc::Rc;

/// What a request leads to.
pub enum Routed {
    Respond(Response),
    /// A component asked to stream a table or record: the connection leaves HTTP.
    Stream(super::realtime::Stream),
}

/// Routes a request: the node's own paths, then components' routes, then tables. The flag
/// says whether a component answered (metrics count those apart).
pub async fn handle(shard: &Rc<HttpShard>, req: &Request<'_>) -> (Routed, bool) {
    if req.path == "/admin/live" {
        return (super::admin_page::live::open(shard, req), false);
    }
    if let Some(routed) = node_path(shard, req).await {
        return (Routed::Respond(routed), false);
    }
    if let Some(routed) = super::component::serve(shard, req).await {
        return (routed, true);
    }
    if let Some(file) = shard.statics.answer(req) {
        return (Routed::Respond(file), false);
    }
    (Routed::Respond(tables(shard, req).await), false)
}

/// `/health`, `/status`, `/metrics`, `/openapi`, `/cluster/digest`, `/auth/…`, `/admin/…`.
async fn node_path(shard: &Rc<HttpShard>, req: &Request<'_>) -> Option<Response> {
    let path = req.path;
    match path {
        "/health" => return Some(super::status::health(shard)),
        "/status" => return Some(super::status::status(shard)),
        "/metrics" => return Some(super::metrics::serve(shard).await),
        "/openapi" => return Some(super::openapi::document(shard, req)),
        "/cluster/digest" => return Some(super::cluster::digest(shard, req).await),
        "/auth/login" | "/auth/refresh" => return Some(super::auth::tokens(shard, req).await),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/admin/users") {
        return Some(super::accounts::users(shard, req, rest).await);
    }
    if let Some(rest) = path.strip_prefix("/admin/roles") {
        return Some(super::accounts::roles(shard, req, rest).await);
    }
    if let Some(rest) = path.strip_prefix("/admin/backup") {
        return Some(super::backup::handle(shard, req, rest).await);
    }
    if let Some(rest) = path.strip_prefix("/admin/tables") {
        return Some(super::admin::handle(shard, req, rest).await);
    }
    super::admin_page::assets::serve(req)
}

/// `/{Table}`, `/{Table}/` and `/{Table}/{id}`.
async fn tables(shard: &Rc<HttpShard>, req: &Request<'_>) -> Response {
    let path = req.path;
    let trimmed = &path[1..];
    let (table_raw, rest) = match trimmed.split_once('/') {
        Some((t, r)) => (t, Some(r)),
        None => (trimmed, None),
    };
    if table_raw.is_empty() {
        return problem(
            404,
            "no resource here; use /{Table}/{id}, /{Table}/?query, /status or /health",
        );
    }
    let table = match percent_decode(table_raw) {
        Some(t) => t,
        None => return problem(400, "table name is not valid percent-encoded UTF-8"),
    };
    let Some(def) = shard.table(&table) else {
        return problem(404, &format!("table {table:?} does not exist (create it with POST /admin/tables or declare it in [[tables]])"));
    };
    match rest {
        None => super::rest::describe(&def, req),
        Some("") => super::rest::collection(shard, &def, req).await,
        Some(id_raw) => {
            let Some(id) = percent_decode(id_raw) else {
                return problem(400, "record id is not valid percent-encoded UTF-8");
            };
            if let Err(m) = crate::storage::record_id::check(&id) {
                return problem(400, &m);
            }
            super::rest::record(shard, &def, &id, req).await
        }
    }
}

/// Decodes `%XX` escapes; `None` for bad escapes or invalid UTF-8 (the rules are the query
/// string's: `crate::query::percent`).
pub fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    crate::query::percent::percent_decode(s).ok()
}

/// `405` with the methods a resource allows (`501` for a method the server does not know,
/// RFC 9110 §9.1).
pub fn not_allowed(method: Method, allow: &str) -> Response {
    if method == Method::Other {
        let mut r = problem(501, "this method is not implemented");
        r.extra.push(format!("Allow: {allow}"));
        return r;
    }
    let mut r = problem(
        405,
        &format!("{} is not allowed here; allowed: {allow}", method.as_str()),
    );
    r.extra.push(format!("Allow: {allow}"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_decode_strictly() {
        assert!(matches!(percent_decode("Dog"), Some(Cow::Borrowed("Dog"))));
        assert_eq!(percent_decode("a%2Fb%C3%A9").as_deref(), Some("a/bé"));
        // `%+1` used to pass (u8::from_str_radix takes a sign).
        for bad in ["%+1", "%-1", "%2", "%", "%zz", "%FF"] {
            assert_eq!(percent_decode(bad), None, "{bad:?}");
        }
    }
}
