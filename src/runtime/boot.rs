//! Boot and shutdown of a node: checks, data directory, writers, shard executors, the ready
//! line, and the orderly stop (stop accepting, finish in-flight requests, flush, exit 0).

use super::mesh::MeshMsg;
use super::preflight;
use super::shard::{NodeShared, Shard};
use crate::config::{Config, Durability};
use crate::storage::catalog::Catalog;
use crate::storage::layout;
use crate::storage::shard_db::ShardDb;
use crate::storage::writer::{Writer, WriterMsg, WriterSettings};
use glommio::{LocalExecutorBuilder, Placement};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why the server could not start: printed as one line, exit code 2.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long shutdown waits for in-flight requests.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// Runs a node until SIGTERM or SIGINT.
pub fn serve(config: Config) -> Result<(), StartError> {
    let cores = preflight::shard_cores(&config).map_err(StartError)?;
    preflight::check_io_uring().map_err(StartError)?;
    preflight::check_memlock(&config, cores.len()).map_err(StartError)?;
    let http_addr = config.http_addr().map_err(|e| StartError(e.to_string()))?;
    let mqtt_addr = config.mqtt.addr().map_err(|e| StartError(e.to_string()))?;
    let shards = cores.len();
    let data_dir = config.storage.data_dir.clone();
    let cache = config.storage.cache_mib * 1024 * 1024;
    let layout = layout::prepare(&data_dir, config.cluster.partitions, shards, cache)
        .map_err(|e| StartError(e.to_string()))?;

    let dbs: Vec<ShardDb> = (0..shards)
        .map(|s| {
            ShardDb::open(
                &layout.shard_dir(&data_dir, s),
                (cache / shards as u64).max(1 << 20),
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| {
            StartError(format!(
                "cannot open storage in {}: {e}",
                data_dir.display()
            ))
        })?;

    let (catalog, reindex) = merge_catalog(&config, &data_dir)?;
    let shared_catalog = Arc::new(std::sync::RwLock::new(catalog.clone()));

    // Writers: one thread per shard, unpinned (they must not compete with a shard's core).
    let settings = WriterSettings {
        node_id: config.cluster.node_id,
        clock_offset_ms: std::env::var("MICROLITH_TEST_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        durability: config.storage.durability,
        changelog_retention: Duration::from_secs(config.storage.changelog_retention_secs),
        changelog_max_entries: config.storage.changelog_max_entries,
        spin: Duration::from_micros(config.shards.spin_before_park_us),
    };
    let mut feed_tx = Vec::new();
    let mut feed_rx = Vec::new();
    let feed_interest: Vec<Arc<std::sync::atomic::AtomicU64>> =
        (0..shards).map(|_| Arc::default()).collect();
    for interest in &feed_interest {
        let (tx, rx) = flume::bounded(1024);
        feed_tx.push(crate::storage::writer::FeedTarget {
            tx,
            interest: interest.clone(),
        });
        feed_rx.push(rx);
    }
    // One slot: a ring that is not answered yet says everything a later one would.
    let (log_grew_tx, log_grew) = match config.cluster.enabled() {
        true => {
            let (tx, rx) = flume::bounded(1);
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let mut writers = Vec::new();
    let mut writer_stats = Vec::new();
    let mut writer_threads = Vec::new();
    let dirty: Vec<Arc<AtomicBool>> = (0..shards)
        .map(|_| Arc::new(AtomicBool::new(false)))
        .collect();
    for (s, db) in dbs.iter().enumerate() {
        let w = Writer::new(db.clone(), settings.clone(), dirty[s].clone())
            .map_err(|e| StartError(format!("cannot read storage of shard {s}: {e}")))?
            .with_feeds(s, feed_tx.clone())
            .with_log_signal(log_grew_tx.clone())
            .with_catalog(shared_catalog.clone());
        writer_stats.push(w.stats());
        let (tx, rx) = flume::bounded(config.storage.write_queue_depth);
        writers.push(tx);
        writer_threads.push(
            std::thread::Builder::new()
                .name(format!("writer-{s}"))
                .spawn(move || w.run(rx))
                .map_err(|e| StartError(format!("cannot start writer thread: {e}")))?,
        );
    }
    for (table, old) in &reindex {
        for w in &writers {
            let (done, wait) = flume::bounded(1);
            let _ = w.send(WriterMsg::Reindex {
                table: table.clone(),
                old_indexes: old.clone(),
                done,
            });
            wait.recv()
                .map_err(|_| StartError("writer stopped".into()))?
                .map_err(|e| StartError(format!("reindex of {} failed: {e}", table.name)))?;
        }
        tracing::info!(table = %table.name, indexes = ?table.indexes, "indexes rebuilt");
    }

    let stop_flusher = Arc::new(AtomicBool::new(false));
    let flusher = (config.storage.durability == Durability::Buffered).then(|| {
        let dbs = dbs.clone();
        let dirty = dirty.clone();
        let stop = stop_flusher.clone();
        let every = Duration::from_millis(config.storage.flush_interval_ms);
        std::thread::Builder::new()
            .name("flusher".into())
            .spawn(move || background_fsync(dbs, dirty, stop, every))
            .expect("spawn flusher")
    });

    let mut inbox_rx = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..shards {
        let (tx, rx) = flume::bounded(config.shards.mesh_queue_depth);
        inboxes.push(tx);
        inbox_rx.push(rx);
    }
    let node = Arc::new(NodeShared {
        data_dir: data_dir.clone(),
        partitions: config.cluster.partitions,
        cores: cores.clone(),
        dbs,
        writers,
        writer_stats,
        inboxes,
        serving: (0..shards).map(|_| AtomicBool::new(false)).collect(),
        connections: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
        feed_interest,
        executor_tids: Arc::new(
            (0..=shards)
                .map(|_| std::sync::atomic::AtomicI32::new(0))
                .collect(),
        ),
        interest: log_grew_tx
            .clone()
            .map(crate::cluster::interest::NodeInterest::new),
        log_grew,
        catalog: shared_catalog,
        started_ms: crate::storage::now_millis(),
        mqtt: crate::mqtt::NodeMqtt::new(shards),
        cluster: crate::cluster::new_state(&config),
        forward: config
            .cluster
            .enabled()
            .then(crate::cluster::forward::Channel::new),
        config,
    });

    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| StartError(format!("cannot install signal handlers: {e}")))?;

    super::kick::install_handler();
    let stop_kick = Arc::new(AtomicBool::new(false));
    let kicker = {
        let (tids, stop) = (node.executor_tids.clone(), stop_kick.clone());
        std::thread::Builder::new()
            .name("reactor-kick".into())
            .spawn(move || super::kick::run(tids, stop))
            .map_err(|e| StartError(format!("cannot start thread: {e}")))?
    };

    // Shard 0 binds first so that port 0 resolves to one port every shard then shares.
    let (ready_tx, ready_rx) =
        std::sync::mpsc::channel::<Result<(SocketAddr, SocketAddr), String>>();
    let mut handles = Vec::new();
    let mut bound = http_addr;
    let mut mqtt_bound = mqtt_addr;
    for (s, (rx, feed)) in inbox_rx.into_iter().zip(feed_rx).enumerate() {
        let h = spawn_shard(
            s,
            node.clone(),
            catalog.clone(),
            rx,
            feed,
            (bound, mqtt_bound),
            ready_tx.clone(),
        )?;
        handles.push(h);
        match ready_rx.recv() {
            Ok(Ok((addr, mqtt))) => (bound, mqtt_bound) = (addr, mqtt),
            Ok(Err(e)) => return Err(StartError(e)),
            Err(_) => return Err(StartError(format!("shard {s} stopped during start-up"))),
        }
    }
    let stop_cluster = Arc::new(AtomicBool::new(false));
    let peer_addr = crate::cluster::start(node.clone(), layout.generation, stop_cluster.clone())
        .map_err(StartError)?;
    println!(
        "microlith ready http={bound} shards={shards} node={} mqtt={mqtt_bound}{}",
        node.config.cluster.node_id,
        peer_addr.map(|a| format!(" peer={a}")).unwrap_or_default()
    );
    tracing::info!(%bound, shards, cores = ?cores, data_dir = %data_dir.display(), "serving");

    let mut signals = signals;
    let sig = signals.forever().next();
    tracing::info!(signal = ?sig, "shutting down: no new connections, finishing requests in flight");
    stop_cluster.store(true, Ordering::Release);
    for inbox in &node.inboxes {
        let _ = inbox.send(MeshMsg::Shutdown);
    }
    for h in handles {
        let _ = h.join();
    }
    stop_kick.store(true, Ordering::Release);
    let _ = kicker.join();
    for w in &node.writers {
        let (done, wait) = flume::bounded(1);
        if w.send(WriterMsg::Stop { done }).is_ok() {
            let _ = wait.recv();
        }
    }
    stop_flusher.store(true, Ordering::Release);
    if let Some(f) = flusher {
        let _ = f.join();
    }
    tracing::info!("stopped; every acknowledged write is on disk");
    Ok(())
}

/// Loads the persisted catalog and folds in the TOML tables. Returns the tables whose index
/// set changed (with their old indexes) so their indexes are rebuilt before serving.
#[allow(clippy::type_complexity)]
fn merge_catalog(
    config: &Config,
    data_dir: &std::path::Path,
) -> Result<
    (
        Catalog,
        Vec<(Arc<crate::storage::catalog::TableDef>, Vec<String>)>,
    ),
    StartError,
> {
    let mut catalog =
        Catalog::load(data_dir).map_err(|e| StartError(format!("cannot read catalog: {e}")))?;
    let mut reindex = Vec::new();
    for t in &config.tables {
        match catalog.tables.get(&t.name) {
            Some(existing) if existing.as_ref() == t => {}
            Some(existing) => {
                if existing.primary_key != t.primary_key {
                    return Err(StartError(format!(
                        "table {:?}: `primary_key` is {:?} in the config but the stored table uses {:?}; a primary key cannot change",
                        t.name, t.primary_key, existing.primary_key
                    )));
                }
                let def = Arc::new(t.clone());
                reindex.push((def.clone(), existing.indexes.clone()));
                catalog.tables.insert(t.name.clone(), def);
            }
            None => {
                catalog.tables.insert(t.name.clone(), Arc::new(t.clone()));
            }
        }
    }
    catalog
        .save(data_dir)
        .map_err(|e| StartError(format!("cannot write catalog: {e}")))?;
    Ok((catalog, reindex))
}

fn background_fsync(
    dbs: Vec<ShardDb>,
    dirty: Vec<Arc<AtomicBool>>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(every);
        for (db, d) in dbs.iter().zip(&dirty) {
            if d.swap(false, Ordering::AcqRel) {
                if let Err(e) = db.db.persist(fjall::PersistMode::SyncData) {
                    tracing::error!("background fsync failed: {e}");
                }
            }
        }
    }
}

fn spawn_shard(
    s: usize,
    node: Arc<NodeShared>,
    catalog: Catalog,
    inbox: flume::Receiver<MeshMsg>,
    feed: flume::Receiver<Arc<crate::storage::changelog::ChangeBatch>>,
    addr: (SocketAddr, SocketAddr),
    ready: std::sync::mpsc::Sender<Result<(SocketAddr, SocketAddr), String>>,
) -> Result<std::thread::JoinHandle<()>, StartError> {
    let shards = node.dbs.len();
    let cfg = &node.config.shards;
    let builder = LocalExecutorBuilder::new(Placement::Fixed(node.cores[s]))
        .name(&format!("shard-{s}"))
        .io_memory(cfg.io_memory_kib * 1024)
        .ring_depth(128)
        .preempt_timer(Duration::from_micros(cfg.preempt_timer_us))
        .spin_before_park(Duration::from_micros(cfg.spin_before_park_us));
    // Our own thread rather than `builder.spawn`: the thread id must be registered for the
    // reactor kick before the executor can first park, or a wake-up lost before its first
    // poll leaves the shard asleep for good (seen as a start-up hang under load).
    std::thread::Builder::new()
        .name(format!("shard-{s}"))
        .spawn(move || {
            node.executor_tids[s].store(super::kick::current_tid(), Ordering::Release);
            let executor = match builder.make() {
                Ok(e) => e,
                Err(e) => {
                    let _ = ready.send(Err(format!("cannot start shard {s} executor: {e}")));
                    return;
                }
            };
            executor.run(async move {
                let shard = Rc::new(Shard {
                    id: s,
                    node,
                    catalog: RefCell::new(catalog),
                    in_flight: Cell::new(0),
                    draining: Cell::new(false),
                    id_counter: Cell::new(0),
                    feed_next_seq: RefCell::new(vec![0; shards]),
                    feed_listeners: RefCell::new(Vec::new()),
                    mqtt: Default::default(),
                });
                glommio::spawn_local(super::feed::run(shard.clone(), feed)).detach();
                run_shard(shard, inbox, addr, ready).await
            })
        })
        .map_err(|e| StartError(format!("cannot start shard {s} executor: {e}")))
}

/// Fails if another socket already listens on `addr`'s port (on the same or a wildcard
/// address), as the kernel's table of TCP sockets shows it. Sockets in TIME_WAIT from a
/// previous run do not count (a restarted server must be able to bind at once).
pub fn port_is_free(addr: SocketAddr) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            if *state != "0A" {
                continue; // not LISTEN
            }
            let Some((ip_hex, port_hex)) = local.split_once(':') else {
                continue;
            };
            if u16::from_str_radix(port_hex, 16).ok() != Some(addr.port()) {
                continue;
            }
            let theirs_wildcard = ip_hex.chars().all(|c| c == '0');
            let same_v4 = match addr.ip() {
                std::net::IpAddr::V4(v4) => {
                    u32::from_str_radix(ip_hex, 16).ok().map(u32::from_be) == Some(u32::from(v4))
                }
                std::net::IpAddr::V6(_) => false,
            };
            if theirs_wildcard || addr.ip().is_unspecified() || same_v4 {
                return Err(std::io::Error::from(std::io::ErrorKind::AddrInUse));
            }
        }
    }
    Ok(())
}

