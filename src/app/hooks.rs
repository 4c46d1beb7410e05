//! What the hooks of a component share: the hooks it declared (`Hooks`: validators, change
//! handlers, MQTT publish handlers; each kind lives in its own file), their counters
//! (`HookStats`, shown under `components.NAME` in `/status`), and the protection an async hook
//! runs under (a deadline and a caught panic).

use super::changes::ChangeHandler;
use super::publish::PublishHandler;
use super::validate::ValidateFn;
use super::Error;
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The hooks one component declared, in declaration order.
#[derive(Default)]
pub struct Hooks {
    /// (table, validator): run on the owner's writer before a local write commits.
    pub validators: Vec<(String, Arc<ValidateFn>)>,
    /// (table, handler): run on the owner shard after a change commits.
    pub changes: Vec<(String, Arc<dyn ChangeHandler>)>,
    /// (topic filter, handler): run on the publisher's shard before an MQTT publish is routed.
    pub publishes: Vec<(String, Arc<dyn PublishHandler>)>,
}

/// What one component's hooks came to, node-wide.
#[derive(Debug, Default)]
pub struct HookStats {
    /// Validator runs.
    pub validations: AtomicU64,
    /// Writes a validator refused.
    pub validations_refused: AtomicU64,
    /// Validators that panicked (the write was refused with 500).
    pub validation_panics: AtomicU64,
    /// Change handler runs that ended well.
    pub changes_handled: AtomicU64,
    /// Changes not handed to the handlers: the component's queue on a shard was full.
    pub changes_dropped: AtomicU64,
    /// Change handlers that failed (an error or the deadline).
    pub change_errors: AtomicU64,
    /// Change handlers that panicked.
    pub change_panics: AtomicU64,
    /// Publish handler runs that ended well.
    pub publishes_handled: AtomicU64,
    /// Publishes a handler dropped (`PublishAction::Drop`).
    pub publishes_dropped: AtomicU64,
    /// Publishes a handler replaced (`PublishAction::Replace`).
    pub publishes_replaced: AtomicU64,
    /// Publish handlers that failed (an error, the deadline, an invalid replacement topic):
    /// the message was not delivered.
    pub publish_errors: AtomicU64,
    /// Publish handlers that panicked: the message was not delivered.
    pub publish_panics: AtomicU64,
}

impl HookStats {
    /// Every counter by name, as of now.
    pub fn counters(&self) -> [(&'static str, u64); 12] {
        let pairs: [(&str, &AtomicU64); 12] = [
            ("validations", &self.validations),
            ("validations_refused", &self.validations_refused),
            ("validation_panics", &self.validation_panics),
            ("changes_handled", &self.changes_handled),
            ("changes_dropped", &self.changes_dropped),
            ("change_errors", &self.change_errors),
            ("change_panics", &self.change_panics),
            ("publishes_handled", &self.publishes_handled),
            ("publishes_dropped", &self.publishes_dropped),
            ("publishes_replaced", &self.publishes_replaced),
            ("publish_errors", &self.publish_errors),
            ("publish_panics", &self.publish_panics),
        ];
        pairs.map(|(name, c)| (name, c.load(Ordering::Relaxed)))
    }

    /// Adds the counters to a component's `/status` object.
    pub fn add_json(&self, into: &mut serde_json::Value) {
        let Some(map) = into.as_object_mut() else {
            return;
        };
        for (name, n) in self.counters() {
            map.insert(name.into(), n.into());
        }
    }
}

/// Bumps a counter.
pub fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Why a guarded hook did not end well.
pub enum Failure {
    /// The hook answered this error.
    Error(Error),
    /// The hook panicked, with this message.
    Panic(String),
    /// The hook ran past its deadline and was dropped at its next await.
    Timeout(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Error(e) => write!(f, "{e}"),
            Failure::Panic(m) => write!(f, "panicked: {m}"),
            Failure::Timeout(t) => write!(f, "ran past {} ms", t.as_millis()),
        }
    }
}

/// Runs a hook's future with a deadline and its panics caught. Build the hook's future inside
/// `fut` (an `async` block), so a panic in its synchronous part is caught too.
pub async fn guard<T>(
    deadline: Duration,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Failure> {
    let caught = AssertUnwindSafe(fut).catch_unwind();
    let outcome = futures_lite::future::or(async { Some(caught.await) }, async {
        glommio::timer::sleep(deadline).await;
        None
    })
    .await;
    match outcome {
        Some(Ok(Ok(v))) => Ok(v),
        Some(Ok(Err(e))) => Err(Failure::Error(e)),
        Some(Err(p)) => Err(Failure::Panic(super::call::panic_message(&p).to_string())),
        None => Err(Failure::Timeout(deadline)),
    }
}
