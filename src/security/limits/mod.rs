//! Admission limits, each shard on its own: a request rate per client address and per user
//! (token buckets), open connections per address (HTTP and MQTT apart), and the publish rate
//! of each MQTT connection. Nothing here is shared between shards on the hot path: a check is
//! a map lookup and a few arithmetic operations on the shard's own state. What every shard
//! shares is only the counters `/status` shows, bumped when a limit is hit (`NodeLimits`).
//!
//! A front end asks once per connection for its `Client` (the address, its key, whether it is
//! exempt), then `admit(Key::Ip(&client))` per request; code that knows the user behind a
//! request asks `admit(Key::User(name))` as well.

pub mod addr;
pub mod bucket;
pub mod config;
pub mod conns;

use addr::{Cidr, IpKey};
use bucket::{Bucket, Buckets, Rate, Taken};
use config::LimitsConfig;
use conns::{ConnCounts, Slot};
use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What a limit is checked for.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// A request from a client address.
    Ip(&'a Client),
    /// A request of an authenticated user.
    User(&'a str),
}

/// A client address as the limits see it, worked out once per connection.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub ip: IpAddr,
    key: IpKey,
    /// In `limits.exempt`: no per-address limit applies.
    pub exempt: bool,
}

/// A request refused for its rate: the time until the bucket holds a token again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub wait_ns: u64,
}

impl Refused {
    /// Whole seconds until a token is there (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self) -> u32 {
        self.wait_ns
            .div_ceil(1_000_000_000)
            .clamp(1, u32::MAX as u64) as u32
    }
}

/// One shard's limits.
pub struct ShardLimits {
    shard: usize,
    node: Arc<NodeLimits>,
    epoch: Instant,
    exempt: Vec<Cidr>,
    /// `None` for a limit that is off.
    requests: Option<RefCell<Buckets<IpKey>>>,
    users: Option<RefCell<Buckets<String>>>,
    http_conns: Option<Rc<ConnCounts>>,
    mqtt_conns: Option<Rc<ConnCounts>>,
    publish_rate: Option<Rate>,
}

/// Which listener a connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Http,
    Mqtt,
}

impl ShardLimits {
    /// The limits of shard `shard` as `cfg` sets them (validated already).
    pub fn new(cfg: &LimitsConfig, shard: usize, node: Arc<NodeLimits>) -> Rc<ShardLimits> {
        let conns = |max| (max > 0).then(|| ConnCounts::new(max));
        Rc::new(ShardLimits {
            shard,
            node,
            epoch: Instant::now(),
            exempt: cfg.exempt_blocks().unwrap_or_default(),
            requests: buckets(cfg.http_requests_per_sec, cfg.http_burst, cfg.max_tracked),
            users: buckets(cfg.user_requests_per_sec, cfg.user_burst, cfg.max_tracked),
            http_conns: conns(cfg.http_connections_per_ip),
            mqtt_conns: conns(cfg.mqtt_connections_per_ip),
            publish_rate: Rate::new(cfg.mqtt_publishes_per_sec, cfg.mqtt_publish_burst),
        })
    }

    /// The client at `ip` (`None`: the address could not be read; counted as `::`).
    pub fn client(&self, ip: Option<IpAddr>) -> Client {
        let ip = ip.unwrap_or(addr::UNKNOWN);
        Client {
            ip,
            key: IpKey::of(ip),
            exempt: self.exempt.iter().any(|c| c.contains(ip)),
        }
    }

