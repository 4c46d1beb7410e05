//! The composition root: builds every service of a node in order (TLS material, storage and
//! writers, the shards with their front ends, replication), prints the ready line, reloads the
//! TLS files on SIGHUP, and on SIGTERM or SIGINT stops them in reverse order, joining every thread: replication first, then the
//! shards (stop accepting, finish HTTP requests and MQTT work in flight, flush MQTT state),
//! then the reactor kick, then the writers (flush) and the background fsync. The layers below
//! know nothing of each other's users; only this module knows them all.

mod services;
mod storage;

use crate::app::{AppStats, Component, NodeCaches, Registry};
use crate::cluster;
use crate::config::Config;
use crate::mqtt::NodeMqtt;
use crate::net::tls::Tls;
use crate::runtime::executor::{self, ShardStart};
use crate::runtime::mesh::MeshMsg;
use crate::runtime::preflight;
use crate::runtime::shard::NodeShared;
use crate::storage::layout;
use services::Listen;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use storage::Storage;

/// Why the server could not start: printed as one line, exit code 2.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for StartError {
    fn from(s: String) -> StartError {
        StartError(s)
    }
}

/// Runs a node with these components until SIGTERM or SIGINT; returns once every thread has
/// stopped. Prints the ready line on stdout once every service serves. SIGHUP reloads the TLS
/// files (on this thread, not a shard's).
pub fn serve(config: Config, components: &[Arc<dyn Component>]) -> Result<(), StartError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| StartError(format!("cannot install signal handlers: {e}")))?;
    let reload = std::cell::RefCell::new(Reload::default());
    let ready = |r: &Ready| {
        *reload.borrow_mut() = r.reload.clone();
        println!("microlith ready {}", r.line());
    };
    let until = || loop {
        match signals.forever().next() {
            Some(SIGHUP) => {
                let _ = reload.borrow().run();
            }
            Some(s) => return signal_name(s),
            None => return "unknown",
        }
    };
    run(config, components, ready, until)
}

