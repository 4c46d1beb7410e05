//! Cluster: active-active replication between nodes. A node has an id, a name and a list of
//! peers; it runs one extra glommio executor ("cluster", unpinned, never a shard's) that
//! listens for peers and dials each configured peer. Each link runs over TLS when `[tls]`
//! says so (both ends present a certificate the other verifies against `tls.ca_file`), then
//! authenticates with an HMAC challenge-response over the cluster secret inside it, then the dialer pulls the peer's change logs
//! from its durable cursors and applies them last-writer-wins through the owning shards'
//! writers; anti-entropy repair covers what the logs no longer hold. See docs/replication.md.
//!
//! Rooms: `frame` (wire format), `auth` (secret and proofs), `handshake`, `inbound` and
//! `outbound` (the two sides of a link as state machines without I/O: streams, cursors,
//! acknowledgements, repair), `pull` and `push` (their drivers: sockets, writers, reads off
//! the executor), `apply` (routing to writers), `cursor` (durable
//! cursors), `digest` (anti-entropy digests), `purge` (tombstones every node holds), `schema`
//! (replicated table definitions), `state` (what `/status` shows), `lag` (write-to-apply
//! times), `wake` (senders woken by commits, not polling), `forward` (MQTT messages to and
//! from the peers), `interest` (which topics each node wants).

pub mod apply;
pub mod auth;
pub mod cursor;
pub mod digest;
pub mod forward;
pub mod frame;
pub mod handshake;
pub mod inbound;
pub mod interest;
pub mod lag;
pub mod outbound;
pub mod pull;
pub mod purge;
pub mod push;
pub mod state;
pub mod wake;

use crate::mqtt::NodeMqtt;
use crate::net::tls::Tls;
use crate::runtime::shard::NodeShared;
use auth::Secret;
use glommio::{LocalExecutorBuilder, Placement};
use state::ClusterState;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Longest a connect or a handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A link that hears nothing for this long is closed (both sides send at least every second).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a sender looks for new change-log entries without being rung (`wake`).
pub const POLL: Duration = Duration::from_millis(20);
/// A link compares digests this often even when its cursors are good.
pub const REPAIR_EVERY: Duration = Duration::from_secs(600);
/// Accepted links served at once; more are closed at once.
const MAX_ACCEPTED: usize = 256;

/// Everything the cluster executor's tasks share.
pub struct Ctx {
    pub node: Arc<NodeShared>,
    /// The broker state every shard shares: the outbox of messages for the peers, the
    /// shards' MQTT inboxes, the filters this node wants.
    pub mqtt: Arc<NodeMqtt>,
    pub state: Arc<ClusterState>,
    pub secret: Secret,
    pub node_id: u16,
    pub name: String,
    /// This node's log generation (changes when its shard count changes).
    pub generation: u64,
    pub max_frame: usize,
    pub reconnect_max: Duration,
    pub cursors: cursor::Cursors,
    /// How complete every member is (tombstone purge).
    pub knowledge: std::cell::RefCell<purge::Knowledge>,
    /// The outbound links' queues of MQTT messages.
    pub forward: forward::Hub,
    /// The MQTT filters each peer announced.
    pub peer_interest: std::cell::RefCell<interest::PeerInterest>,
    pub stop: Arc<AtomicBool>,
    /// Rung when local changes reach a change log.
    pub bells: wake::Bells,
    /// Configured peers (by address) whose every log this node has caught up with once since
    /// it started (tables are declared after that, see `schema`).
    pub synced: std::cell::RefCell<std::collections::BTreeSet<String>>,
    /// TLS on the links (`None`: plain TCP).
    pub tls: Option<Arc<Tls>>,
}

/// The replication status every shard can read (`None` when clustering is off).
pub fn new_state(config: &crate::config::Config) -> Option<Arc<ClusterState>> {
    let c = &config.cluster;
    c.enabled()
        .then(|| Arc::new(ClusterState::new(c.node_id, c.node_name(), &c.peer_addrs())))
}

/// The running replication executor.
pub struct Replication {
    /// Where it listens for peers.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stop_tx: flume::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Replication {
    /// Ends every link and the executor; returns once its thread has ended. Call it before
    /// the writers stop.
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let _ = self.stop_tx.send(());
        if self.thread.join().is_err() {
            tracing::error!("the replication executor panicked while stopping");
        }
    }
}

