//! What every enabled component declared, built once per node at start from the components
//! a deployment lists and the `[components.NAME]` sections of the config: tables, routes
//! (indexed by their first literal segment), limits. Shared read-only by every shard.

use super::cache::CacheSpec;
use super::component::{Component, Handler, Setup};
use super::jobs::JobDecl;
use super::request::Method;
use super::route::Pattern;
use super::wrap::TableWrapper;
use crate::config::TableConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Calls of one component's handlers running at once on one shard, unless it sets its own.
pub const DEFAULT_MAX_CONCURRENT: usize = 1024;

/// One route a component declared.
pub struct RouteDecl {
    pub method: Method,
    pub pattern: Pattern,
    pub handler: Arc<dyn Handler>,
}

/// What one component declared.
pub struct ComponentDecl {
    pub name: &'static str,
    pub tables: Vec<TableConfig>,
    pub routes: Vec<RouteDecl>,
    pub max_concurrent: usize,
    /// Tables whose REST resource the component wraps.
    pub wrappers: Vec<(String, Arc<dyn TableWrapper>)>,
    /// Caching tables the component declared.
    pub caches: Vec<CacheSpec>,
    /// Scheduled jobs (run on shard 0).
    pub jobs: Vec<JobDecl>,
    /// Validators, change handlers and MQTT publish handlers.
    pub hooks: super::hooks::Hooks,
}

impl ComponentDecl {
    pub fn new(name: &'static str) -> ComponentDecl {
        ComponentDecl {
            name,
            tables: Vec::new(),
            routes: Vec::new(),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            wrappers: Vec::new(),
            caches: Vec::new(),
            jobs: Vec::new(),
            hooks: Default::default(),
        }
    }
}

/// Every enabled component's declarations.
#[derive(Default)]
pub struct Registry {
    pub components: Vec<ComponentDecl>,
    /// (component, route) by the route's first literal segment.
    by_first: HashMap<String, Vec<(usize, usize)>>,
    /// Routes whose first segment is a parameter or the rest.
    open: Vec<(usize, usize)>,
    /// Table → (component, its wrapper).
    wrapped: HashMap<String, (usize, Arc<dyn TableWrapper>)>,
}

/// A request's route.
pub struct Found<'r> {
    pub component: usize,
    pub route: &'r RouteDecl,
    pub params: Vec<(String, String)>,
}

/// What a lookup found.
pub enum Lookup<'r> {
    /// No component serves this path.
    None,
    /// A route serves it.
    Found(Found<'r>),
    /// Routes serve the path, with other methods (for `Allow`).
    OtherMethods(Vec<Method>),
}

impl Registry {
    /// Runs the setup of every component whose section the config has. A section that names
    /// no component of this binary is refused, naming the key.
    pub fn build(
        components: &[Arc<dyn Component>],
        sections: &BTreeMap<String, toml::Value>,
    ) -> Result<Registry, String> {
        for name in sections.keys() {
            if !components.iter().any(|c| c.name() == name) {
                let known: Vec<&str> = components.iter().map(|c| c.name()).collect();
                return Err(format!(
                    "`components.{name}`: this binary has no component named {name:?} (it has: {known:?})"
                ));
            }
        }
        let mut registry = Registry::default();
        for c in components {
            let Some(section) = sections.get(c.name()) else {
                continue;
            };
            let mut setup = Setup::new(c.name(), section);
            c.setup(&mut setup)?;
            registry.add(setup.decl)?;
        }
        Ok(registry)
    }

    fn add(&mut self, decl: ComponentDecl) -> Result<(), String> {
        let ci = self.components.len();
        for (ri, r) in decl.routes.iter().enumerate() {
            if let Some(other) = self.same_route(r) {
                return Err(format!(
                    "component {}: {:?} {} is already served by component {other}",
                    decl.name,
                    r.method,
                    r.pattern.as_str()
                ));
            }
            match r.pattern.first_literal() {
                Some(first) => self
                    .by_first
                    .entry(first.to_string())
                    .or_default()
                    .push((ci, ri)),
                None => self.open.push((ci, ri)),
            }
        }
        for (table, w) in &decl.wrappers {
            if let Some((other, _)) = self.wrapped.get(table) {
                return Err(format!(
                    "component {}: table {table:?} is already wrapped by component {}",
                    decl.name, self.components[*other].name
                ));
            }
            self.wrapped.insert(table.clone(), (ci, w.clone()));
        }
        for cache in &decl.caches {
            if let Some(other) = self.caching(&cache.table) {
                return Err(format!(
                    "component {}: caching table {:?} is already declared by component {other}",
                    decl.name, cache.table
                ));
            }
        }
        self.components.push(decl);
        Ok(())
    }

    /// The component that declared caching table `table`, if one did.
    fn caching(&self, table: &str) -> Option<&'static str> {
        self.components
            .iter()
            .find(|c| c.caches.iter().any(|s| s.table == table))
            .map(|c| c.name)
    }

    /// The wrapper of a table's REST resource, with its component.
    pub fn wrapper(&self, table: &str) -> Option<&(usize, Arc<dyn TableWrapper>)> {
        if self.wrapped.is_empty() {
            return None;
        }
        self.wrapped.get(table)
    }

    fn same_route(&self, r: &RouteDecl) -> Option<&'static str> {
        self.components.iter().find_map(|c| {
            c.routes
                .iter()
                .any(|o| o.method == r.method && o.pattern == r.pattern)
                .then_some(c.name)
        })
    }

    /// Whether any component serves routes (a node without them skips the lookup).
    pub fn has_routes(&self) -> bool {
        !self.by_first.is_empty() || !self.open.is_empty()
    }

    /// The route that serves `method` on `path` (without its query string).
    pub fn find(&self, method: Method, path: &str) -> Lookup<'_> {
        if !self.has_routes() {
            return Lookup::None;
        }
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let literal = self.by_first.get(first).map(Vec::as_slice).unwrap_or(&[]);
        let mut other = Vec::new();
        for &(ci, ri) in literal.iter().chain(&self.open) {
            let route = &self.components[ci].routes[ri];
            let Some(params) = route.pattern.matches(path) else {
                continue;
            };
            // HEAD is served by a GET route (the body is not sent).
            let method_ok =
                route.method == method || (method == Method::Head && route.method == Method::Get);
            if method_ok {
                return Lookup::Found(Found {
                    component: ci,
                    route,
                    params,
                });
            }
            other.push(route.method);
        }
        if other.is_empty() {
            Lookup::None
        } else {
            Lookup::OtherMethods(other)
        }
    }

    /// The tables every component needs.
    pub fn tables(&self) -> impl Iterator<Item = &TableConfig> {
        self.components.iter().flat_map(|c| c.tables.iter())
    }
}
