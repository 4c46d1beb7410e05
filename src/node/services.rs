//! What runs on each shard beside the runtime: the HTTP and MQTT listeners (and their TLS
//! twins when `[tls]` has a certificate), the shard's broker, and on shard 0 the components' scheduled jobs. Shard 0 binds first so that a port 0
//! in the config resolves to one port that every later shard then shares (SO_REUSEPORT); it
//! also proves each port is free, since SO_REUSEPORT would otherwise let a second server share
//! a port silently.

use crate::app::{AppShard, AppStats, Jobs, NodeCaches, Registry};
use crate::cluster::state::ClusterState;
use crate::http::metrics::{gather, gather::NodeMetrics, ShardMetrics};
use crate::http::shard::HttpShard;
use crate::mqtt::{MqttShard, NodeMqtt};
use crate::net::tls::Tls;
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
    /// The HTTPS and MQTT-over-TLS listeners (TLS on).
    pub https: Option<SocketAddr>,
    pub mqtts: Option<SocketAddr>,
}

/// What every shard's services share.
pub struct Shared {
    pub listen: Arc<Mutex<Listen>>,
    pub mqtt: Arc<NodeMqtt>,
    pub registry: Arc<Registry>,
    pub app_stats: Arc<AppStats>,
    pub caches: Arc<NodeCaches>,
    pub cluster: Option<Arc<ClusterState>>,
    /// The node's TLS (`None`: off).
    pub tls: Option<Arc<Tls>>,
    /// The admission limits' counters of every shard.
    pub limits: Arc<NodeLimits>,
    /// The files of `http.static_dir`.
    pub statics: Arc<crate::http::statics::StaticFiles>,
    /// The shards' metrics inboxes.
    pub metrics: Arc<NodeMetrics>,
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
            tls,
            limits,
            statics,
            metrics,
        } = &shared;
        let addrs = *listen.lock().unwrap_or_else(|e| e.into_inner());
        let listeners = bind(shard.id, addrs)?;
        if shard.id == 0 {
            *listen.lock().unwrap_or_else(|e| e.into_inner()) = listeners.bound(addrs);
        }
        let limits = ShardLimits::new(&shard.config().limits, shard.id, limits.clone());
        let security = Rc::new(crate::security::ShardSecurity::new(shard.clone()));
        let broker = MqttShard::start(
            shard.clone(),
            mqtt.clone(),
            limits.clone(),
            security.clone(),
        )?;
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
            security,
            limits,
            hosts: crate::http::hosts::AllowedHosts::new(&shard.config().http.allowed_hosts),
            cors: crate::http::cors::Cors::new(&shard.config().http.cors),
            statics: statics.clone(),
            metrics: ShardMetrics::new(metrics.clone()),
            live_streams: Default::default(),
        });
        let metrics_inbox = metrics
            .take_inbox(shard.id)
            .ok_or_else(|| format!("the metrics inbox of shard {} was taken twice", shard.id))?;
        glommio::spawn_local(gather::serve_inbox(http.clone(), metrics_inbox)).detach();
        let accepting = listeners.serve(&http, &broker, tls);
        Ok(Box::new(ShardServices {
            accepting: RefCell::new(accepting),
            http,
            broker,
            jobs,
        }) as Box<dyn Services>)
    })
}

/// One shard's listeners.
struct Listeners {
    http: TcpListener,
    mqtt: TcpListener,
    https: Option<TcpListener>,
    mqtts: Option<TcpListener>,
}

impl Listeners {
    /// The addresses they got (port 0 resolved).
    fn bound(&self, asked: Listen) -> Listen {
        let at = |l: &TcpListener, a: SocketAddr| l.local_addr().unwrap_or(a);
        let at_tls = |l: &Option<TcpListener>, a: Option<SocketAddr>| {
            l.as_ref().zip(a).map(|(l, a)| at(l, a))
        };
        Listen {
            http: at(&self.http, asked.http),
            mqtt: at(&self.mqtt, asked.mqtt),
            https: at_tls(&self.https, asked.https),
            mqtts: at_tls(&self.mqtts, asked.mqtts),
        }
    }

    /// Starts an accept loop on each; dropping the tasks closes the listeners.
    fn serve(
        self,
        http: &Rc<HttpShard>,
        broker: &Rc<MqttShard>,
        tls: &Option<Arc<Tls>>,
    ) -> Vec<Task<()>> {
        use crate::http::server::accept_loop as http_loop;
        use crate::mqtt::listener::accept_loop as mqtt_loop;
        let mut tasks = vec![
            glommio::spawn_local(http_loop(http.clone(), self.http, None)),
            glommio::spawn_local(mqtt_loop(broker.clone(), self.mqtt, None)),
        ];
        if let (Some(l), Some(tls)) = (self.https, tls) {
            tasks.push(glommio::spawn_local(http_loop(
                http.clone(),
                l,
                Some(tls.clone()),
            )));
        }
        if let (Some(l), Some(tls)) = (self.mqtts, tls) {
            tasks.push(glommio::spawn_local(mqtt_loop(
                broker.clone(),
                l,
                Some(tls.clone()),
            )));
        }
        tasks
    }
}

/// Binds this shard's listeners: HTTP and MQTT, and with TLS on, HTTPS and MQTT over TLS.
fn bind(shard: usize, addrs: Listen) -> Result<Listeners, String> {
    let busy = |a: SocketAddr, key: &str, e: &dyn std::fmt::Display| {
        format!("cannot listen on {a} (`{key}`): {e}; is another process using the port?")
    };
    let all = [
        (Some(addrs.http), "http.listen"),
        (Some(addrs.mqtt), "mqtt.listen"),
        (addrs.https, "tls.https_listen"),
        (addrs.mqtts, "tls.mqtt_listen"),
    ];
    if shard == 0 {
        for (a, key) in all.iter().filter_map(|(a, k)| a.map(|a| (a, *k))) {
            port_is_free(a).map_err(|e| busy(a, key, &e))?;
        }
    }
    let one = |a: SocketAddr, key: &str| TcpListener::bind(a).map_err(|e| busy(a, key, &e));
    let maybe = |a: Option<SocketAddr>, key: &str| a.map(|a| one(a, key)).transpose();
    Ok(Listeners {
        http: one(addrs.http, "http.listen")?,
        mqtt: one(addrs.mqtt, "mqtt.listen")?,
        https: maybe(addrs.https, "tls.https_listen")?,
        mqtts: maybe(addrs.mqtts, "tls.mqtt_listen")?,
    })
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