/// Starts the replication executor (clustering on): binds the peer listener, dials every
/// configured peer, and waits on `bell` (rung when local changes reach a change log or this
/// node's MQTT filters change) so that links send without polling.
pub fn start(
    node: Arc<NodeShared>,
    mqtt: Arc<NodeMqtt>,
    state: Arc<ClusterState>,
    bell: flume::Receiver<()>,
    generation: u64,
    tls: Option<Arc<Tls>>,
) -> Result<Replication, String> {
    let c = &node.config.cluster;
    let secret = Secret::from_config(c)?.ok_or("`cluster.secret`: no secret")?;
    // Every link needs fresh nonces: a node the OS gives no random bytes fails to start, with
    // the reason, rather than failing each link later.
    auth::nonce()?;
    let listen = c.listen_addr().map_err(|e| e.to_string())?;
    let cursors = cursor::Cursors::open(&node)
        .map_err(|e| format!("cannot open the cluster keyspace: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = flume::bounded::<()>(1);
    let setup = Setup {
        node,
        mqtt,
        state,
        secret,
        cursors,
        generation,
        stopping: stop.clone(),
        listen,
        bell,
        stop: stop_rx,
        tls,
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
    let thread = std::thread::Builder::new()
        .name("cluster".into())
        .spawn(move || run_thread(setup, ready_tx))
        .map_err(|e| format!("cannot start the cluster executor: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(addr)) => Ok(Replication {
            addr,
            stop,
            stop_tx,
            thread,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err("the cluster executor stopped during start-up".into()),
    }
}

/// What the replication executor starts with (what crosses to its thread).
struct Setup {
    node: Arc<NodeShared>,
    mqtt: Arc<NodeMqtt>,
    state: Arc<ClusterState>,
    secret: Secret,
    cursors: cursor::Cursors,
    generation: u64,
    stopping: Arc<AtomicBool>,
    listen: SocketAddr,
    bell: flume::Receiver<()>,
    stop: flume::Receiver<()>,
    tls: Option<Arc<Tls>>,
}

impl Setup {
    /// The context the executor's tasks share (made on its thread: it holds `Rc`s).
    fn context(&self) -> Ctx {
        let c = &self.node.config.cluster;
        Ctx {
            secret: self.secret.clone(),
            node_id: c.node_id,
            name: c.node_name(),
            generation: self.generation,
            max_frame: c.max_frame_bytes,
            reconnect_max: Duration::from_millis(c.reconnect_max_ms),
            cursors: self.cursors.clone(),
            knowledge: Default::default(),
            forward: Default::default(),
            peer_interest: Default::default(),
            state: self.state.clone(),
            stop: self.stopping.clone(),
            bells: Default::default(),
            synced: Default::default(),
            node: self.node.clone(),
            mqtt: self.mqtt.clone(),
            tls: self.tls.clone(),
        }
    }
}

type Ready = std::sync::mpsc::Sender<Result<SocketAddr, String>>;

/// The replication executor's thread: our own, registered for the reactor kick before the
/// executor first parks (see `runtime::kick`), so a lost wake-up costs at most one kick
/// period here too.
fn run_thread(setup: Setup, ready: Ready) {
    let node = setup.node.clone();
    node.executor_tids[node.dbs.len()].store(
        crate::runtime::kick::current_tid(),
        std::sync::atomic::Ordering::Release,
    );
    let builder = LocalExecutorBuilder::new(Placement::Unbound)
        .name("cluster")
        .io_memory(512 * 1024)
        .ring_depth(128);
    let executor = match builder.make() {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the cluster executor: {e}")));
            return;
        }
    };
    // A panic here is a bug that would leave the node serving while it no longer replicates
    // (links dead, nobody reconnecting): stop the node instead, so that a supervisor restarts
    // it and it catches up from its cursors.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        executor.run(run(setup, ready))
    }));
    if ran.is_err() {
        tracing::error!("the replication executor failed (see the panic above): stopping the node");
        std::process::exit(70);
    }
}

/// The replication executor's life: bind, start the links' tasks, serve until stopped.
async fn run(setup: Setup, ready: Ready) {
    let listen = setup.listen;
    let free = crate::runtime::preflight::port_is_free(listen);
    let bound =
        free.and_then(|_| glommio::net::TcpListener::bind(listen).map_err(std::io::Error::other));
    let listener = match bound {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "cannot listen for peers on {listen} (`cluster.listen`): {e}; is another process using the port?"
            )));
            return;
        }
    };
    let local = listener.local_addr().unwrap_or(listen);
    let ctx = Rc::new(setup.context());
    *ctx.state
        .peer_addr
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(local);
    glommio::spawn_local(wake::relay(setup.bell, ctx.clone())).detach();
    glommio::spawn_local(purge::run(ctx.clone())).detach();
    glommio::spawn_local(forward::run(ctx.clone())).detach();
    for p in ctx.node.config.cluster.peers.clone() {
        glommio::spawn_local(pull::run(ctx.clone(), p.addr)).detach();
    }
    // Take the tables the replicated schema holds that this node lacks now; declare this
    // node's own once it has heard from its peers (see `runtime::schema`).
    crate::runtime::schema::request_reconcile(&ctx.node, false).await;
    glommio::spawn_local(declare_when_synced(ctx.clone())).detach();
    let _ = ready.send(Ok(local));
    let stopped = async {
        let _ = setup.stop.recv_async().await;
    };
    futures_lite::future::or(accept(ctx, listener), stopped).await;
}

/// Serves inbound peer links, at most `MAX_ACCEPTED` at once.
async fn accept(ctx: Rc<Ctx>, listener: glommio::net::TcpListener) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if open.get() >= MAX_ACCEPTED {
                    tracing::warn!("too many peer links; closing a new one");
                    continue;
                }
                open.set(open.get() + 1);
                let (ctx, open) = (ctx.clone(), open.clone());
                glommio::spawn_local(async move {
                    push::serve(ctx, stream).await;
                    open.set(open.get() - 1);
                })
                .detach();
            }
            Err(e) => {
                tracing::warn!("peer listener: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits until every configured peer's logs were caught up with once (or
/// `schema::DECLARE_AFTER`), then has shard 0 declare this node's tables (see
/// `runtime::schema`).
async fn declare_when_synced(ctx: Rc<Ctx>) {
    let started = std::time::Instant::now();
    let peers: Vec<String> = ctx.node.config.cluster.peer_addrs();
    while started.elapsed() < crate::runtime::schema::DECLARE_AFTER
        && !peers.iter().all(|p| ctx.synced.borrow().contains(p))
    {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    crate::runtime::schema::request_reconcile(&ctx.node, true).await;
}
