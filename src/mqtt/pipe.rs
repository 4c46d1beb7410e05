//! A connection whose bytes do not arrive on a socket of this shard: MQTT over a WebSocket or
//! over TLS that landed on another shard, whose stream (a WebSocket, a TLS session) cannot be
//! handed over like a plain socket. That shard keeps the stream and relays the MQTT bytes both
//! ways over a pair of bounded channels (`relay`); the home shard runs the session as usual
//! (`adopt`).

use super::conn::Transport;
use super::listener::read_connect;
use super::mesh::MqttMsg;
use super::MqttShard;
use bytes::BytesMut;
use futures_lite::future::or;
use std::rc::Rc;

/// Bytes from and to a relaying shard.
pub struct Pipe {
    pub from_client: flume::Receiver<Vec<u8>>,
    pub to_client: flume::Sender<Vec<u8>>,
    pending: Vec<u8>,
    /// The client's address, as the relaying shard saw it.
    peer: Option<std::net::IpAddr>,
    /// The user the client's TLS certificate names, as the relaying shard verified it.
    certified: Option<String>,
}

/// Chunks in flight each way before the sender waits.
pub const DEPTH: usize = 64;

impl Pipe {
    pub fn new(
        from_client: flume::Receiver<Vec<u8>>,
        to_client: flume::Sender<Vec<u8>>,
        peer: Option<std::net::IpAddr>,
        certified: Option<String>,
    ) -> Pipe {
        Pipe {
            from_client,
            to_client,
            pending: Vec::new(),
            peer,
            certified,
        }
    }
}

impl Transport for Pipe {
    fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.peer
    }

    fn certified_user(&self) -> Option<String> {
        self.certified.clone()
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.from_client.recv_async().await {
                Ok(bytes) => self.pending = bytes,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }

    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.to_client
            .send_async(buf.to_vec())
            .await
            .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }
}

/// Runs a relayed connection on this (its home) shard; `read` starts with its CONNECT.
pub fn adopt(shard: &Rc<MqttShard>, mut pipe: Pipe, read: Vec<u8>) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        pipe.pending = read;
        let mut input = BytesMut::new();
        if let Some((c, assigned, rest)) = read_connect(&shard, &mut pipe, &mut input).await {
            super::conn::run(shard, pipe, rest, *c, assigned).await;
        }
    })
    .detach();
}

/// Relays a connection to `home`, the shard of its session: hands it a `Pipe` with `read`
/// (the bytes read so far, its CONNECT first), then copies bytes both ways until either side
/// ends. Returns then; the caller closes its stream.
pub async fn relay<T: Transport>(shard: &MqttShard, home: usize, io: &mut T, read: Vec<u8>) {
    let (up_tx, up_rx) = flume::bounded(DEPTH);
    let (down_tx, down_rx) = flume::bounded::<Vec<u8>>(DEPTH);
    let msg = MqttMsg::Pipe {
        pipe: Pipe::new(up_rx, down_tx, io.peer_ip(), io.certified_user()),
        read,
    };
    if shard.mqtt_node.inboxes[home].send_async(msg).await.is_err() {
        return;
    }
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        enum Ev {
            FromClient(usize),
            ToClient(Option<Vec<u8>>),
        }
        let ev = or(
            async { Ev::FromClient(io.read(&mut chunk).await.unwrap_or(0)) },
            async { Ev::ToClient(down_rx.recv_async().await.ok()) },
        )
        .await;
        match ev {
            Ev::FromClient(n) if n > 0 => {
                if up_tx.send_async(chunk[..n].to_vec()).await.is_err() {
                    return;
                }
            }
            Ev::ToClient(Some(b)) => {
                if io.write_all(&b).await.is_err() {
                    return;
                }
            }
            Ev::FromClient(_) | Ev::ToClient(None) => return,
        }
    }
}
