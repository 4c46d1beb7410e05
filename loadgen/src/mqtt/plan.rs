//! The MQTT run plan built from the flags: every publisher (QoS, rendered topics, how many
//! subscribers each topic fans out to), every subscriber (rendered filter), pacing, and the
//! state shared by the worker threads (readiness, start time, delivery counters).

use super::codec::Version;
use super::tracker::topic_matches;
use crate::cli::{MqttArgs, Rate};
use crate::clock::ns;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};

pub struct PubPlan {
    pub qos: u8,
    pub topics: Vec<Vec<u8>>,
    /// Subscribers matching each topic.
    pub fanout: Vec<u64>,
    /// Open loop: ns between intended sends, and this publisher's phase shift.
    pub interval_ns: Option<f64>,
    pub offset_ns: f64,
    /// Measured messages after which this publisher stops.
    pub quota: Option<u64>,
}

pub struct SubPlan {
    pub filter: String,
}

pub struct Plan {
    pub version: Version,
    pub addr: SocketAddr,
    pub keepalive: u16,
    /// Session expiry interval the subscribers ask for (5.0; 0 = none).
    pub sub_session_expiry: u32,
    pub client_prefix: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub nonce: u32,
    pub publishers: Vec<PubPlan>,
    pub subscribers: Vec<SubPlan>,
    pub sub_qos: u8,
    pub payload_bytes: usize,
    pub retain: bool,
    pub inflight: usize,
    pub warmup_ns: u64,
    pub duration_ns: u64,
    pub drain_ns: u64,
    pub timeout_ns: u64,
    pub connect_timeout_ns: u64,
    pub busy_poll: bool,
}

pub struct Shared {
    /// Clients that finished CONNECT (and SUBSCRIBE).
    pub ready: AtomicUsize,
    pub start_ns: AtomicU64,
    pub abort: AtomicBool,
    pub fatal: Mutex<Option<String>>,
    pub progress: Arc<Progress>,
    /// Per publisher: deliveries owed (published × matching subscribers) and unique
    /// deliveries made; the closed-loop window and the drain use them.
    pub expected: Vec<AtomicU64>,
    pub delivered: Vec<AtomicU64>,
    /// Worker threads, workers that stopped publishing, and when the last one did.
    pub workers: usize,
    pub done_publishing: AtomicUsize,
    pub all_stopped_ns: AtomicU64,
}

impl Shared {
    pub fn fail(&self, msg: String) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(msg);
        }
        self.abort.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn parse_qos_list(text: &str) -> Result<Vec<u8>> {
    let list: Vec<u8> = text
        .split(',')
        .map(|q| match q.trim() {
            "0" => Ok(0),
            "1" => Ok(1),
            "2" => Ok(2),
            other => bail!("--qos {text}: '{other}' is not 0, 1 or 2"),
        })
        .collect::<Result<_>>()?;
    Ok(list)
}

pub fn build(a: &MqttArgs, addr: SocketAddr, nonce: u32) -> Result<Plan> {
    let version = if a.protocol.starts_with('5') {
        Version::V5
    } else {
        Version::V4
    };
    if a.publishers == 0 && a.subscribers == 0 {
        bail!("--publishers and --subscribers are both 0: nothing to do");
    }
    if a.payload_bytes < super::tracker::STAMP_BYTES {
        bail!(
            "--payload-bytes {} is too small: at least {} bytes carry the sequence and send time",
            a.payload_bytes,
            super::tracker::STAMP_BYTES
        );
    }
    if a.sub_session_expiry > 0 && version != Version::V5 {
        bail!("--sub-session-expiry needs --protocol 5 (3.1.1 has no session expiry)");
    }
    if a.topics_per_pub == 0 || a.inflight == 0 || a.inflight > 65_000 {
        bail!("--topics-per-pub must be at least 1 and --inflight between 1 and 65000");
    }
    for (flag, t) in [("--topic", &a.topic), ("--filter", &a.filter)] {
        if t.is_empty() || t.contains('\0') {
            bail!("{flag} '{t}' is not a valid MQTT topic");
        }
    }
    if a.topic.contains('+') || a.topic.contains('#') {
        bail!(
            "--topic '{}' contains a wildcard: publishers need a concrete topic",
            a.topic
        );
    }
    let qos = parse_qos_list(&a.qos)?;
    let subscribers: Vec<SubPlan> = (0..a.subscribers)
        .map(|s| SubPlan {
            filter: a.filter.replace("{sub}", &s.to_string()),
        })
        .collect();
    let n = a.publishers.max(1) as f64;
    let publishers = (0..a.publishers)
        .map(|p| {
            let topics: Vec<String> = (0..a.topics_per_pub)
                .map(|k| {
                    a.topic
                        .replace("{pub}", &p.to_string())
                        .replace("{n}", &k.to_string())
                })
                .collect();
            let fanout = topics
                .iter()
                .map(|t| {
                    subscribers
                        .iter()
                        .filter(|s| topic_matches(&s.filter, t))
                        .count() as u64
                })
                .collect();
            let (interval_ns, offset_ns) = match a.run.rate {
                Rate::Max => (None, 0.0),
                Rate::PerSec(r) => (Some(1e9 * n / r), p as f64 * 1e9 / r),
            };
            let quota = a
                .run
                .requests
                .map(|q| q / a.publishers as u64 + u64::from((p as u64) < q % a.publishers as u64));
            PubPlan {
                qos: qos[p % qos.len()],
                topics: topics.into_iter().map(String::into_bytes).collect(),
                fanout,
                interval_ns,
                offset_ns,
                quota,
            }
        })
        .collect();
    Ok(Plan {
        version,
        addr,
        keepalive: a.keepalive,
        sub_session_expiry: a.sub_session_expiry,
        client_prefix: a.client_prefix.clone(),
        username: a.username.clone(),
        password: a.password.clone(),
        nonce,
        publishers,
        subscribers,
        sub_qos: *qos.iter().max().context("--qos is empty")?,
        payload_bytes: a.payload_bytes,
        retain: a.retain,
        inflight: a.inflight,
        warmup_ns: ns(a.run.warmup),
        duration_ns: ns(a.run.duration),
        drain_ns: ns(a.drain),
        timeout_ns: ns(a.run.timeout),
        connect_timeout_ns: ns(a.run.connect_timeout),
        busy_poll: a.run.busy_poll,
    })
}