async fn run_shard(
    shard: Rc<Shard>,
    inbox: flume::Receiver<MeshMsg>,
    (addr, mqtt_addr): (SocketAddr, SocketAddr),
    ready: std::sync::mpsc::Sender<Result<(SocketAddr, SocketAddr), String>>,
) {
    // Listeners use SO_REUSEPORT so that every shard can bind the port; that would also let a
    // second server on the same port share it silently. Shard 0 proves each port is free first.
    if shard.id == 0 {
        for (a, key) in [(addr, "http.listen"), (mqtt_addr, "mqtt.listen")] {
            if let Err(e) = port_is_free(a) {
                let _ = ready.send(Err(format!(
                    "cannot listen on {a} (`{key}`): {e}; is another process using the port?"
                )));
                return;
            }
        }
    }
    let listener = match glommio::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "cannot listen on {addr} (`http.listen`): {e}; is another process using the port?"
            )));
            return;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    let mqtt_listener = match glommio::net::TcpListener::bind(mqtt_addr) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "cannot listen on {mqtt_addr} (`mqtt.listen`): {e}; is another process using the port?"
            )));
            return;
        }
    };
    let mqtt_local = mqtt_listener.local_addr().unwrap_or(mqtt_addr);
    crate::mqtt::start(&shard);
    let mqtt_task = glommio::spawn_local(crate::mqtt::listener::accept_loop(
        shard.clone(),
        mqtt_listener,
    ));
    let (stop_tx, stop_rx) = glommio::channels::local_channel::new_bounded::<()>(1);
    let inbox_task =
        glommio::spawn_local(super::inbox::run_inbox(shard.clone(), inbox, stop_tx)).detach();
    let accept_task =
        glommio::spawn_local(crate::http::server::accept_loop(shard.clone(), listener));
    shard.node.serving[shard.id].store(true, Ordering::Release);
    let _ = ready.send(Ok((local, mqtt_local)));

    let _ = stop_rx.recv().await;
    shard.draining.set(true);
    shard.node.serving[shard.id].store(false, Ordering::Release);
    drop(accept_task);
    drop(mqtt_task);
    let deadline = std::time::Instant::now() + DRAIN_WAIT;
    while shard.in_flight.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    crate::mqtt::drain(&shard).await;
    drop(inbox_task);
}
