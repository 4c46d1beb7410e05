//! A shard's broker: the context every MQTT function of a shard runs with (the runtime shard
//! it lives on, this shard's sessions and subscriptions, the node-wide MQTT state), how it
//! starts (stored sessions, summary, retained count, change-feed listener, inbox) and how it
//! drains at shutdown.

use super::broker::{self, Broker};
use super::mesh::MqttMsg;
use super::{packet, retained, store, tables, NodeMqtt};
use crate::runtime::shard::Shard;
use crate::security::limits::ShardLimits;
use crate::security::ShardSecurity;
use std::cell::Cell;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::Arc;

/// One shard's MQTT context. Derefs to the runtime shard it runs on.
pub struct MqttShard {
    pub base: Rc<Shard>,
    /// This shard's sessions, subscriptions and summary.
    pub mqtt: Broker,
    /// What every shard's broker shares.
    pub mqtt_node: Arc<NodeMqtt>,
    /// State of the generator of client ids assigned to clients that send none.
    pub client_ids: Cell<u64>,
    /// What clients' publishes pass through before they are routed (`hook.rs`), if anything.
    pub publish_hook: std::cell::OnceCell<Rc<dyn super::hook::PublishHook>>,
    /// This shard's admission limits (connections per address, publish rates).
    pub limits: Rc<ShardLimits>,
    /// The shard's users and roles (shared with HTTP), for CONNECT and the topic checks.
    pub security: Rc<ShardSecurity>,
}

impl Deref for MqttShard {
    type Target = Shard;

    fn deref(&self) -> &Shard {
        &self.base
    }
}

impl MqttShard {
    /// Brings up the broker of a shard before it accepts connections: the persist queue, the
    /// stored sessions of this shard (offline, with their queues), the subscription summary as
    /// stored sessions describe it, the retained count, the change-feed listener and the
    /// inbox other shards reach it through.
    pub fn start(
        base: Rc<Shard>,
        mqtt_node: Arc<NodeMqtt>,
        limits: Rc<ShardLimits>,
        security: Rc<ShardSecurity>,
    ) -> Result<Rc<MqttShard>, String> {
        let inbox = mqtt_node
            .take_inbox(base.id)
            .ok_or_else(|| format!("the MQTT inbox of shard {} was taken twice", base.id))?;
        let shard = Rc::new(MqttShard {
            base,
            mqtt: Broker::default(),
            mqtt_node,
            client_ids: Cell::new(0),
            publish_hook: std::cell::OnceCell::new(),
            limits,
            security,
        });
        if let Some(rx) = shard.mqtt.persist_rx.borrow_mut().take() {
            glommio::spawn_local(store::persist_task(shard.clone(), rx)).detach();
        }
        restore_sessions(&shard);
        broker::rebuild_summary_from_disk(&shard);
        retained::count_stored(&shard);
        tables::listen(&shard);
        glommio::spawn_local(run_inbox(shard.clone(), inbox)).detach();
        Ok(shard)
    }

    /// At shutdown, once the listener is closed: tells every connected client to go (5.0:
    /// DISCONNECT 0x8B). Each connection first answers what it has read (a publish in flight
    /// is acknowledged once its copies are committed), then ends. Waits until every
    /// connection of this shard has ended (or `deadline`), then until every MQTT write
    /// queued on this shard is committed.
    pub async fn drain(&self, deadline: std::time::Instant) {
        let sessions: Vec<_> = self.mqtt.sessions.borrow().values().cloned().collect();
        for s in sessions {
            if let Some(link) = &s.st.borrow().link {
                link.close(packet::Fault::ShuttingDown);
            }
        }
        let open = &self.mqtt_node.connections[self.id];
        while open.load(std::sync::atomic::Ordering::Acquire) > 0
            && std::time::Instant::now() < deadline
        {
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
        let left = open.load(std::sync::atomic::Ordering::Acquire);
        if left > 0 {
            tracing::warn!(
                shard = self.id,
                connections = left,
                "MQTT connections still open at the end of the drain"
            );
        }
        if let Err(e) = store::submit_wait(self, self.id, Vec::new()).await {
            tracing::error!(shard = self.id, "MQTT state not flushed at shutdown: {e}");
        }
    }
}

/// Takes back the sessions stored on this shard: offline, with their queues, their
/// subscriptions in the trie, and an expiry timer that starts now.
fn restore_sessions(shard: &Rc<MqttShard>) {
    for s in store::load_sessions(shard) {
        let subs: Vec<_> =
            s.st.borrow()
                .subs
                .iter()
                .map(|(f, o)| (f.clone(), *o))
                .collect();
        for (f, o) in subs {
            broker::add_sub(shard, &s, &f, o);
        }
        shard
            .mqtt
            .sessions
            .borrow_mut()
            .insert(s.client_id.clone(), s.clone());
        let gen = s.st.borrow().generation;
        let expiry = s.st.borrow().expiry_secs;
        let (shard, s) = (shard.clone(), s.clone());
        glommio::spawn_local(async move {
            glommio::timer::sleep(std::time::Duration::from_secs(expiry as u64)).await;
            let idle = {
                let st = s.st.borrow();
                st.generation == gen && st.link.is_none()
            };
            if idle {
                broker::remove_session(&shard, &s).await;
            }
        })
        .detach();
    }
}

/// Serves what other shards (and the replication executor) send this shard's broker.
async fn run_inbox(shard: Rc<MqttShard>, inbox: flume::Receiver<MqttMsg>) {
    while let Ok(msg) = inbox.recv_async().await {
        super::mesh::handle(&shard, msg);
    }
}
