//! A hook on the publishes of this broker's clients, installed on each shard's broker by the
//! composition root and implemented above the broker (components' MQTT handlers). It sees a
//! client's publish (TCP or WebSocket) on the shard the client is connected to, before the
//! publish is routed or written to a table topic, and lets it through (changed or not), drops
//! it, or refuses it: a 5.0 client gets reason 0x83 in its PUBACK / PUBREC; a 3.1.1 client,
//! which cannot be told, is acknowledged and the message is not delivered. Publishes the node
//! makes itself (components, wills, peers' forwards) do not pass through it.
//!
//! A broker without a hook pays one check per publish.

use super::broker::Commits;
use super::handler::publish_message;
use super::message::Message;
use super::MqttShard;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// The 5.0 reason code of a publish a hook refused (implementation specific error).
pub const REASON_REFUSED: u8 = 0x83;

/// What becomes of a client's publish.
pub enum Verdict {
    /// Route this message (the publish as it came, or as the hook changed it).
    Route(Message),
    /// Acknowledge it and deliver it to nobody.
    Drop,
    /// Do not deliver it; a 5.0 client hears `REASON_REFUSED`.
    Refuse,
}

/// Code above the broker that sees clients' publishes.
pub trait PublishHook {
    /// Whether the hook wants to see a publish to `topic` (called for every client publish:
    /// cheap, no allocation).
    fn wants(&self, topic: &str) -> bool;

    /// Decides what becomes of a publish it wants.
    fn run(&self, msg: Message) -> Pin<Box<dyn Future<Output = Verdict>>>;
}

impl MqttShard {
    /// Installs the hook this shard's clients' publishes pass through (once).
    pub fn set_publish_hook(&self, hook: Rc<dyn PublishHook>) {
        if self.publish_hook.set(hook).is_err() {
            tracing::error!(
                shard = self.id,
                "a second MQTT publish hook was not installed"
            );
        }
    }
}

/// Publishes a client's message: through the hook when one wants it, then as
/// `publish_message` does. Returns the reason code and the commits to wait for.
pub async fn publish_from_client(shard: &MqttShard, msg: Message, wait: bool) -> (u8, Commits) {
    let msg = match shard.publish_hook.get() {
        Some(hook) if hook.wants(&msg.topic) => match hook.run(msg).await {
            Verdict::Route(m) => m,
            Verdict::Drop => return (0, Commits::default()),
            Verdict::Refuse => return (REASON_REFUSED, Commits::default()),
        },
        _ => msg,
    };
    publish_message(shard, msg, wait).await
}
