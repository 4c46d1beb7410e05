//! Tombstone purge: a delete leaves a tombstone so that it wins over older versions arriving
//! later; it can go once no older version of anything can arrive anywhere. Each node learns,
//! per origin node, a clock below which it holds every change that origin made (the origin
//! sends it with each stream batch that reaches the end of its log: `stable_below`), and tells
//! its peers what it knows (`Stable` frames). The purge bound is the minimum of those clocks
//! over every pair of members (this node and every configured peer, all identified): below it,
//! every member holds every change of every member, so a purged tombstone cannot be
//! resurrected by a stream or a repair. Unknown members, unknown clocks: no purge.

use super::Ctx;
use crate::storage::envelope::Envelope;
use crate::storage::hlc::Version;
use crate::storage::now_millis;
use crate::storage::writer::WriterMsg;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Most tombstones purged per shard per round (bounded work and messages).
const MAX_PER_ROUND: usize = 10_000;

/// What this node knows about how complete every member is.
#[derive(Debug, Default)]
pub struct Knowledge {
    /// Origin → clock below which this node holds all of that origin's changes.
    pub mine: HashMap<u16, u64>,
    /// Peer → what it reported of itself (origin → clock).
    pub views: HashMap<u16, HashMap<u16, u64>>,
    /// Configured peer address → node id (once a link to it was authenticated).
    pub members: HashMap<String, u16>,
}

impl Knowledge {
    /// Raises what this node knows of `origin` (monotone).
    pub fn learn(&mut self, origin: u16, clock: u64) {
        let e = self.mine.entry(origin).or_default();
        *e = (*e).max(clock);
    }

    /// The clock below which every member holds every change of every member; `Err` says
    /// what is not known yet (a configured peer never reached, a clock not reported).
    pub fn bound(&self, me: u16, configured: &[String]) -> Result<u64, String> {
        let mut ids = vec![me];
        for a in configured {
            ids.push(
                *self
                    .members
                    .get(a)
                    .ok_or_else(|| format!("peer {a} not reached yet"))?,
            );
        }
        let mut b = u64::MAX;
        for &m in &ids {
            for &o in &ids {
                if m == o {
                    continue;
                }
                let known = if m == me {
                    self.mine.get(&o)
                } else {
                    self.views.get(&m).and_then(|v| v.get(&o))
                };
                b = b.min(*known.ok_or_else(|| {
                    format!("how far node {m} holds node {o}'s changes is not known yet")
                })?);
            }
        }
        Ok(b)
    }
}

/// Purges, every little while, the tombstones below the bound and older than the grace.
pub async fn run(ctx: Rc<Ctx>) {
    let grace = ctx.node.config.cluster.tombstone_grace_ms;
    let every = Duration::from_millis((grace / 4).clamp(100, 10_000));
    let configured: Vec<String> = ctx.node.config.cluster.peer_addrs();
    loop {
        glommio::timer::sleep(every).await;
        if ctx.stop.load(Ordering::Relaxed) {
            return;
        }
        let bound = match ctx.knowledge.borrow().bound(ctx.node_id, &configured) {
            Ok(b) => b,
            Err(why) => {
                *ctx.state
                    .purge_waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = why;
                continue;
            }
        };
        ctx.state
            .purge_waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let aged = (now_millis().saturating_sub(grace)) << 16;
        let below = bound.min(aged);
        *ctx.state
            .purge_bound
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = bound;
        for s in 0..ctx.node.dbs.len() {
            let db = ctx.node.dbs[s].clone();
            let keys = glommio::executor()
                .spawn_blocking(move || tombstones_below(&db, below))
                .await;
            if keys.is_empty() {
                continue;
            }
            let (reply, wait) = flume::bounded(1);
            if ctx.node.writers[s]
                .send_async(WriterMsg::PurgeTombstones { keys, reply })
                .await
                .is_err()
            {
                return;
            }
            if let Ok(n) = wait.recv_async().await {
                ctx.state
                    .tombstones_purged
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Tombstones of a shard whose version clock is below `below` (at most `MAX_PER_ROUND`).
fn tombstones_below(db: &crate::storage::shard_db::ShardDb, below: u64) -> Vec<(Vec<u8>, Version)> {
    let mut out = Vec::new();
    for guard in db.records.iter() {
        let Ok((k, v)) = guard.into_inner() else {
            break;
        };
        if let Some(e) = Envelope::decode(&v) {
            if e.tombstone && e.version.clock < below {
                out.push((k.to_vec(), e.version));
                if out.len() >= MAX_PER_ROUND {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_needs_every_member_and_every_clock() {
        let peers = vec!["b:1".to_string(), "c:1".to_string()];
        let mut k = Knowledge::default();
        assert!(k.bound(1, &peers).is_err(), "peers not identified");
        k.members.insert("b:1".into(), 2);
        k.members.insert("c:1".into(), 3);
        k.learn(2, 100);
        k.learn(3, 90);
        assert!(k.bound(1, &peers).is_err(), "peers' views unknown");
        k.views.insert(2, HashMap::from([(1, 80), (3, 95)]));
        k.views.insert(3, HashMap::from([(1, 85)]));
        assert!(
            k.bound(1, &peers).is_err(),
            "node 3 has not said how far it holds node 2"
        );
        k.views.get_mut(&3).unwrap().insert(2, 70);
        assert_eq!(k.bound(1, &peers), Ok(70));
        k.learn(3, 10); // knowledge only grows
        assert_eq!(k.mine[&3], 90);
        // A single node with no peers may purge anything old enough.
        assert_eq!(Knowledge::default().bound(1, &[]), Ok(u64::MAX));
    }
}
