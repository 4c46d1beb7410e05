//! The metrics mesh: how one shard collects what every shard keeps to itself (request
//! counters, its broker's sessions) when `/metrics` is scraped or `/admin/live` ticks. Each
//! shard serves a small bounded inbox of requests for its snapshot; the asking shard copies its
//! own counters directly. Nothing is shared or locked on the request path: the cost is paid at
//! scrape time, once per shard.

use super::requests::RequestCounts;
use crate::http::shard::HttpShard;
use std::rc::Rc;
use std::sync::Mutex;

/// Requests for snapshots a shard's inbox holds; beyond them, a scrape is answered 503.
const INBOX_DEPTH: usize = 16;
/// MQTT clients listed per shard in a snapshot (the admin page shows the first ones).
pub const MAX_CLIENTS_LISTED: usize = 50;

/// A request for a shard's snapshot: where to send it.
type Ask = flume::Sender<ShardSnapshot>;

/// The shards' metrics inboxes, shared by every shard.
pub struct NodeMetrics {
    inboxes: Vec<flume::Sender<Ask>>,
    /// The receiving ends, each taken once by its shard as it starts.
    inbox_rx: Mutex<Vec<Option<flume::Receiver<Ask>>>>,
}

impl NodeMetrics {
    pub fn new(shards: usize) -> NodeMetrics {
        let (inboxes, rx): (Vec<_>, Vec<_>) = (0..shards)
            .map(|_| {
                let (tx, rx) = flume::bounded(INBOX_DEPTH);
                (tx, Some(rx))
            })
            .unzip();
        NodeMetrics {
            inboxes,
            inbox_rx: Mutex::new(rx),
        }
    }

    /// Takes shard `s`'s inbox (once).
    pub fn take_inbox(&self, s: usize) -> Option<flume::Receiver<Ask>> {
        self.inbox_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(s)
            .and_then(Option::take)
    }
}

/// One MQTT session as the admin page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MqttClient {
    pub client_id: String,
    pub shard: usize,
    pub connected: bool,
    pub persistent: bool,
    pub subscriptions: usize,
    /// Messages waiting in its queue.
    pub queued: usize,
}

/// What one shard keeps to itself, copied.
pub struct ShardSnapshot {
    pub shard: usize,
    pub requests: RequestCounts,
    /// HTTP requests being handled now.
    pub in_flight: usize,
    pub mqtt_sessions: usize,
    pub mqtt_subscriptions: usize,
    /// The first `MAX_CLIENTS_LISTED` sessions.
    pub mqtt_clients: Vec<MqttClient>,
}

/// This shard's snapshot.
pub fn local(shard: &HttpShard) -> ShardSnapshot {
    let sessions = shard.mqtt.mqtt.sessions.borrow();
    let mut subscriptions = 0;
    let mut clients = Vec::new();
    for s in sessions.values() {
        let st = s.st.borrow();
        subscriptions += st.subs.len();
        if clients.len() < MAX_CLIENTS_LISTED {
            clients.push(MqttClient {
                client_id: s.client_id.to_string(),
                shard: shard.id,
                connected: st.link.is_some(),
                persistent: st.expiry_secs > 0,
                subscriptions: st.subs.len(),
                queued: st.queue.len(),
            });
        }
    }
    ShardSnapshot {
        shard: shard.id,
        requests: shard.metrics.requests.snapshot(),
        in_flight: shard.in_flight.get(),
        mqtt_sessions: sessions.len(),
        mqtt_subscriptions: subscriptions,
        mqtt_clients: clients,
    }
}

/// Serves the other shards' requests for this shard's snapshot until the node stops.
pub async fn serve_inbox(shard: Rc<HttpShard>, inbox: flume::Receiver<Ask>) {
    while let Ok(reply) = inbox.recv_async().await {
        let _ = reply.send(local(&shard));
    }
}

/// Why a gathering failed.
#[derive(Debug)]
pub enum GatherError {
    /// A shard's inbox is full (too many scrapes at once).
    Busy,
    ShuttingDown,
}

/// Every shard's snapshot, in shard order.
pub async fn all(shard: &HttpShard) -> Result<Vec<ShardSnapshot>, GatherError> {
    let node = &shard.metrics.node;
    let mut waiting = Vec::with_capacity(node.inboxes.len());
    for (s, inbox) in node.inboxes.iter().enumerate() {
        if s == shard.id {
            continue;
        }
        let (reply, wait) = flume::bounded(1);
        inbox.try_send(reply).map_err(|e| match e {
            flume::TrySendError::Full(_) => GatherError::Busy,
            flume::TrySendError::Disconnected(_) => GatherError::ShuttingDown,
        })?;
        waiting.push(wait);
    }
    let mut out = vec![local(shard)];
    for wait in waiting {
        out.push(
            wait.recv_async()
                .await
                .map_err(|_| GatherError::ShuttingDown)?,
        );
    }
    out.sort_by_key(|s| s.shard);
    Ok(out)
}
