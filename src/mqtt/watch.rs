//! A subscriber that is not an MQTT client: an HTTP real-time stream (SSE or WebSocket) on a
//! record or table path. It is an internal session of the shard that holds the stream, so
//! record changes and messages published to the record's topic reach it through the same
//! summary and trie as MQTT subscribers, with the same bounded queue (past the bound the
//! stream is closed; an SSE client resumes with `Last-Event-ID`). Also: replay of a table's
//! or record's changes from the change logs, for `Last-Event-ID`.

use super::broker;
use super::codec::Version as Protocol;
use super::handler::{self, End};
use super::message::Message;
use super::packet::Fault;
use super::session::{Link, Session, SubOpts};
use super::MqttShard;
use crate::storage::changelog::{Change, ChangeOp};
use crate::storage::hlc::Version;
use crate::storage::keys;
use crate::storage::shard_db::ShardDb;
use glommio::channels::local_channel::{self, LocalReceiver};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

pub struct Watch {
    pub shard: Rc<MqttShard>,
    pub session: Rc<Session>,
    pub wake: LocalReceiver<()>,
    pub close: Rc<Cell<Option<Fault>>>,
    link_id: u64,
}

impl Watch {
    /// Subscribes to `filter`; returns once every shard routes matching messages here.
    pub async fn open(shard: &Rc<MqttShard>, filter: &str) -> Watch {
        let link_id = shard.mqtt.next_link_id();
        // A NUL cannot appear in an MQTT client id, so this never meets a client's session.
        let id: Arc<str> = Arc::from(format!("\0http-{}-{link_id}", shard.id).as_str());
        let session = Session::new(id.clone(), Protocol::V5, 0);
        let (tx, wake) = local_channel::new_bounded(1);
        let close = Rc::new(Cell::new(None));
        session.st.borrow_mut().link = Some(Link {
            id: link_id,
            wake: tx,
            close: close.clone(),
        });
        shard.mqtt.sessions.borrow_mut().insert(id, session.clone());
        // No echo: a WebSocket client's own messages are not sent back to it.
        let opts = SubOpts {
            qos: 1,
            no_local: true,
            retain_as_published: true,
            sub_id: None,
        };
        if broker::add_sub(shard, &session, filter, opts).1 {
            broker::announce(shard, vec![filter.to_string()], true, true).await;
        }
        Watch {
            shard: shard.clone(),
            session,
            wake,
            close,
            link_id,
        }
    }

    /// Everything delivered since the last call, oldest first.
    pub fn take(&self) -> Vec<Arc<Message>> {
        let mut st = self.session.st.borrow_mut();
        st.queue.take_all().into_iter().map(|e| e.msg).collect()
    }

    /// The reason the broker wants this stream closed (its queue overflowed).
    pub fn closed(&self) -> Option<Fault> {
        self.close.get()
    }

    pub async fn end(self) {
        handler::end(&self.shard, &self.session, self.link_id, End::Normal).await;
    }
}

/// Most changes replayed for one `Last-Event-ID`.
pub const MAX_REPLAY: usize = 10_000;

/// The changes to `table` (or to record `id` of it) committed after `after`, oldest first,
/// from the change logs that still hold them. The flag is true if some shard's log no longer
/// reaches back to `after` (changes may be missing: send current values as well).
pub fn replay(
    shard: &MqttShard,
    table: &str,
    id: Option<&str>,
    after: Version,
) -> (Vec<Message>, bool) {
    let shards: Vec<usize> = match id {
        Some(id) => vec![shard.locate(table, id).1],
        None => (0..shard.count()).collect(),
    };
    let mut out = Vec::new();
    let mut gap = false;
    for s in shards {
        let db = &shard.node.dbs[s];
        let (Ok(Some(first)), Ok(Some((last, _)))) = (db.first_seq(), db.last_change()) else {
            continue;
        };
        if first > 1 && version_at(db, first).is_some_and(|v| v > after) {
            gap = true;
        }
        // Versions grow with sequence numbers in one shard's log: binary search the start.
        let (mut lo, mut hi) = (first, last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match version_at(db, mid) {
                Some(v) if v > after => hi = mid,
                _ => lo = mid + 1,
            }
        }
        for guard in db.changelog.range(keys::seq_key(lo).to_vec()..) {
            if out.len() >= MAX_REPLAY {
                break;
            }
            let Ok(v) = guard.value() else {
                continue;
            };
            let Some(c) = Change::decode(&v) else {
                continue;
            };
            if c.table != table || id.is_some_and(|id| id != c.id) {
                continue;
            }
            out.push(change_message(&c));
        }
    }
    out.sort_by_key(|m| m.version);
    (out, gap)
}

fn version_at(db: &ShardDb, seq: u64) -> Option<Version> {
    let v = db.changelog.get(keys::seq_key(seq)).ok()??;
    let c = Change::decode(&v)?;
    Some(Version {
        clock: c.clock,
        node: c.node,
    })
}

fn change_message(c: &Change) -> Message {
    let body: &[u8] = match c.op {
        ChangeOp::Put => &c.body,
        ChangeOp::Delete => b"",
    };
    let version = Version {
        clock: c.clock,
        node: c.node,
    };
    super::tables::record_message(format!("{}/{}", c.table, c.id), body, version)
}
