//! A connection whose bytes do not arrive on a socket of this shard: MQTT over a WebSocket
//! that landed on another shard. That shard keeps the WebSocket and relays the MQTT bytes
//! both ways over a pair of bounded channels; this side runs the session as usual.

use super::conn::Transport;
use super::listener::read_connect;
use super::MqttShard;
use bytes::BytesMut;
use std::rc::Rc;

/// Bytes from and to a relaying shard.
pub struct Pipe {
    pub from_client: flume::Receiver<Vec<u8>>,
    pub to_client: flume::Sender<Vec<u8>>,
    pending: Vec<u8>,
    /// The client's address, as the relaying shard saw it.
    peer: Option<std::net::IpAddr>,
}

/// Chunks in flight each way before the sender waits.
pub const DEPTH: usize = 64;

impl Pipe {
    pub fn new(
        from_client: flume::Receiver<Vec<u8>>,
        to_client: flume::Sender<Vec<u8>>,
        peer: Option<std::net::IpAddr>,
    ) -> Pipe {
        Pipe {
            from_client,
            to_client,
            pending: Vec::new(),
            peer,
        }
    }
}

impl Transport for Pipe {
    fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.peer
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
