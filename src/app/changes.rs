//! After-commit change handlers: a component's code that runs once per node for every
//! committed change of a table, local or replicated from a peer, on the shard that owns the
//! record. Each shard takes from the change feed only the batches of its own writer, so a
//! change runs the handlers once. Per component and shard, the changes wait in a bounded
//! queue (`CHANGE_QUEUE`) drained in order by one task, so the changes of one record are
//! handled in the order they committed; at the bound a change is dropped, counted
//! (`changes_dropped`) and warned about. A handler's error, panic or overrun of
//! `http.request_timeout_ms` is logged and counted; the next change is handled as usual.
//!
//! A change is handled at most once: one dropped at the bound, or still queued when the node
//! stops, is not handled later.

use super::component::Setup;
use super::hooks::{count, guard, Failure};
use super::shard::AppShard;
use super::{Ctx, Error, Version};
use crate::storage::changelog::{Change, ChangeBatch, ChangeOp};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use serde_json::Value;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Changes one component's queue holds on one shard before further changes are dropped.
pub const CHANGE_QUEUE: usize = 10_000;

/// A committed change, as a change handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub table: String,
    pub id: String,
    /// The version the change stored.
    pub version: Version,
    /// The document after the change; `None` for a delete.
    pub doc: Option<Value>,
    /// Whether the change was made on this node (else it was replicated from a peer).
    pub local: bool,
}

/// The future a change handler returns.
pub type ChangeFuture = Pin<Box<dyn Future<Output = Result<(), Error>>>>;

/// A change handler: any `Fn(Ctx, ChangeEvent) -> impl Future<Output = Result<(), Error>>`.
pub trait ChangeHandler: Send + Sync + 'static {
    fn call(&self, ctx: Ctx, change: ChangeEvent) -> ChangeFuture;
}

impl<F, Fut> ChangeHandler for F
where
    F: Fn(Ctx, ChangeEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + 'static,
{
    fn call(&self, ctx: Ctx, change: ChangeEvent) -> ChangeFuture {
        Box::pin(self(ctx, change))
    }
}

impl Setup<'_> {
    /// Runs `handler` after every committed change of `table` (local, or replicated from a
    /// peer: `ChangeEvent::local` tells), once per node, on the shard that owns the record,
    /// in commit order per record.
    pub fn on_change(&mut self, table: &str, handler: impl ChangeHandler) {
        self.decl
            .hooks
            .changes
            .push((table.to_string(), Arc::new(handler)));
    }
}

/// A change waiting for a component's handlers: its batch and its index there.
struct Queued(Arc<ChangeBatch>, usize);

/// One component's queue on a shard.
struct Queue {
    component: usize,
    /// The tables the component handles.
    tables: Vec<String>,
    tx: LocalSender<Queued>,
    /// Dropping since the last change that found room (warn once per episode).
    dropping: Cell<bool>,
}

/// Starts the change handlers of every component on this shard: a queue and its task per
/// component with handlers, and one change-feed listener that fills the queues with the
/// changes of this shard's writer. Nothing when no component handles changes.
pub fn start_change_handlers(app: &Rc<AppShard>) {
    let mut queues = Vec::new();
    for (c, decl) in app.registry.components.iter().enumerate() {
        if decl.hooks.changes.is_empty() {
            continue;
        }
        let (tx, rx) = local_channel::new_bounded(CHANGE_QUEUE);
        glommio::spawn_local(drain(app.clone(), c, rx)).detach();
        let mut tables: Vec<String> = decl.hooks.changes.iter().map(|(t, _)| t.clone()).collect();
        tables.dedup();
        queues.push(Queue {
            component: c,
            tables,
            tx,
            dropping: Cell::new(false),
        });
    }
    if queues.is_empty() {
        return;
    }
    let (own, stats) = (app.id, app.stats.clone());
    app.add_feed_listener(Box::new(move |batch: &Arc<ChangeBatch>| {
        // Every writer's batches reach every shard with listeners: the owner handles them.
        if batch.shard != own {
            return;
        }
        for (i, change) in batch.changes.iter().enumerate() {
            for q in queues.iter().filter(|q| q.tables.contains(&change.table)) {
                q.offer(&stats.components[q.component], batch, i, own);
            }
        }
    }));
}

