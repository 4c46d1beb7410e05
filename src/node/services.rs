//! What runs on each shard beside the runtime: the HTTP and MQTT listeners, the shard's
//! broker, and on shard 0 the components' scheduled jobs. Shard 0 binds first so that a port 0
//! in the config resolves to one port that every later shard then shares (SO_REUSEPORT); it
//! also proves each port is free, since SO_REUSEPORT would otherwise let a second server share
//! a port silently.

use crate::app::{AppShard, AppStats, Jobs, NodeCaches, Registry};
use crate::cluster::state::ClusterState;
use crate::http::shard::HttpShard;
use crate::mqtt::{MqttShard, NodeMqtt};
use crate::runtime::executor::{Services, StartServices};
use crate::runtime::preflight::port_is_free;
use crate::runtime::shard::Shard;
use crate::security::limits::{NodeLimits, ShardLimits};
use glommio::net::TcpListener;
use glommio::Task;
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The addresses the listeners bind: as configured until shard 0 has bound them, then the
/// addresses it got.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    pub http: SocketAddr,
    pub mqtt: SocketAddr,
}

/// What every shard's services share.
pub struct Shared {
    pub listen: Arc<Mutex<Listen>>,
    pub mqtt: Arc<NodeMqtt>,
    pub registry: Arc<Registry>,
    pub app_stats: Arc<AppStats>,
    pub caches: Arc<NodeCaches>,
    pub cluster: Option<Arc<ClusterState>>,
    /// The admission limits' counters of every shard.
    pub limits: Arc<NodeLimits>,
}

/// The services of every shard, built on each shard's thread as it starts.
pub fn start_services(shared: Shared) -> StartServices {
    Arc::new(move |shard: &Rc<Shard>| {
        let Shared {
            listen,
            mqtt,
            registry,
            app_stats,
            caches,
            cluster,
            limits,
        } = &shared;
        let addrs = *listen.lock().unwrap_or_else(|e| e.into_inner());
        let (http_listener, mqtt_listener) = bind(shard.id, addrs)?;
        if shard.id == 0 {
            let bound = Listen {
                http: http_listener.local_addr().unwrap_or(addrs.http),
                mqtt: mqtt_listener.local_addr().unwrap_or(addrs.mqtt),
            };
            *listen.lock().unwrap_or_else(|e| e.into_inner()) = bound;
        }
        let limits = ShardLimits::new(&shard.config().limits, shard.id, limits.clone());
        let broker = MqttShard::start(shard.clone(), mqtt.clone(), limits.clone())?;
        let app = Rc::new(AppShard::new(
            broker.clone(),
            registry.clone(),
            app_stats.clone(),
            caches.clone(),
        ));
        crate::app::cache::start(&app)?;
        let jobs = Jobs::start(&app, cluster.clone());
        if let Some(hook) = crate::app::publish_hook(&app) {
            broker.set_publish_hook(hook);
        }
        crate::app::start_change_handlers(&app);
        let http = Rc::new(HttpShard {
            base: shard.clone(),
            mqtt: broker.clone(),
            app,
            cluster: cluster.clone(),
            limits,
            hosts: crate::http::hosts::AllowedHosts::new(&shard.config().http.allowed_hosts),
        });
        let mqtt_accept = glommio::spawn_local(crate::mqtt::listener::accept_loop(
            broker.clone(),
            mqtt_listener,
        ));
        let http_accept = glommio::spawn_local(crate::http::server::accept_loop(
            http.clone(),
            http_listener,
        ));
        Ok(Box::new(ShardServices {
            accepting: RefCell::new(vec![http_accept, mqtt_accept]),
            http,
            broker,
            jobs,
        }) as Box<dyn Services>)
    })
}

/// Binds this shard's HTTP and MQTT listeners.
fn bind(shard: usize, addrs: Listen) -> Result<(TcpListener, TcpListener), String> {
    let busy = |a: SocketAddr, key: &str, e: &dyn std::fmt::Display| {
        format!("cannot listen on {a} (`{key}`): {e}; is another process using the port?")
    };
    if shard == 0 {
        for (a, key) in [(addrs.http, "http.listen"), (addrs.mqtt, "mqtt.listen")] {
            port_is_free(a).map_err(|e| busy(a, key, &e))?;
        }
    }
    let http = TcpListener::bind(addrs.http).map_err(|e| busy(addrs.http, "http.listen", &e))?;
    let mqtt = TcpListener::bind(addrs.mqtt).map_err(|e| busy(addrs.mqtt, "mqtt.listen", &e))?;
    Ok((http, mqtt))
}

/// One shard's front ends.
struct ShardServices {
    /// The accept loops; dropping them closes the listeners.
    accepting: RefCell<Vec<Task<()>>>,
    http: Rc<HttpShard>,
    broker: Rc<MqttShard>,
    /// The components' scheduled jobs (shard 0).
    jobs: Jobs,
}

impl Services for ShardServices {
    fn stop_accepting(&self) {
        self.accepting.borrow_mut().clear();
        self.jobs.stop_ticking();
    }

    fn drain(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(async move {
            futures_lite::future::zip(
                crate::http::server::drain(&self.http, deadline),
                self.jobs.drain(deadline),
            )
            .await;
            self.broker.drain(deadline).await;
        })
    }
}
