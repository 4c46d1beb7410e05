//! Scheduled jobs: what a component declares with `Setup::job` (a name, a `Schedule`, a
//! `Scope` and the code to run) and each job's counters for `/status`. The jobs of a node run
//! on its shard 0 (`runner`): a run never overlaps the previous one of the same job (the tick
//! is skipped and counted), is cut at its timeout, and a failure or a panic is logged and
//! counted while the job keeps its schedule. See the "Jobs" section of `docs/components.md`.

mod runner;
mod schedule;

pub use runner::Jobs;
pub use schedule::Schedule;

use super::component::Setup;
use super::{Ctx, Error};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Most jobs one component may declare.
pub const MAX_JOBS_PER_COMPONENT: usize = 64;
/// Longest error message kept for `/status` (bytes).
const MAX_ERROR_TEXT: usize = 512;

/// Where a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// On every node (on its shard 0).
    OncePerNode,
    /// On one node of each connected part of the cluster: the node with the lowest node id
    /// among itself and the peers it has a live replication link with now. With clustering
    /// off, the same as `OncePerNode`.
    OncePerCluster,
}

/// The future a job returns: it runs on shard 0.
pub type JobFuture = Pin<Box<dyn Future<Output = Result<(), Error>>>>;

/// A job's code: any `Fn(Ctx) -> impl Future<Output = Result<(), Error>>`.
pub trait Job: Send + Sync + 'static {
    fn call(&self, ctx: Ctx) -> JobFuture;
}

impl<F, Fut> Job for F
where
    F: Fn(Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + 'static,
{
    fn call(&self, ctx: Ctx) -> JobFuture {
        Box::pin(self(ctx))
    }
}

/// One job a component declared, with its counters.
pub struct JobDecl {
    pub name: String,
    pub schedule: Schedule,
    pub scope: Scope,
    pub job: Arc<dyn Job>,
    pub stats: JobStats,
}

/// What a job's ticks came to on this node.
#[derive(Debug, Default)]
pub struct JobStats {
    /// Runs started.
    pub runs: AtomicU64,
    /// Runs that returned an error.
    pub failures: AtomicU64,
    /// Runs that panicked.
    pub panics: AtomicU64,
    /// Runs cut at the job's timeout.
    pub timeouts: AtomicU64,
    /// Ticks passed over because the previous run was still running.
    pub skipped: AtomicU64,
    /// Ticks of a once-per-cluster job left to a linked node with a lower id.
    pub elsewhere: AtomicU64,
    pub running: AtomicBool,
    /// When the last run started (Unix ms; 0: never) and how long it took.
    pub last_run_ms: AtomicU64,
    pub last_duration_ms: AtomicU64,
    /// Why the last run that failed, panicked or timed out did so.
    pub last_error: Mutex<String>,
}

impl JobStats {
    pub(crate) fn set_error(&self, text: &str) {
        let mut end = text.len().min(MAX_ERROR_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = text[..end].to_string();
    }
}

impl JobDecl {
    fn status_json(&self) -> Value {
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "schedule": self.schedule.describe(),
            "scope": match self.scope {
                Scope::OncePerNode => "node",
                Scope::OncePerCluster => "cluster",
            },
            "runs": g(&s.runs),
            "failures": g(&s.failures),
            "panics": g(&s.panics),
            "timeouts": g(&s.timeouts),
            "skipped": g(&s.skipped),
            "elsewhere": g(&s.elsewhere),
            "running": s.running.load(Ordering::Relaxed),
            "last_run_ms": g(&s.last_run_ms),
            "last_duration_ms": g(&s.last_duration_ms),
            "last_error": s.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        })
    }
}

/// Adds each component's jobs (`"jobs": {name: counters}`) to the components' `/status`
/// object.
pub fn add_status(components: Value, registry: &super::Registry) -> Value {
    let mut components = components;
    for c in &registry.components {
        if c.jobs.is_empty() {
            continue;
        }
        let jobs: serde_json::Map<String, Value> = c
            .jobs
            .iter()
            .map(|j| (j.name.clone(), j.status_json()))
            .collect();
        if let Some(entry) = components.get_mut(c.name) {
            entry["jobs"] = Value::Object(jobs);
        }
    }
    components
}

impl Setup<'_> {
    /// Runs `job` on `schedule`, on shard 0 of every node (`Scope::OncePerNode`) or of one
    /// node per connected part of the cluster (`Scope::OncePerCluster`). A run never
    /// overlaps the previous one: a tick that finds it still running is skipped (counted).
    /// A run is cut at the schedule's timeout at its next await; errors and panics are
    /// logged and counted, and the job keeps its schedule. The name (letters, digits, `_`,
    /// `-`) names the job in logs and in `/status`.
    pub fn job(
        &mut self,
        name: &str,
        schedule: Schedule,
        scope: Scope,
        job: impl Job,
    ) -> Result<(), String> {
        let refuse = |why: String| format!("component {}: job {name:?}: {why}", self.name());
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
            return Err(refuse(
                "a job name is 1 to 64 letters, digits, `_` or `-`".into(),
            ));
        }
        if self.decl.jobs.iter().any(|j| j.name == name) {
            return Err(refuse("declared twice".into()));
        }
        if self.decl.jobs.len() >= MAX_JOBS_PER_COMPONENT {
            return Err(refuse(format!(
                "a component has at most {MAX_JOBS_PER_COMPONENT} jobs"
            )));
        }
        schedule.check().map_err(refuse)?;
        self.decl.jobs.push(JobDecl {
            name: name.to_string(),
            schedule,
            scope,
            job: Arc::new(job),
            stats: JobStats::default(),
        });
        Ok(())
    }
}