    /// Nanoseconds since this shard's limits were made (the buckets' clock).
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Takes a request token for `key`: the client address's bucket or the user's.
    pub fn admit(&self, key: Key<'_>) -> Result<(), Refused> {
        let stats = self.stats();
        let (taken, refused) = match key {
            Key::Ip(c) => {
                let Some(b) = self.requests.as_ref().filter(|_| !c.exempt) else {
                    return Ok(());
                };
                let mut b = b.borrow_mut();
                let before = b.len();
                let t = b.take(&c.key, self.now_ns());
                if b.len() != before {
                    stats.tracked_ips.store(b.len(), Ordering::Relaxed);
                }
                (t, &stats.http_requests_refused)
            }
            Key::User(name) => {
                let Some(b) = &self.users else {
                    return Ok(());
                };
                let t = b.borrow_mut().take(name, self.now_ns());
                (t, &stats.user_requests_refused)
            }
        };
        match taken {
            Taken::Ok => Ok(()),
            Taken::Overflow => {
                bump(&stats.overflow_requests);
                Ok(())
            }
            Taken::Refused { wait_ns, overflow } => {
                if overflow {
                    bump(&stats.overflow_requests);
                }
                bump(refused);
                Err(Refused { wait_ns })
            }
        }
    }

    /// Counts a new connection of `client` to `listener`; `None` (counted) when the address
    /// already has as many open on this shard as the listener's limit allows.
    pub fn connection(&self, listener: Listener, client: &Client) -> Option<Slot> {
        let counts = match listener {
            Listener::Http => &self.http_conns,
            Listener::Mqtt => &self.mqtt_conns,
        };
        let Some(counts) = counts.as_ref().filter(|_| !client.exempt) else {
            return Some(Slot::uncounted(client.key));
        };
        let slot = counts.open(client.key);
        if slot.is_none() {
            let stats = self.stats();
            bump(match listener {
                Listener::Http => &stats.http_connections_refused,
                Listener::Mqtt => &stats.mqtt_connections_refused,
            });
        }
        slot
    }

    /// The publish bucket of a new MQTT connection from `client` (`None`: unlimited).
    pub fn publish_limit(&self, client: &Client) -> Option<PublishLimit> {
        let rate = self.publish_rate.filter(|_| !client.exempt)?;
        Some(PublishLimit {
            rate,
            bucket: Bucket::full(&rate, self.now_ns()),
        })
    }

    /// Every shard's counters, summed, for `/status`.
    pub fn node_status_json(&self) -> serde_json::Value {
        self.node.status_json()
    }

    /// This shard's counters.
    pub fn stats(&self) -> &ShardStats {
        &self.node.shards[self.shard]
    }
}

/// A map of buckets at `per_sec` (`None` when 0: off).
fn buckets<K: std::hash::Hash + Eq>(
    per_sec: u32,
    burst: u32,
    max: usize,
) -> Option<RefCell<Buckets<K>>> {
    Rate::new(per_sec, burst).map(|r| RefCell::new(Buckets::new(r, max)))
}

/// The publish rate of one MQTT connection.
pub struct PublishLimit {
    rate: Rate,
    bucket: Bucket,
}

impl PublishLimit {
    /// Takes a token; `Err` holds the nanoseconds until one is there.
    pub fn take(&mut self, limits: &ShardLimits) -> Result<(), u64> {
        self.bucket.take(&self.rate, limits.now_ns())
    }
}

/// The limits' counters of every shard, for `/status`.
pub struct NodeLimits {
    shards: Vec<ShardStats>,
}

/// One shard's counters: each written by its shard only, when a limit is hit.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// 429: an address over `limits.http_requests_per_sec`.
    pub http_requests_refused: AtomicU64,
    /// Requests of a user over `limits.user_requests_per_sec`.
    pub user_requests_refused: AtomicU64,
    /// Requests counted against the overflow bucket (the address map was full).
    pub overflow_requests: AtomicU64,
    pub http_connections_refused: AtomicU64,
    pub mqtt_connections_refused: AtomicU64,
    /// QoS 0 publishes dropped over `limits.mqtt_publishes_per_sec`.
    pub mqtt_publishes_dropped: AtomicU64,
    /// QoS 1/2 publishes of 5.0 clients answered 0x97 (quota exceeded).
    pub mqtt_publishes_refused: AtomicU64,
    /// QoS 1/2 publishes of 3.1.1 clients held back until the rate allowed them.
    pub mqtt_publishes_delayed: AtomicU64,
    /// 421: a Host that is not one of this node's names.
    pub hosts_refused: AtomicU64,
    /// 403: a WebSocket upgrade from a foreign Origin.
    pub origins_refused: AtomicU64,
    /// 415: a state-changing request without a JSON body type.
    pub content_types_refused: AtomicU64,
    /// Addresses with a request bucket on this shard now.
    pub tracked_ips: AtomicUsize,
}

