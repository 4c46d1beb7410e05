//! The contract between a component and the node: a component has a name (its config
//! section is `[components.NAME]`) and declares, once per node at start, what it offers
//! (`Setup`): tables it needs, resources on paths, hooks, MQTT handlers, jobs and caching
//! tables. Its handlers then run on every shard, beside the data.

use super::registry::{ComponentDecl, RouteDecl};
use super::request::Method;
use super::route::Pattern;
use super::{Ctx, Error, Request, Response};
use crate::config::TableConfig;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Application code that runs inside every shard. Implemented by a team's crate; a
/// deployment lists its components (`app::main`).
pub trait Component: Send + Sync + 'static {
    /// The component's name: letters, digits, `_` and `-`. Its config section is
    /// `[components.NAME]`; a component runs only when its section is present.
    fn name(&self) -> &'static str;

    /// Declares what the component offers, reading its config section. Runs once per node
    /// at start, and for `check-config`: an error stops the start with its message.
    fn setup(&self, setup: &mut Setup<'_>) -> Result<(), String>;
}

/// The future a handler returns: it runs on the shard that took the request.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response, Error>>>>;

/// A resource handler: any `Fn(Ctx, Request) -> impl Future<Output = Result<Response, Error>>`.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, ctx: Ctx, req: Request) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Ctx, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, Error>> + 'static,
{
    fn call(&self, ctx: Ctx, req: Request) -> HandlerFuture {
        Box::pin(self(ctx, req))
    }
}

/// What a component declares at start.
pub struct Setup<'a> {
    name: &'static str,
    section: &'a toml::Value,
    pub(crate) decl: ComponentDecl,
}

impl<'a> Setup<'a> {
    pub(crate) fn new(name: &'static str, section: &'a toml::Value) -> Setup<'a> {
        Setup {
            name,
            section,
            decl: ComponentDecl::new(name),
        }
    }

    /// The component's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The component's config section as `T`. Use `#[serde(deny_unknown_fields)]` so a
    /// misspelt key is refused; the message names the key (`components.NAME.key`).
    pub fn config<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        T::deserialize(self.section.clone())
            .map_err(|e| format!("`components.{}`: {}", self.name, e.message()))
    }

    /// A table the component needs: created at start if the node does not have it (a table
    /// that exists keeps its definition; a different primary key is refused at start).
    pub fn table(&mut self, name: &str, primary_key: &str, indexes: &[&str]) {
        self.decl.tables.push(TableConfig {
            name: name.to_string(),
            primary_key: primary_key.to_string(),
            indexes: indexes.iter().map(|i| i.to_string()).collect(),
            attributes: Default::default(),
        });
    }

    /// Serves `method` on a path pattern (`/catalog`, `/product/:id`, `/files/*rest`).
    /// Component routes are matched before tables, so a component may take over a table's
    /// path; `/health`, `/status` and `/admin/...` are the node's.
    pub fn route(
        &mut self,
        method: Method,
        pattern: &str,
        handler: impl Handler,
    ) -> Result<(), String> {
        let pattern = Pattern::parse(pattern)?;
        if let Some(first) = pattern.first_literal() {
            if matches!(first, "health" | "status" | "admin" | "cluster" | "mqtt") {
                return Err(format!(
                    "component {}: {} is the node's own path",
                    self.name,
                    pattern.as_str()
                ));
            }
        }
        self.decl.routes.push(RouteDecl {
            method,
            pattern,
            handler: Arc::new(handler),
        });
        Ok(())
    }

    pub fn get(&mut self, pattern: &str, handler: impl Handler) -> Result<(), String> {
        self.route(Method::Get, pattern, handler)
    }

    pub fn post(&mut self, pattern: &str, handler: impl Handler) -> Result<(), String> {
        self.route(Method::Post, pattern, handler)
    }

    pub fn put(&mut self, pattern: &str, handler: impl Handler) -> Result<(), String> {
        self.route(Method::Put, pattern, handler)
    }

    pub fn patch(&mut self, pattern: &str, handler: impl Handler) -> Result<(), String> {
        self.route(Method::Patch, pattern, handler)
    }

    pub fn delete(&mut self, pattern: &str, handler: impl Handler) -> Result<(), String> {
        self.route(Method::Delete, pattern, handler)
    }

    /// Most calls of this component's handlers running at once on one shard (default 1024).
    /// Past it a request is answered 503 with Retry-After at once.
    pub fn max_concurrent(&mut self, n: usize) {
        self.decl.max_concurrent = n.max(1);
    }
}
