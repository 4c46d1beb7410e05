//! What shards tell each other about MQTT: a message for the receiving shard's subscribers
//! (from another shard, or from another node through the cluster executor), a change to the
//! subscription summary (acknowledged), and a connection handed to the shard that is home to
//! its client id.

use super::message::Message;
use super::MqttShard;
use crate::storage::kv::KvReply;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;

pub enum MqttMsg {
    /// Deliver to this shard's matching sessions. With `committed` (a QoS 1/2 publish whose
    /// publisher waits before its acknowledgement), answer it once the copies this shard
    /// stored for persistent sessions are committed (at once if it stored none).
    Deliver {
        msg: Arc<Message>,
        committed: Option<KvReply>,
        /// Shared subscriptions this shard serves for this message: one member each.
        shared: Vec<Arc<str>>,
    },
    /// A message published on another node (`cluster::forward`): with `retain_here`, store
    /// (or clear) it as the topic's retained message first; then deliver to this shard's
    /// matching sessions. Never forwarded again.
    FromPeer {
        msg: Arc<Message>,
        retain_here: bool,
        /// Shared subscriptions this node serves for the message (the peer picked it): this
        /// shard picks a member of each.
        shared: Vec<Arc<str>>,
    },
    /// Shard `from` gained (`add`) or lost its last subscription to `filter`.
    Filter {
        from: usize,
        filter: String,
        add: bool,
        ack: flume::Sender<()>,
    },
    /// A connection whose client id lives on this shard, with the bytes read so far (its
    /// CONNECT first).
    Handoff { socket: Handoff, read: Vec<u8> },
    /// A connection relayed by another shard (MQTT over a WebSocket that landed there).
    Pipe {
        pipe: super::pipe::Pipe,
        read: Vec<u8>,
    },
}

/// A socket in transit between shards; closed if never taken.
pub struct Handoff(Option<RawFd>);

impl Handoff {
    pub fn new(fd: RawFd) -> Handoff {
        Handoff(Some(fd))
    }

    pub fn take(mut self) -> Option<RawFd> {
        self.0.take()
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            // SAFETY: the descriptor was released by its stream and nothing else owns it.
            unsafe {
                libc::close(fd);
            }
        }
    }
}

/// Serves one MQTT message from another shard's inbox.
pub fn handle(shard: &Rc<MqttShard>, msg: MqttMsg) {
    match msg {
        MqttMsg::Deliver {
            msg,
            committed,
            shared,
        } => {
            // The reply travels with the write: this shard never waits here.
            super::broker::deliver_local(shard, &msg, &shared, committed)
        }
        MqttMsg::FromPeer {
            msg,
            retain_here,
            shared,
        } => {
            // A retained publish to `{Table}/{id}` is a record write, which replicates through
            // the change log: it is never stored as a retained message.
            if retain_here && super::tables::table_of(shard, &msg.topic).is_none() {
                super::retained::store_now(shard, &msg);
            }
            // Fire and forget: the origin node acknowledged the publish after its own copies
            // were committed; forwarding to peers is best effort (dropped past its bounds, see
            // `cluster::forward`), so nobody waits for this node's copies.
            super::broker::deliver_local(shard, &msg, &[], None);
            if !shared.is_empty() {
                super::broker::serve_shared_from_peer(shard, &msg, shared);
            }
        }
        MqttMsg::Filter {
            from,
            filter,
            add,
            ack,
        } => {
            super::broker::apply_summary(shard, from, &filter, add);
            let _ = ack.send(());
        }
        MqttMsg::Handoff { socket, read } => {
            if let Some(fd) = socket.take() {
                super::listener::adopt(shard, fd, read);
            }
        }
        MqttMsg::Pipe { pipe, read } => super::pipe::adopt(shard, pipe, read),
    }
}