impl NodeLimits {
    pub fn new(shards: usize) -> NodeLimits {
        NodeLimits {
            shards: (0..shards).map(|_| ShardStats::default()).collect(),
        }
    }

    /// The counters summed over the shards, as JSON for `/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let sum = |f: fn(&ShardStats) -> &AtomicU64| -> u64 {
            self.shards
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum()
        };
        serde_json::json!({
            "http_requests_refused": sum(|s| &s.http_requests_refused),
            "user_requests_refused": sum(|s| &s.user_requests_refused),
            "overflow_requests": sum(|s| &s.overflow_requests),
            "http_connections_refused": sum(|s| &s.http_connections_refused),
            "mqtt_connections_refused": sum(|s| &s.mqtt_connections_refused),
            "mqtt_publishes_dropped": sum(|s| &s.mqtt_publishes_dropped),
            "mqtt_publishes_refused": sum(|s| &s.mqtt_publishes_refused),
            "mqtt_publishes_delayed": sum(|s| &s.mqtt_publishes_delayed),
            "hosts_refused": sum(|s| &s.hosts_refused),
            "origins_refused": sum(|s| &s.origins_refused),
            "content_types_refused": sum(|s| &s.content_types_refused),
            "tracked_ips": self.shards.iter().map(|s| s.tracked_ips.load(Ordering::Relaxed)).collect::<Vec<_>>(),
        })
    }
}

/// Bumps a counter (only its shard writes it: no contention).
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(toml: &str) -> Rc<ShardLimits> {
        let cfg = crate::config::Config::from_toml(toml, "t").unwrap();
        ShardLimits::new(&cfg.limits, 0, Arc::new(NodeLimits::new(1)))
    }

    #[test]
    fn addresses_and_users_are_limited_apart_and_exempt_addresses_not_at_all() {
        let l = limits("[limits]\nhttp_requests_per_sec = 1\nhttp_burst = 1\nuser_requests_per_sec = 1\nuser_burst = 2\n");
        let remote = l.client(Some("192.0.2.1".parse().unwrap()));
        let local = l.client(Some("127.0.0.1".parse().unwrap()));
        assert!(!remote.exempt && local.exempt);
        assert_eq!(l.admit(Key::Ip(&remote)), Ok(()));
        let r = l.admit(Key::Ip(&remote)).unwrap_err();
        assert_eq!(r.retry_after_secs(), 1);
        for _ in 0..100 {
            assert_eq!(l.admit(Key::Ip(&local)), Ok(()));
        }
        assert_eq!(l.admit(Key::User("alice")), Ok(()));
        assert_eq!(l.admit(Key::User("alice")), Ok(()));
        assert!(l.admit(Key::User("alice")).is_err());
        assert_eq!(l.admit(Key::User("bob")), Ok(()));
        let s = l.node.status_json();
        assert_eq!(s["http_requests_refused"], 1);
        assert_eq!(s["user_requests_refused"], 1);
        assert_eq!(s["tracked_ips"][0], 1, "exempt addresses take no bucket");
    }

    #[test]
    fn connections_are_counted_per_listener() {
        let l = limits(
            "[limits]\nhttp_connections_per_ip = 1\nmqtt_connections_per_ip = 1\nexempt = []\n",
        );
        let c = l.client(Some("127.0.0.1".parse().unwrap()));
        let h = l.connection(Listener::Http, &c).unwrap();
        assert!(l.connection(Listener::Http, &c).is_none());
        let _m = l.connection(Listener::Mqtt, &c).unwrap();
        drop(h);
        assert!(l.connection(Listener::Http, &c).is_some());
        assert_eq!(l.node.status_json()["http_connections_refused"], 1);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(Refused { wait_ns: 1 }.retry_after_secs(), 1);
        assert_eq!(
            Refused {
                wait_ns: 1_000_000_001
            }
            .retry_after_secs(),
            2
        );
    }
}
