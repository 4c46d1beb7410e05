//! Running a node's jobs on its shard 0: one ticker task per job waits for the job's ticks;
//! at a tick it starts a run, unless the job is once per cluster and another node runs it
//! (see `runs_on_this_node`), or the previous run is still running (the tick is skipped).
//! A run has the node's protection around it: a panic is caught, the run is cut at its
//! timeout, and every outcome is counted in the job's `JobStats` and logged with the job's
//! name. When the node stops, the tickers end at once and a running run gets until the drain
//! deadline.

use super::{JobDecl, Scope};
use crate::app::call::panic_message;
use crate::app::{AppShard, Ctx, Error};
use crate::cluster::state::ClusterState;
use crate::storage::now_millis;
use futures_util::FutureExt;
use glommio::Task;
use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest an aligned ticker sleeps before it looks at the wall clock again (so that a clock
/// set back is noticed).
const ALIGNED_LOOK: Duration = Duration::from_secs(1);
/// How often the drain looks whether the runs have ended.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// A shard's jobs: every job of every component on shard 0, none elsewhere.
pub struct Jobs {
    tickers: RefCell<Vec<Task<()>>>,
    slots: Vec<Rc<Slot>>,
}

/// One job on this shard: its run in progress, if any.
struct Slot {
    app: Rc<AppShard>,
    cluster: Option<Arc<ClusterState>>,
    component: usize,
    job: usize,
    busy: Cell<bool>,
    run: RefCell<Option<Task<()>>>,
}

impl Jobs {
    /// Starts a ticker for every job the components declared, on shard 0 only (`cluster`:
    /// the replication status, `None` with clustering off).
    pub fn start(app: &Rc<AppShard>, cluster: Option<Arc<ClusterState>>) -> Jobs {
        let mut jobs = Jobs {
            tickers: RefCell::new(Vec::new()),
            slots: Vec::new(),
        };
        if app.id != 0 {
            return jobs;
        }
        for (component, c) in app.registry.components.iter().enumerate() {
            for job in 0..c.jobs.len() {
                let slot = Rc::new(Slot {
                    app: app.clone(),
                    cluster: cluster.clone(),
                    component,
                    job,
                    busy: Cell::new(false),
                    run: RefCell::new(None),
                });
                let ticker = glommio::spawn_local(tick_loop(slot.clone()));
                jobs.tickers.get_mut().push(ticker);
                jobs.slots.push(slot);
            }
        }
        jobs
    }

    /// No more ticks: runs in progress go on.
    pub fn stop_ticking(&self) {
        self.tickers.borrow_mut().clear();
    }

    /// Waits for the runs in progress until `deadline`, then drops those still running.
    pub async fn drain(&self, deadline: Instant) {
        while self.slots.iter().any(|s| s.busy.get()) && Instant::now() < deadline {
            glommio::timer::sleep(DRAIN_POLL).await;
        }
        for s in &self.slots {
            if s.busy.get() {
                tracing::warn!(
                    component = s.component_name(),
                    job = %s.decl().name,
                    "job dropped: still running at the drain deadline"
                );
            }
            let run = s.run.borrow_mut().take();
            drop(run);
        }
    }
}

/// Whether a once-per-cluster job runs on this node: when no node it has a live link with
/// has a lower id. Each connected part of a partitioned cluster has such a node, so the job
/// runs at least once per tick in each part.
pub fn runs_on_this_node(own: u16, linked: &[u16]) -> bool {
    linked.iter().all(|&peer| peer > own)
}

impl Slot {
    fn decl(&self) -> &JobDecl {
        &self.app.registry.components[self.component].jobs[self.job]
    }

    fn component_name(&self) -> &'static str {
        self.app.registry.components[self.component].name
    }

    /// A tick: start a run unless another node runs it or the last run is still running.
    fn tick(self: &Rc<Self>) {
        let decl = self.decl();
        if decl.scope == Scope::OncePerCluster {
            if let Some(c) = &self.cluster {
                if !runs_on_this_node(c.node_id, &c.linked_node_ids()) {
                    decl.stats.elsewhere.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        if self.busy.get() {
            decl.stats.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                component = self.component_name(),
                job = %decl.name,
                "tick skipped: the previous run is still running"
            );
            return;
        }
        self.busy.set(true);
        let run = glommio::spawn_local(run_once(self.clone()));
        *self.run.borrow_mut() = Some(run);
    }
}

/// Waits for each tick of the slot's job and handles it, until the task is dropped.
async fn tick_loop(slot: Rc<Slot>) {
    if slot.decl().schedule.is_aligned() {
        aligned_ticks(slot).await
    } else {
        every_ticks(slot).await
    }
}

/// Ticks one interval apart from now (monotonic clock), the first one interval from now.
async fn every_ticks(slot: Rc<Slot>) {
    let schedule = slot.decl().schedule;
    let start = Instant::now();
    let mut done = 0;
    loop {
        let (k, due) = schedule.next_every(start, done, Instant::now());
        glommio::timer::sleep(due.saturating_duration_since(Instant::now())).await;
        done = k;
        slot.tick();
    }
}

/// Ticks at the schedule's wall-clock slots, each slot once. A clock set back by more than
/// an interval starts again from the next slot after the new time.
async fn aligned_ticks(slot: Rc<Slot>) {
    let schedule = slot.decl().schedule;
    let interval_ms = schedule.interval().as_millis() as u64;
    let mut last = None;
    loop {
        let mut due = schedule.next_aligned(now_millis(), last);
        loop {
            let now = now_millis();
            if now >= due {
                break;
            }
            if due - now > interval_ms {
                due = schedule.next_aligned(now, None);
                continue;
            }
            glommio::timer::sleep(Duration::from_millis(due - now).min(ALIGNED_LOOK)).await;
        }
        last = Some(due);
        slot.tick();
    }
}

/// Marks the slot free when its run ends, however it ends (dropped at the drain included).
struct Busy(Rc<Slot>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.set(false);
        self.0.decl().stats.running.store(false, Ordering::Relaxed);
    }
}

/// One run of the slot's job, with a panic caught and cut at the job's timeout.
async fn run_once(slot: Rc<Slot>) {
    let _busy = Busy(slot.clone());
    let decl = slot.decl();
    let stats = &decl.stats;
    stats.runs.fetch_add(1, Ordering::Relaxed);
    stats.running.store(true, Ordering::Relaxed);
    stats.last_run_ms.store(now_millis(), Ordering::Relaxed);
    let started = Instant::now();
    let ctx = Ctx::new(slot.app.clone(), slot.component);
    let job = decl.job.clone();
    // Building the future runs the job's synchronous part: it may panic too.
    let call = AssertUnwindSafe(async move { job.call(ctx).await }).catch_unwind();
    let timeout = decl.schedule.run_timeout();
    let outcome = futures_lite::future::or(async { Some(call.await) }, async {
        glommio::timer::sleep(timeout).await;
        None
    })
    .await;
    let took = started.elapsed().as_millis() as u64;
    stats.last_duration_ms.store(took, Ordering::Relaxed);
    record(&slot, outcome, timeout);
}

/// Counts and logs how a run ended.
fn record(slot: &Slot, outcome: Option<std::thread::Result<Result<(), Error>>>, timeout: Duration) {
    let (component, decl) = (slot.component_name(), slot.decl());
    let stats = &decl.stats;
    let job = decl.name.as_str();
    match outcome {
        Some(Ok(Ok(()))) => {}
        Some(Ok(Err(e))) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(component, job, "job failed: {e}");
            stats.set_error(&e.to_string());
        }
        Some(Err(panic)) => {
            stats.panics.fetch_add(1, Ordering::Relaxed);
            let message = panic_message(&panic);
            tracing::error!(component, job, "job panicked: {message}");
            stats.set_error(&format!("panicked: {message}"));
        }
        None => {
            stats.timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(component, job, ?timeout, "job cut at its timeout");
            stats.set_error(&format!("cut at its timeout of {} ms", timeout.as_millis()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::runs_on_this_node;

    #[test]
    fn the_lowest_id_among_the_linked_nodes_runs_a_cluster_job() {
        assert!(runs_on_this_node(1, &[2, 3]));
        assert!(!runs_on_this_node(2, &[1, 3]));
        assert!(!runs_on_this_node(3, &[2]));
        // No live link (clustering on, peers down or partitioned): it runs here.
        assert!(runs_on_this_node(3, &[]));
    }
}