/// What a running node re-reads without a restart: the TLS certificate, key and CA files.
/// New handshakes use them; open connections keep what they have.
#[derive(Clone, Default)]
pub struct Reload {
    tls: Option<Arc<Tls>>,
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload")
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Reload {
    /// Reloads and logs the outcome; a failure keeps the previous files' certificate.
    /// Blocking (it reads files): call it off the shards' executors.
    pub fn run(&self) -> Result<(), String> {
        let Some(tls) = &self.tls else {
            tracing::info!("reload: nothing to reload (TLS is off)");
            return Ok(());
        };
        match tls.reload() {
            Ok(()) => {
                tracing::info!("TLS files reloaded: new connections get the new certificate");
                Ok(())
            }
            Err(e) => {
                tracing::warn!("TLS reload failed, the previous certificate stays in use: {e}");
                Err(e.to_string())
            }
        }
    }
}

/// Where a started node serves.
#[derive(Debug, Clone)]
pub struct Ready {
    pub http: std::net::SocketAddr,
    pub mqtt: std::net::SocketAddr,
    /// The HTTPS and MQTT-over-TLS listeners (TLS on).
    pub https: Option<std::net::SocketAddr>,
    pub mqtts: Option<std::net::SocketAddr>,
    /// The replication listener (clustering on).
    pub peer: Option<std::net::SocketAddr>,
    pub shards: usize,
    pub node_id: u16,
    /// Reloads the TLS files (what SIGHUP does).
    pub reload: Reload,
}

impl Ready {
    /// `http=… shards=… node=… mqtt=…[ peer=…][ https=… mqtts=…]`, the ready line after
    /// `microlith ready `.
    pub fn line(&self) -> String {
        let field = |k: &str, a: Option<std::net::SocketAddr>| {
            a.map(|a| format!(" {k}={a}")).unwrap_or_default()
        };
        format!(
            "http={} shards={} node={} mqtt={}{}{}{}",
            self.http,
            self.shards,
            self.node_id,
            self.mqtt,
            field("peer", self.peer),
            field("https", self.https),
            field("mqtts", self.mqtts),
        )
    }
}

/// Runs a node: calls `ready` once every service serves, then `until`, which returns (the
/// name of what stopped it) when the node should stop; returns once every thread has ended.
pub fn run(
    config: Config,
    components: &[Arc<dyn Component>],
    ready: impl FnOnce(&Ready),
    until: impl FnOnce() -> &'static str,
) -> Result<(), StartError> {
    let registry = Arc::new(Registry::build(components, &config.components)?);
    let tls =
        Tls::start(&config.tls, config.cluster.enabled()).map_err(|e| StartError(e.to_string()))?;
    let cores = preflight::check_machine(&config)?;
    let mut listen = listen_addrs(&config, tls.is_some())?;
    let statics =
        Arc::new(crate::http::statics::StaticFiles::load(&config.http).map_err(StartError)?);
    let shards = cores.len();
    let mut fresh = FreshDir::new(&config.storage.data_dir);
    let _lock = layout::lock(&config.storage.data_dir).map_err(|e| StartError(e.to_string()))?;
    let layout = layout::prepare(
        &config.storage.data_dir,
        config.cluster.partitions,
        shards,
        config.storage.cache_mib * 1024 * 1024,
    )
    .map_err(|e| StartError(e.to_string()))?;
    // Rung by the writers when local changes reach a change log, and by the broker when the
    // filters this node wants change: the replication executor waits on it.
    let (bell, bell_rx) = match config.cluster.enabled() {
        true => {
            let (tx, rx) = flume::bounded(1);
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let component_tables: Vec<_> = registry.tables().cloned().collect();
    let app_stats = Arc::new(AppStats::new(&registry));
    let check = crate::app::write_check(&registry, &app_stats);
    let storage = Storage::start(
        &config,
        &component_tables,
        &layout,
        shards,
        bell.clone(),
        check,
    )?;
    // Loopback only while no user exists (`security::bootstrap`).
    let Listen {
        http,
        mqtt,
        https,
        mqtts,
    } = &mut listen;
    let tls_addrs = https.iter_mut().chain(mqtts.iter_mut());
    crate::security::bootstrap::restrict_listeners(
        &storage.dbs,
        [http, mqtt].into_iter().chain(tls_addrs),
    );
    let mqtt = Arc::new(NodeMqtt::new(shards, config.shards.mesh_queue_depth, bell));
    let caches = Arc::new(NodeCaches::new(
        &registry,
        shards,
        config.shards.mesh_queue_depth,
    ));
    let cluster_state = cluster::new_state(&config);
    let (node, inboxes) = node_shared(config, cores, &storage);
    let mut running = Running {
        kick: Some(Kick::start(&node)?),
        storage: Some(storage),
        node,
        shards: Vec::new(),
        replication: None,
        blocking_threads: caches.blocking_threads(),
    };
    let listen = Arc::new(Mutex::new(listen));
    let services = services::start_services(services::Shared {
        listen: listen.clone(),
        mqtt: mqtt.clone(),
        app_stats,
        caches,
        registry,
        cluster: cluster_state.clone(),
        tls: tls.clone(),
        limits: Arc::new(crate::security::limits::NodeLimits::new(shards)),
        statics,
        metrics: Arc::new(crate::http::metrics::gather::NodeMetrics::new(shards)),
    });
    // From here on clients may reach the node: its data directory stays, whatever happens.
    fresh.keep();
    if let Err(e) = running.start_shards(inboxes, services) {
        running.stop();
        return Err(e);
    }
    if let (Some(state), Some(bell)) = (cluster_state, bell_rx) {
        let node = running.node.clone();
        let peer_tls = tls.clone().filter(|t| t.on_peer_links());
        match cluster::start(node, mqtt, state, bell, layout.generation, peer_tls) {
            Ok(r) => running.replication = Some(r),
            Err(e) => {
                running.stop();
                return Err(StartError(e));
            }
        }
    }
    let bound = *listen.lock().unwrap_or_else(|e| e.into_inner());
    ready(&running.ready(bound, Reload { tls }));
    let signal = until();
    tracing::info!(
        signal = %signal,
        "stopping: no new connections, finishing the work in flight"
    );
    running.stop();
    tracing::info!(
        signal = %signal,
        "stopped: every acknowledged write is on disk and every thread has ended"
    );
    Ok(())
}

/// A data directory this start creates: removed again if the start fails before any client
/// can reach the node, so a failed start leaves nothing behind.
struct FreshDir(Option<std::path::PathBuf>);

impl FreshDir {
    fn new(dir: &std::path::Path) -> FreshDir {
        FreshDir((!dir.exists()).then(|| dir.to_path_buf()))
    }

    /// The start got far enough: the directory stays.
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for FreshDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What a node runs, stopped in the reverse order of its start.
struct Running {
    node: Arc<NodeShared>,
    storage: Option<Storage>,
    kick: Option<Kick>,
    shards: Vec<JoinHandle<()>>,
    replication: Option<cluster::Replication>,
    /// Threads of each shard's blocking pool (origin calls of caching tables run there).
    blocking_threads: usize,
}

impl Running {
    /// Starts every shard, one after the other (shard 0 first resolves the ports).
    fn start_shards(
        &mut self,
        inboxes: Vec<flume::Receiver<MeshMsg>>,
        services: crate::runtime::executor::StartServices,
    ) -> Result<(), StartError> {
        let storage = self
            .storage
            .as_mut()
            .ok_or_else(|| StartError("storage stopped".into()))?;
        for (s, inbox) in inboxes.into_iter().enumerate() {
            let feed = storage.feeds[s]
                .take()
                .ok_or_else(|| StartError("a shard's change feed was taken twice".into()))?;
            let thread = executor::spawn(ShardStart {
                id: s,
                node: self.node.clone(),
                catalog: storage.catalog.clone(),
                inbox,
                feed,
                services: services.clone(),
                blocking_threads: self.blocking_threads,
            })?;
            self.shards.push(thread);
        }
        Ok(())
    }

    /// Where the node serves, now that everything does.
    fn ready(&self, bound: Listen, reload: Reload) -> Ready {
        let node = &self.node;
        let ready = Ready {
            http: bound.http,
            mqtt: bound.mqtt,
            https: bound.https,
            mqtts: bound.mqtts,
            peer: self.replication.as_ref().map(|r| r.addr),
            shards: node.dbs.len(),
            node_id: node.config.cluster.node_id,
            reload,
        };
        tracing::info!(
            "started: microlith {} {} cores={:?} data_dir={}",
            env!("CARGO_PKG_VERSION"),
            ready.line(),
            node.cores,
            node.data_dir.display()
        );
        ready
    }

    /// Replication, then the shards (each drains), the reactor kick, and the writers (each
    /// flushes); every thread is joined.
    fn stop(&mut self) {
        if let Some(r) = self.replication.take() {
            r.stop();
            tracing::info!("replication stopped");
        }
        stop_shards(&self.node, std::mem::take(&mut self.shards));
        tracing::info!("shards stopped");
        if let Some(k) = self.kick.take() {
            k.stop();
        }
        if let Some(s) = self.storage.take() {
            s.stop();
        }
    }
}

/// The addresses the listeners are to bind (the TLS ones when `tls`).
fn listen_addrs(config: &Config, tls: bool) -> Result<Listen, StartError> {
    let e = |e: crate::config::ConfigError| StartError(e.to_string());
    Ok(Listen {
        http: config.http_addr().map_err(e)?,
        mqtt: config.mqtt.addr().map_err(e)?,
        https: tls
            .then(|| config.tls.https_addr())
            .transpose()
            .map_err(e)?,
        mqtts: tls.then(|| config.tls.mqtt_addr()).transpose().map_err(e)?,
    })
}

/// What every shard shares, and the receiving ends of the shards' inboxes.
fn node_shared(
    config: Config,
    cores: Vec<usize>,
    storage: &Storage,
) -> (Arc<NodeShared>, Vec<flume::Receiver<MeshMsg>>) {
    let shards = cores.len();
    let (inboxes, inbox_rx): (Vec<_>, Vec<_>) = (0..shards)
        .map(|_| flume::bounded(config.shards.mesh_queue_depth))
        .unzip();
    let node = Arc::new(NodeShared {
        data_dir: config.storage.data_dir.clone(),
        partitions: config.cluster.partitions,
        cores,
        dbs: storage.dbs.clone(),
        writers: storage.writers.clone(),
        writer_stats: storage.writer_stats.clone(),
        inboxes,
        serving: (0..shards).map(|_| AtomicBool::new(false)).collect(),
        connections: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
        feed_interest: storage.feed_interest.clone(),
        // One slot per shard, then the replication executor's.
        executor_tids: Arc::new((0..=shards).map(|_| AtomicI32::new(0)).collect()),
        catalog: storage.shared_catalog.clone(),
        clock: storage.clock.clone(),
        started_ms: crate::storage::now_millis(),
        config,
    });
    (node, inbox_rx)
}

/// Tells every shard to stop and joins their threads (each drains first).
fn stop_shards(node: &NodeShared, threads: Vec<JoinHandle<()>>) {
    for inbox in &node.inboxes {
        let _ = inbox.send(MeshMsg::Shutdown);
    }
    for t in threads {
        if t.join().is_err() {
            tracing::error!("a shard thread panicked while stopping");
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGINT => "SIGINT",
        _ => "other",
    }
}

/// The reactor kick's thread (see `runtime::kick`).
struct Kick {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Kick {
    fn start(node: &NodeShared) -> Result<Kick, StartError> {
        crate::runtime::kick::install_handler();
        let stop = Arc::new(AtomicBool::new(false));
        let (tids, stop2) = (node.executor_tids.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("reactor-kick".into())
            .spawn(move || crate::runtime::kick::run(tids, stop2))
            .map_err(|e| StartError(format!("cannot start thread: {e}")))?;
        Ok(Kick { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}
