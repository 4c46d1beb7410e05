//! SUBSCRIBE: each filter checked (syntax, shared subscription form, permission, the per-client
//! limit) and added, every shard told of new filters before the SUBACK, then each accepted
//! filter's first batch (retained messages and table records) queued without repeating a
//! record version a live change already delivered (`fresh`).

use super::broker;
use super::codec::Version;
use super::encode;
use super::handler::Ctx;
use super::packet::SubRequest;
use super::session::{Session, SubOpts};
use super::{acl, retained, store, tables, topic};
use std::rc::Rc;

/// Serves a SUBSCRIBE: SUBACK into `ctx.out`, then the first batches.
pub async fn subscribe(ctx: &mut Ctx, pkid: u16, filters: Vec<SubRequest>) {
    let _recording = Recording::start(&ctx.session);
    let shard = ctx.shard.clone();
    let mut codes = Vec::with_capacity(filters.len());
    let mut announce = Vec::new();
    let mut first_batches = Vec::new();
    for r in filters {
        match add(ctx, &r) {
            Err(code) => codes.push(code),
            Ok(added) => {
                if added.first_here {
                    announce.push(r.filter.clone());
                }
                // A shared subscription gets no retained messages or records when it is made
                // (§3.8.4): its group may have members that already had them.
                let shared = topic::is_shared(&r.filter);
                if !shared && (r.retain_handling == 0 || (r.retain_handling == 1 && added.new)) {
                    first_batches.push((r.filter, added.qos));
                }
                codes.push(added.qos);
            }
        }
    }
    // Every shard knows of the new filters before the client hears SUBACK, so a publish made
    // after the SUBACK on any shard reaches this subscriber.
    tracing::debug!(shard = shard.id, client = %ctx.session.client_id, ?announce, "subscribe: announcing");
    broker::announce(&shard, announce, true, true).await;
    if ctx.session.persistent() {
        store::put_session(&shard, &ctx.session);
    }
    encode::suback(&mut ctx.out, ctx.v, pkid, &codes);
    for (filter, qos) in first_batches {
        let mut msgs = retained::matching(&shard, &filter);
        msgs.extend(tables::snapshot(&shard, &filter));
        for m in msgs {
            let q = qos.min(m.qos);
            ctx.session.enqueue_first(&shard, m, q);
        }
    }
}

/// A filter added to the session.
struct Added {
    qos: u8,
    /// The session did not have this filter.
    new: bool,
    /// No session on this shard had it: the other shards must be told.
    first_here: bool,
}

/// Checks and adds one filter; `Err` is the SUBACK code that refuses it.
fn add(ctx: &Ctx, r: &SubRequest) -> Result<Added, u8> {
    let shard = &ctx.shard;
    let v5 = ctx.v == Version::V5;
    let refuse = |v5_code: u8| if v5 { v5_code } else { 0x80 };
    if !topic::valid_filter(&r.filter) {
        return Err(refuse(0x8F));
    }
    // `$share/{group}/{filter}`: permissions are those of the filter.
    let filter = match topic::is_shared(&r.filter) {
        false => r.filter.as_str(),
        true => topic::parse_shared(&r.filter).ok_or(refuse(0x8F))?.1,
    };
    if let Some(user) = ctx.user.as_ref() {
        if !acl::may_subscribe(shard, user, filter) {
            super::count(&shard.mqtt_node.stats.subscribes_unauthorized);
            tracing::debug!(client = %ctx.session.client_id, user = %user.name, filter = %r.filter, "subscribe refused: not authorized");
            return Err(refuse(0x87));
        }
    }
    let max = shard.config().mqtt.max_subscriptions_per_client;
    let full = {
        let st = ctx.session.st.borrow();
        !st.subs.contains_key(&r.filter) && st.subs.len() >= max
    };
    if full {
        return Err(refuse(0x97));
    }
    let qos = r.qos.min(2);
    let opts = SubOpts {
        qos,
        no_local: r.no_local,
        retain_as_published: r.retain_as_published,
        sub_id: r.sub_id,
    };
    let (new, first_here) = broker::add_sub(shard, &ctx.session, &r.filter, opts);
    Ok(Added {
        qos,
        new,
        first_here,
    })
}

/// A subscribe in progress: live record events are remembered for its first batch until
/// it ends (also when the connection drops mid-subscribe).
struct Recording(Rc<Session>);

impl Recording {
    fn start(session: &Rc<Session>) -> Recording {
        session.st.borrow_mut().subscribing += 1;
        Recording(session.clone())
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let mut st = self.0.st.borrow_mut();
        st.subscribing = st.subscribing.saturating_sub(1);
    }
}
