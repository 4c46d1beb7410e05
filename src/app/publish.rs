//! MQTT publish handlers: a component's code that sees every publish of an MQTT client (TCP
//! or WebSocket) to a topic matching its filter (`+` and `#` wildcards), on the shard the
//! client is connected to, before the message is routed or written to a table topic. It may
//! deliver the message as it is, drop it, or replace its topic and payload (transform,
//! route elsewhere), and may store what it wants through its `Ctx`'s tables. An error, a
//! panic or an overrun of `http.request_timeout_ms` means the message is not delivered: a
//! 5.0 client gets reason 0x83, a 3.1.1 client is acknowledged; it is logged and counted.
//!
//! Handlers matching one topic run in the order components and their declarations come; each
//! sees the message as the handlers before it left it, and the first drop or failure ends the
//! run. Publishes made by components (`Ctx::publish`), wills and publishes forwarded by peers
//! do not run handlers, so a handler that publishes cannot loop. The node installs the
//! handlers on each shard's broker as an `mqtt::hook::PublishHook` (`publish_hook`).

use super::component::Setup;
use super::hooks::{count, guard, Failure};
use super::shard::AppShard;
use super::{Ctx, Error};
use crate::mqtt::hook::{PublishHook, Verdict};
use crate::mqtt::message::Message;
use crate::mqtt::topic;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

/// An MQTT client's publish, as a publish handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// The publishing client's id.
    pub client_id: String,
}

/// What becomes of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishAction {
    /// Deliver it as it is.
    Deliver,
    /// Deliver it to nobody (the client is acknowledged).
    Drop,
    /// Deliver this instead (same QoS and retain flag).
    Replace { topic: String, payload: Bytes },
}

/// The future a publish handler returns.
pub type PublishFuture = Pin<Box<dyn Future<Output = Result<PublishAction, Error>>>>;

/// A publish handler: any `Fn(Ctx, Publish) -> impl Future<Output = Result<PublishAction,
/// Error>>`.
pub trait PublishHandler: Send + Sync + 'static {
    fn call(&self, ctx: Ctx, publish: Publish) -> PublishFuture;
}

impl<F, Fut> PublishHandler for F
where
    F: Fn(Ctx, Publish) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<PublishAction, Error>> + 'static,
{
    fn call(&self, ctx: Ctx, publish: Publish) -> PublishFuture {
        Box::pin(self(ctx, publish))
    }
}

impl Setup<'_> {
    /// Runs `handler` on every MQTT client's publish to a topic that matches `filter`, before
    /// the message is routed.
    pub fn on_publish(&mut self, filter: &str, handler: impl PublishHandler) -> Result<(), String> {
        if !topic::valid_filter(filter) || topic::is_shared(filter) {
            return Err(format!(
                "component {}: {filter:?} is not an MQTT topic filter",
                self.name()
            ));
        }
        self.decl
            .hooks
            .publishes
            .push((filter.to_string(), Arc::new(handler)));
        Ok(())
    }
}

/// The hook this shard's broker runs clients' publishes through (`None`: no component
/// handles publishes, and the broker has no hook).
pub fn publish_hook(app: &Rc<AppShard>) -> Option<Rc<dyn PublishHook>> {
    let any = app
        .registry
        .components
        .iter()
        .any(|c| !c.hooks.publishes.is_empty());
    any.then(|| {
        Rc::new(PublishHooks {
            app: Rc::downgrade(app),
        }) as Rc<dyn PublishHook>
    })
}

/// Every component's publish handlers on one shard.
struct PublishHooks {
    app: Weak<AppShard>,
}

impl PublishHook for PublishHooks {
    fn wants(&self, topic: &str) -> bool {
        let Some(app) = self.app.upgrade() else {
            return false;
        };
        let mut filters = app
            .registry
            .components
            .iter()
            .flat_map(|c| c.hooks.publishes.iter().map(|(f, _)| f));
        filters.any(|f| topic::matches(topic, f))
    }

    fn run(&self, msg: Message) -> Pin<Box<dyn Future<Output = Verdict>>> {
        let app = self.app.upgrade();
        Box::pin(async move {
            match app {
                Some(app) => run_handlers(&app, msg).await,
                None => Verdict::Route(msg),
            }
        })
    }
}

/// Runs every matching handler in order over the message.
async fn run_handlers(app: &Rc<AppShard>, mut msg: Message) -> Verdict {
    let deadline = Duration::from_millis(app.config().http.request_timeout_ms);
    for (c, decl) in app.registry.components.iter().enumerate() {
        for (filter, handler) in &decl.hooks.publishes {
            if !topic::matches(&msg.topic, filter) {
                continue;
            }
            match run_one(app, c, handler.as_ref(), &msg, deadline).await {
                Some(PublishAction::Deliver) => {}
                Some(PublishAction::Drop) => return Verdict::Drop,
                Some(PublishAction::Replace { topic, payload }) => {
                    msg.topic = topic;
                    msg.payload = payload;
                }
                None => return Verdict::Refuse,
            }
        }
    }
    Verdict::Route(msg)
}

/// Runs one handler under the hooks' protection; `None` when it failed (logged, counted).
async fn run_one(
    app: &Rc<AppShard>,
    c: usize,
    handler: &dyn PublishHandler,
    msg: &Message,
    deadline: Duration,
) -> Option<PublishAction> {
    let (name, stats) = &app.stats.components[c];
    let stats = &stats.hooks;
    let publish = Publish {
        topic: msg.topic.clone(),
        payload: msg.payload.clone(),
        qos: msg.qos,
        retain: msg.retain,
        client_id: msg.from.to_string(),
    };
    let ctx = Ctx::new(app.clone(), c);
    let failure = match guard(deadline, async move { handler.call(ctx, publish).await }).await {
        Ok(PublishAction::Replace { topic: t, .. }) if !topic::valid_topic(&t) => {
            Failure::Error(Error::new(
                500,
                format!("the handler replaced the topic with {t:?}, which is not a topic"),
            ))
        }
        Ok(action) => {
            count(&stats.publishes_handled);
            match action {
                PublishAction::Drop => count(&stats.publishes_dropped),
                PublishAction::Replace { .. } => count(&stats.publishes_replaced),
                PublishAction::Deliver => {}
            }
            return Some(action);
        }
        Err(f) => f,
    };
    let (topic, client) = (&msg.topic, &*msg.from);
    if let Failure::Panic(_) = failure {
        count(&stats.publish_panics);
        tracing::error!(
            component = name,
            shard = app.id,
            topic,
            client,
            "publish handler {failure}; the message is not delivered"
        );
    } else {
        count(&stats.publish_errors);
        tracing::warn!(
            component = name,
            shard = app.id,
            topic,
            client,
            "publish handler failed: {failure}; the message is not delivered"
        );
    }
    None
}
