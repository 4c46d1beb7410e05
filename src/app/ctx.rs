//! What a handler works with: the tables of this node (reads local, writes on the owner's
//! writer), atomic multi-record writes, MQTT publishing, the component's shard-local state,
//! and a cooperative yield for long work.

use super::shard::AppShard;
use super::table::{Batch, Table};
use super::Error;
use crate::mqtt::message::Message;
use std::rc::Rc;
use std::sync::Arc;

/// A handler's view of the node, on the shard it runs on. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) shard: Rc<AppShard>,
    pub(crate) component: usize,
}

impl Ctx {
    pub(crate) fn new(shard: Rc<AppShard>, component: usize) -> Ctx {
        Ctx { shard, component }
    }

    /// A table of this node; 404 when it does not exist.
    pub fn table(&self, name: &str) -> Result<Table, Error> {
        let def = self
            .shard
            .table(name)
            .ok_or_else(|| Error::not_found(format!("table {name:?} does not exist")))?;
        Ok(Table::new(self.shard.clone(), def))
    }

    /// Writes that commit together or not at all (within one partition).
    pub fn batch(&self) -> Batch {
        Batch::new(self.shard.clone())
    }

    /// Publishes an MQTT message from this node, as a client's publish would be routed (a
    /// retained publish to `{Table}/{id}` writes that record). QoS 1/2 returns once the
    /// copies for persistent sessions are committed.
    pub async fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        qos: u8,
        retain: bool,
    ) -> Result<(), Error> {
        if !crate::mqtt::topic::valid_topic(topic) {
            return Err(Error::bad_request(format!(
                "{topic:?} is not a topic one can publish to"
            )));
        }
        let msg = Message {
            topic: topic.to_string(),
            payload: bytes::Bytes::copy_from_slice(payload),
            qos: qos.min(2),
            retain,
            props: None,
            expires_at_ms: None,
            from: Arc::from(""),
            version: None,
        };
        let (reason, commits) =
            crate::mqtt::handler::publish_message(&self.shard.mqtt, msg, qos > 0).await;
        if reason >= 0x80 {
            return Err(Error::new(
                503,
                format!("the publish was not applied (reason {reason:#04x})"),
            ));
        }
        commits
            .wait()
            .await
            .map_err(|e| Error::new(503, format!("the publish was not stored: {e}")))
    }

    /// This component's shard-local value of type `T` (made with `T::default()` on first
    /// use): state without locks, one copy per shard.
    pub fn local<T: Default + 'static>(&self) -> Rc<T> {
        self.shard.local::<T>(self.component)
    }

    /// The shard this call runs on.
    pub fn shard_id(&self) -> usize {
        self.shard.id
    }

    /// This node's id.
    pub fn node_id(&self) -> u16 {
        self.shard.node.config.cluster.node_id
    }

    /// Lets other work of the shard run if this call has run for a while: a long loop calls
    /// it now and then (a call is cut at `http.request_timeout_ms` only where it waits).
    pub async fn yield_now(&self) {
        glommio::yield_if_needed().await;
    }
}
