//! The component API: what a team needs to run its code inside every shard, beside the data.
//! A component (`Component`) declares at start, through `Setup`, the tables it needs and the
//! resources it serves on paths; its handlers get a `Ctx` (tables with the same semantics as
//! REST, atomic writes within a partition, MQTT publishing, shard-local state) and a
//! `Request`, and answer a `Response` or an `Error`. The node protects itself around every
//! call (`call`): a concurrency bound per component, the request deadline, panics caught.
//! Hooks (`hooks`) run a component's code on the data's path: validators before a write
//! commits (`validate`), change handlers after (`changes`), MQTT publish handlers (`publish`).
//!
//! A deployment lists its components and runs the node with `app::main`; the stock
//! `microlith` binary includes the example components of `examples/`, each enabled by its
//! `[components.NAME]` section. See `docs/components.md`.

pub(crate) mod cache;
mod call;
mod changes;
mod component;
mod ctx;
mod error;
mod hooks;
mod jobs;
mod publish;
mod registry;
mod request;
mod response;
mod route;
mod shard;
mod table;
pub mod testing;
mod validate;
mod wrap;

pub use cache::{CacheControl, CacheSource, CacheSpec, Cached, SourceFuture};
pub use changes::{ChangeEvent, ChangeFuture, ChangeHandler};
pub use component::{Component, Handler, HandlerFuture, Setup};
pub use ctx::Ctx;
pub use error::Error;
pub use jobs::{Job, JobFuture, Schedule, Scope};
pub use publish::{Publish, PublishAction, PublishFuture, PublishHandler};
pub use request::{Method, Request};
pub use response::{Body, Response};
pub use table::{Batch, Change, Record, Subscription, Table};
pub use validate::Check;
pub use wrap::TableWrapper;

pub use crate::runtime::records::{Doc, Precondition, Written};
pub use crate::security::{Principal, TableOp};
pub use crate::storage::hlc::Version;

/// Runs the node's command line (`serve`, `check-config`, ...) with these components: the
/// `main` of a deployment.
pub fn main(components: Vec<std::sync::Arc<dyn Component>>) -> std::process::ExitCode {
    crate::cli::main(components)
}

pub(crate) use cache::NodeCaches;
pub(crate) use call::call;
pub(crate) use changes::start_change_handlers;
pub(crate) use jobs::{add_status as add_job_status, Jobs};
pub(crate) use publish::publish_hook;
pub(crate) use registry::{Lookup, Registry};
pub(crate) use shard::{AppShard, AppStats};
pub(crate) use validate::write_check;
