//! The opening of a link, both sides: `Hello` each way (protocol version, node id and name,
//! partition count, a fresh nonce), then the dialer's `Auth` proof and the acceptor's
//! `Welcome` proof (see `auth.rs`). A peer with the wrong secret, the same node id, another
//! partition count or another protocol version is refused with a reason, and the link closes.

use super::auth::{nonce, Role};
use super::frame::{self, Frame, Hello, PROTO};
use super::Ctx;
use futures_lite::{AsyncRead, AsyncWrite};

/// What a completed handshake tells about the peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub node_id: u16,
    pub name: String,
    /// The acceptor's log generation and shard count (dialer side only).
    pub generation: u64,
    pub shards: u16,
}

/// Largest frame accepted before the peer is authenticated.
const HANDSHAKE_MAX: usize = 4096;

fn my_hello(ctx: &Ctx, nonce: [u8; 32]) -> Frame {
    Frame::Hello(Hello {
        proto: PROTO,
        node_id: ctx.node_id,
        name: ctx.name.clone(),
        partitions: ctx.node.partitions,
        nonce,
    })
}

fn check_hello(ctx: &Ctx, h: &Hello) -> Result<(), String> {
    if h.proto != PROTO {
        return Err(format!(
            "protocol version {} (this node speaks {PROTO})",
            h.proto
        ));
    }
    if h.node_id == ctx.node_id || h.node_id == 0 {
        return Err(format!(
            "node id {} is this node's own (every node needs its own `cluster.node_id`)",
            h.node_id
        ));
    }
    if h.partitions != ctx.node.partitions {
        return Err(format!(
            "{} partitions (this node has {}; `cluster.partitions` must be equal on every node)",
            h.partitions, ctx.node.partitions
        ));
    }
    if h.name.len() > 64 {
        return Err("node name too long".into());
    }
    Ok(())
}

async fn refuse<S: AsyncWrite + Unpin>(s: &mut S, reason: String) -> String {
    let _ = frame::write(
        s,
        &Frame::Refuse {
            reason: reason.clone(),
        },
    )
    .await;
    reason
}

/// The dialer's side.
pub async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut S,
) -> Result<PeerInfo, String> {
    let mine = nonce()?;
    frame::write(s, &my_hello(ctx, mine))
        .await
        .map_err(|e| e.to_string())?;
    let theirs = match frame::read(s, HANDSHAKE_MAX)
        .await
        .map_err(|e| e.to_string())?
    {
        Frame::Hello(h) => h,
        Frame::Refuse { reason } => return Err(format!("refused by peer: {reason}")),
        other => return Err(format!("expected Hello, got {}", kind(&other))),
    };
    if let Err(reason) = check_hello(ctx, &theirs) {
        return Err(refuse(s, format!("peer has {reason}")).await);
    }
    let proof = ctx.secret.prove(
        Role::Dialer,
        &mine,
        &theirs.nonce,
        ctx.node_id,
        theirs.node_id,
    );
    frame::write(s, &Frame::Auth { mac: proof })
        .await
        .map_err(|e| e.to_string())?;
    match frame::read(s, HANDSHAKE_MAX)
        .await
        .map_err(|e| e.to_string())?
    {
        Frame::Welcome {
            mac,
            generation,
            shards,
        } => {
            if !ctx.secret.verify(
                Role::Acceptor,
                &mine,
                &theirs.nonce,
                ctx.node_id,
                theirs.node_id,
                &mac,
            ) {
                return Err(refuse(s, "peer does not know the cluster secret".into()).await);
            }
            if shards == 0 || shards > 1024 {
                return Err(format!("peer claims {shards} shards"));
            }
            Ok(PeerInfo {
                node_id: theirs.node_id,
                name: theirs.name,
                generation,
                shards,
            })
        }
        Frame::Refuse { reason } => Err(format!("refused by peer: {reason}")),
        other => Err(format!("expected Welcome, got {}", kind(&other))),
    }
}

/// The acceptor's side.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut S,
) -> Result<PeerInfo, String> {
    let theirs = match frame::read(s, HANDSHAKE_MAX)
        .await
        .map_err(|e| e.to_string())?
    {
        Frame::Hello(h) => h,
        other => {
            return Err(refuse(s, format!("expected Hello, got {}", kind(&other))).await);
        }
    };
    if let Err(reason) = check_hello(ctx, &theirs) {
        return Err(refuse(s, format!("peer has {reason}")).await);
    }
    let mine = nonce()?;
    frame::write(s, &my_hello(ctx, mine))
        .await
        .map_err(|e| e.to_string())?;
    let proof = match frame::read(s, HANDSHAKE_MAX)
        .await
        .map_err(|e| e.to_string())?
    {
        Frame::Auth { mac } => mac,
        other => return Err(refuse(s, format!("expected Auth, got {}", kind(&other))).await),
    };
    if !ctx.secret.verify(
        Role::Dialer,
        &theirs.nonce,
        &mine,
        theirs.node_id,
        ctx.node_id,
        &proof,
    ) {
        return Err(refuse(
            s,
            format!(
                "wrong secret: node {} ({:?}) failed authentication",
                theirs.node_id, theirs.name
            ),
        )
        .await);
    }
    let mac = ctx.secret.prove(
        Role::Acceptor,
        &theirs.nonce,
        &mine,
        theirs.node_id,
        ctx.node_id,
    );
    frame::write(
        s,
        &Frame::Welcome {
            mac,
            generation: ctx.generation,
            shards: ctx.node.dbs.len() as u16,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(PeerInfo {
        node_id: theirs.node_id,
        name: theirs.name,
        generation: ctx.generation,
        shards: ctx.node.dbs.len() as u16,
    })
}

/// A frame's kind, for messages.
pub fn kind(f: &Frame) -> &'static str {
    match f {
        Frame::Hello(_) => "Hello",
        Frame::Auth { .. } => "Auth",
        Frame::Welcome { .. } => "Welcome",
        Frame::Refuse { .. } => "Refuse",
        Frame::Subscribe { .. } => "Subscribe",
        Frame::Changes { .. } => "Changes",
        Frame::Gap { .. } => "Gap",
        Frame::Ack { .. } => "Ack",
        Frame::Ping => "Ping",
        Frame::Stable { .. } => "Stable",
        Frame::DigestRequest => "DigestRequest",
        Frame::Digest { .. } => "Digest",
        Frame::DigestDone => "DigestDone",
        Frame::RangeRequest { .. } => "RangeRequest",
        Frame::Range { .. } => "Range",
        Frame::Publish { .. } => "Publish",
        Frame::Interest { .. } => "Interest",
    }
}
