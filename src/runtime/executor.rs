//! Shard executors: one pinned glommio executor per shard, on a thread of its own. A shard
//! runs the runtime's tasks (its inbox, its end of the change feed) and the services the
//! composition root plugs in (`Services`: protocol front ends, components), which the
//! runtime starts, tells to stop accepting, and drains, without knowing what they are.

use super::mesh::MeshMsg;
use super::shard::{NodeShared, Shard};
use crate::storage::catalog::Catalog;
use crate::storage::changelog::ChangeBatch;
use glommio::{CpuSet, LocalExecutorBuilder, Placement, PoolPlacement};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a shard waits for the work in flight when the node stops.
pub const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// What runs on a shard beside the runtime's own tasks.
pub trait Services {
    /// Stops taking new work: listeners close, nothing new is accepted.
    fn stop_accepting(&self);
    /// Finishes the work in flight, giving up at `deadline`.
    fn drain(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + '_>>;
}

/// Builds a shard's services once the shard exists (on the shard's thread).
pub type StartServices = Arc<dyn Fn(&Rc<Shard>) -> Result<Box<dyn Services>, String> + Send + Sync>;

/// What one shard is handed at start.
pub struct ShardStart {
    pub id: usize,
    pub node: Arc<NodeShared>,
    pub catalog: Catalog,
    pub inbox: flume::Receiver<MeshMsg>,
    pub feed: flume::Receiver<Arc<ChangeBatch>>,
    pub services: StartServices,
    /// Threads of the shard's blocking pool (1: glommio's default).
    pub blocking_threads: usize,
}

/// Starts a shard's thread and executor; returns once its services serve (or could not
/// start). The thread ends after the shard got `MeshMsg::Shutdown` and drained.
pub fn spawn(start: ShardStart) -> Result<std::thread::JoinHandle<()>, String> {
    let s = start.id;
    let cfg = &start.node.config.shards;
    let builder = LocalExecutorBuilder::new(Placement::Fixed(start.node.cores[s]))
        .name(&format!("shard-{s}"))
        .io_memory(cfg.io_memory_kib * 1024)
        .ring_depth(128)
        .preempt_timer(Duration::from_micros(cfg.preempt_timer_us))
        .spin_before_park(Duration::from_micros(cfg.spin_before_park_us));
    let builder = match blocking_pool(start.node.cores[s], start.blocking_threads) {
        Some(pool) => builder.blocking_thread_pool_placement(pool),
        None => builder,
    };
    let (ready_tx, ready) = std::sync::mpsc::channel::<Result<(), String>>();
    // Our own thread rather than `builder.spawn`: the thread id must be registered for the
    // reactor kick before the executor can first park, or a wake-up lost before its first
    // poll leaves the shard asleep for good (seen as a start-up hang under load).
    let thread = std::thread::Builder::new()
        .name(format!("shard-{s}"))
        .spawn(move || {
            start.node.executor_tids[s].store(super::kick::current_tid(), Ordering::Release);
            let executor = match builder.make() {
                Ok(e) => e,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("cannot start shard {s} executor: {e}")));
                    return;
                }
            };
            executor.run(run(start, ready_tx));
        })
        .map_err(|e| format!("cannot start shard {s} executor: {e}"))?;
    match ready.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(format!("shard {s} stopped during start-up"))
        }
    }
}

/// A blocking pool of `threads` threads on the shard's core (`None`: glommio's one thread).
fn blocking_pool(core: usize, threads: usize) -> Option<PoolPlacement> {
    if threads <= 1 {
        return None;
    }
    let set = CpuSet::online().ok()?.filter(|l| l.cpu == core);
    Some(PoolPlacement::Custom(vec![set; threads]))
}

/// A shard's life: start, serve until told to stop, stop accepting, drain.
async fn run(start: ShardStart, ready: std::sync::mpsc::Sender<Result<(), String>>) {
    let shards = start.node.dbs.len();
    let shard = Rc::new(Shard {
        id: start.id,
        node: start.node,
        catalog: RefCell::new(start.catalog),
        in_flight: Cell::new(0),
        draining: Cell::new(false),
        feed_next_seq: RefCell::new(vec![0; shards]),
        feed_listeners: RefCell::new(Vec::new()),
    });
    glommio::spawn_local(super::feed::run(shard.clone(), start.feed)).detach();
    let services = match (start.services)(&shard) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let (stop_tx, stop_rx) = glommio::channels::local_channel::new_bounded::<()>(1);
    glommio::spawn_local(super::inbox::run_inbox(shard.clone(), start.inbox, stop_tx)).detach();
    shard.node.serving[shard.id].store(true, Ordering::Release);
    let _ = ready.send(Ok(()));

    let _ = stop_rx.recv().await;
    shard.draining.set(true);
    shard.node.serving[shard.id].store(false, Ordering::Release);
    services.stop_accepting();
    services.drain(Instant::now() + DRAIN_WAIT).await;
}
