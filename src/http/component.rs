//! Requests served by a component's resource: the HTTP request becomes the component's
//! `Request`, the handler runs under the node's protection (`app::call`), and its answer
//! becomes an HTTP response, or a real-time stream when it asks for one.

#![allow(clippy::result_large_err)] // like the REST handlers: the error is the ready response

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::router::Routed;
use super::shard::HttpShard;
use crate::app::{self, Body, Lookup};
use std::rc::Rc;

/// The component method of an HTTP method (`None`: components serve no such method).
pub fn method(m: Method) -> Option<app::Method> {
    Some(match m {
        Method::Get => app::Method::Get,
        Method::Head => app::Method::Head,
        Method::Put => app::Method::Put,
        Method::Post => app::Method::Post,
        Method::Patch => app::Method::Patch,
        Method::Delete => app::Method::Delete,
        Method::Options | Method::Other => return None,
    })
}

/// Serves `req` if a component's route matches its path; `None` lets the node's own routes
/// have it.
pub async fn serve(shard: &Rc<HttpShard>, req: &Request<'_>) -> Option<Routed> {
    let registry = &shard.app.registry;
    if !registry.has_routes() {
        return None;
    }
    let found = match registry.find(method(req.method)?, req.path) {
        Lookup::None => return None,
        Lookup::OtherMethods(methods) => {
            let allow: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
            return Some(Routed::Respond(super::router::not_allowed(
                req.method,
                &allow.join(", "),
            )));
        }
        Lookup::Found(found) => found,
    };
    let call = app::Request::new(
        method(req.method)?,
        req.path,
        req.query,
        Vec::new(),
        req.head,
        req.body,
        req.user.clone(),
    );
    Some(match app::call(&shard.app, found, call).await {
        Ok(resp) => answer(shard, req, resp),
        Err(e) => {
            let mut r = problem(e.status, &e.message);
            r.retry_after = e.retry_after;
            Routed::Respond(r)
        }
    })
}

/// The HTTP answer of a component's response.
fn answer(shard: &HttpShard, req: &Request<'_>, resp: app::Response) -> Routed {
    let body = match resp.body {
        Body::Bytes(b) => b,
        Body::Stream { table, id } => {
            if let Err(r) = super::auth::may_read(req, &table) {
                return Routed::Respond(r);
            }
            return match super::realtime::stream_for(shard, req, &table, id.as_deref()) {
                Ok(kind) => Routed::Stream(kind),
                Err(r) => Routed::Respond(r),
            };
        }
    };
    let mut r = Response::json(resp.status, body);
    r.content_type = resp.content_type.into();
    r.extra = resp
        .headers
        .into_iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    Routed::Respond(r)
}

/// Whether a component serves this path with some method (streams ask before routing).
pub fn serves(shard: &HttpShard, path: &str) -> bool {
    let registry = &shard.app.registry;
    registry.has_routes() && !matches!(registry.find(app::Method::Get, path), Lookup::None)
}

/// A component's wrapper of `table`'s REST resource, with the context it runs in.
pub struct Wrapped {
    ctx: app::Ctx,
    wrapper: std::sync::Arc<dyn app::TableWrapper>,
}

impl Wrapped {
    /// The wrapper of `table`, if a component wraps it.
    pub fn of(shard: &HttpShard, table: &str) -> Option<Wrapped> {
        let (component, wrapper) = shard.app.registry.wrapper(table)?;
        Some(Wrapped {
            ctx: app::Ctx::new(shard.app.clone(), *component),
            wrapper: wrapper.clone(),
        })
    }

    /// A stored document as readers of the wrapped resource see it.
    pub fn read(&self, body: &[u8]) -> Result<Vec<u8>, Response> {
        let mut doc: app::Doc = serde_json::from_slice(body)
            .map_err(|e| problem(500, &format!("a stored record is not a JSON object: {e}")))?;
        self.wrapper.on_read(&self.ctx, &mut doc);
        serde_json::to_vec(&doc).map_err(|e| problem(500, &e.to_string()))
    }

    /// A query row as readers see it.
    pub fn read_row(&self, row: &mut serde_json::Value) {
        if let serde_json::Value::Object(doc) = row {
            self.wrapper.on_read(&self.ctx, doc);
        }
    }

    /// A body about to be written: checked or changed by the wrapper.
    pub fn write(&self, m: Method, id: Option<&str>, doc: &mut app::Doc) -> Result<(), Response> {
        let Some(method) = method(m) else {
            return Ok(());
        };
        self.wrapper
            .before_write(&self.ctx, method, id, doc)
            .map_err(|e| {
                let mut r = problem(e.status, &e.message);
                r.retry_after = e.retry_after;
                r
            })
    }
}
