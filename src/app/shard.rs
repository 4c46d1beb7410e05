//! A shard's component context: the runtime shard and its broker, the node's registry of
//! components, how many calls of each component run here now, and each component's
//! shard-local state. Counters every shard shares are in `AppStats` (for `/status`).

use super::cache::{NodeCaches, ShardCaches};
use super::registry::Registry;
use crate::mqtt::MqttShard;
use crate::runtime::shard::Shard;
use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What each component's calls came to, node-wide.
#[derive(Debug, Default)]
pub struct ComponentStats {
    pub calls: AtomicU64,
    /// Calls answered with a 5xx status by the handler itself.
    pub errors: AtomicU64,
    /// Handlers that panicked (answered 500; the shard kept serving).
    pub panics: AtomicU64,
    /// Handlers cut at `http.request_timeout_ms` (answered 504).
    pub timeouts: AtomicU64,
    /// Calls refused because the component's concurrency bound was reached (503).
    pub busy: AtomicU64,
    /// What the component's hooks came to.
    pub hooks: super::hooks::HookStats,
}

/// Every component's counters, in registry order.
pub struct AppStats {
    pub components: Vec<(&'static str, ComponentStats)>,
}

impl AppStats {
    pub fn new(registry: &Registry) -> AppStats {
        AppStats {
            components: registry
                .components
                .iter()
                .map(|c| (c.name, ComponentStats::default()))
                .collect(),
        }
    }

    /// The counters as JSON for `/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let map: serde_json::Map<String, serde_json::Value> = self
            .components
            .iter()
            .map(|(name, s)| {
                let mut v = serde_json::json!({
                    "calls": g(&s.calls),
                    "errors": g(&s.errors),
                    "panics": g(&s.panics),
                    "timeouts": g(&s.timeouts),
                    "busy": g(&s.busy),
                });
                s.hooks.add_json(&mut v);
                (name.to_string(), v)
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// One shard's component context. Derefs to the runtime shard.
pub struct AppShard {
    pub base: Rc<Shard>,
    pub mqtt: Rc<MqttShard>,
    pub registry: Arc<Registry>,
    pub stats: Arc<AppStats>,
    /// Calls of each component running on this shard now.
    pub(crate) running: Vec<Cell<usize>>,
    /// Each component's shard-local values, by type.
    locals: RefCell<HashMap<(usize, TypeId), Rc<dyn Any>>>,
    /// The caching tables: this shard's fetches and remembered failures.
    pub caches: ShardCaches,
}

impl Deref for AppShard {
    type Target = Shard;

    fn deref(&self) -> &Shard {
        &self.base
    }
}

impl AppShard {
    pub fn new(
        mqtt: Rc<MqttShard>,
        registry: Arc<Registry>,
        stats: Arc<AppStats>,
        caches: Arc<NodeCaches>,
    ) -> AppShard {
        let running = registry.components.iter().map(|_| Cell::new(0)).collect();
        AppShard {
            base: mqtt.base.clone(),
            mqtt,
            registry,
            stats,
            running,
            locals: RefCell::new(HashMap::new()),
            caches: ShardCaches::new(caches),
        }
    }

    /// Component `component`'s shard-local value of type `T`, made with `T::default()` on
    /// first use.
    pub fn local<T: Default + 'static>(&self, component: usize) -> Rc<T> {
        let key = (component, TypeId::of::<T>());
        if let Some(v) = self.locals.borrow().get(&key) {
            if let Ok(v) = v.clone().downcast::<T>() {
                return v;
            }
        }
        let v = Rc::new(T::default());
        self.locals.borrow_mut().insert(key, v.clone());
        v
    }
}