impl Queue {
    /// Queues change `i` of `batch`, or drops and counts it when the queue is full.
    fn offer(
        &self,
        (name, stats): &(&'static str, super::shard::ComponentStats),
        batch: &Arc<ChangeBatch>,
        i: usize,
        shard: usize,
    ) {
        if self.tx.try_send(Queued(batch.clone(), i)).is_ok() {
            self.dropping.set(false);
            return;
        }
        count(&stats.hooks.changes_dropped);
        if !self.dropping.replace(true) {
            tracing::warn!(
                component = name,
                shard,
                "change handlers fall behind: {CHANGE_QUEUE} changes wait; further changes are dropped (`changes_dropped` in /status)"
            );
        }
    }
}

/// Hands component `c`'s queued changes to its handlers, one change at a time, in order.
async fn drain(app: Rc<AppShard>, c: usize, rx: LocalReceiver<Queued>) {
    let deadline = Duration::from_millis(app.config().http.request_timeout_ms);
    let node = app.config().cluster.node_id;
    while let Some(Queued(batch, i)) = rx.recv().await {
        let change = &batch.changes[i];
        for (table, handler) in &app.registry.components[c].hooks.changes {
            if *table == change.table {
                let event = event_of(change, node);
                run_one(&app, c, handler.as_ref(), change, event, deadline).await;
            }
        }
    }
}

/// The event a handler gets for a committed change.
fn event_of(c: &Change, node: u16) -> ChangeEvent {
    let doc = match c.op {
        ChangeOp::Put => Some(serde_json::from_slice(&c.body).unwrap_or(Value::Null)),
        ChangeOp::Delete => None,
    };
    ChangeEvent {
        table: c.table.clone(),
        id: c.id.clone(),
        version: Version {
            clock: c.clock,
            node: c.node,
        },
        doc,
        local: c.node == node,
    }
}

/// Runs one handler over one change under the hooks' protection; counts the outcome.
async fn run_one(
    app: &Rc<AppShard>,
    c: usize,
    handler: &dyn ChangeHandler,
    change: &Change,
    event: ChangeEvent,
    deadline: Duration,
) {
    let (name, stats) = &app.stats.components[c];
    let ctx = Ctx::new(app.clone(), c);
    let failure = match guard(deadline, async move { handler.call(ctx, event).await }).await {
        Ok(()) => return count(&stats.hooks.changes_handled),
        Err(f) => f,
    };
    let (table, id) = (&change.table, &change.id);
    if let Failure::Panic(_) = failure {
        count(&stats.hooks.change_panics);
        tracing::error!(
            component = name,
            shard = app.id,
            table,
            id,
            "change handler {failure}"
        );
    } else {
        count(&stats.hooks.change_errors);
        tracing::warn!(
            component = name,
            shard = app.id,
            table,
            id,
            "change handler failed: {failure}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(node: u16, op: ChangeOp, body: &[u8]) -> Change {
        Change {
            table: "T".into(),
            id: "1".into(),
            clock: 7,
            node,
            op,
            body: body.to_vec(),
        }
    }

    #[test]
    fn an_event_says_whether_its_change_was_made_here_and_what_it_left() {
        let here = event_of(&change(1, ChangeOp::Put, br#"{"a":1}"#), 1);
        assert!(here.local);
        assert_eq!(here.doc, Some(serde_json::json!({"a": 1})));
        assert_eq!(here.version, Version { clock: 7, node: 1 });
        let replicated = event_of(&change(2, ChangeOp::Delete, b""), 1);
        assert!(!replicated.local);
        assert_eq!(replicated.doc, None);
    }
}
