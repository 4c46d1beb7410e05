//! MQTT over WebSocket (`/mqtt`, subprotocol `mqtt`): the WebSocket's binary messages carry
//! the MQTT byte stream. If the client id lives on this shard the session runs here over the
//! WebSocket; otherwise this shard relays the bytes to the home shard (`mqtt::pipe`), one hop
//! per message, since a WebSocket cannot be handed over like a plain socket. Over HTTP or
//! HTTPS alike.

use super::shard::HttpShard;
use super::ws::Ws;
use crate::mqtt::conn::Transport;
use crate::mqtt::listener::read_connect;
use crate::mqtt::pipe::relay;
use crate::net::Io;
use async_tungstenite::tungstenite::Message;
use bytes::BytesMut;
use futures_util::StreamExt;
use std::rc::Rc;

/// A WebSocket as an MQTT byte stream.
pub struct WsTransport<S> {
    ws: Ws<S>,
    pending: Vec<u8>,
}

impl<S: Io> Transport for WsTransport<S> {
    fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.ws.get_ref().tcp().peer_addr().ok().map(|a| a.ip())
    }

    fn certified_user(&self) -> Option<String> {
        self.ws.get_ref().client_name()
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.is_empty() {
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => self.pending = b.to_vec(),
                Some(Ok(Message::Text(_))) => {
                    return Err(std::io::Error::other("MQTT over WebSocket is binary"))
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(0),
                Some(Ok(_)) => {}
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }

    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.ws
            .send(Message::binary(buf.to_vec()))
            .await
            .map_err(std::io::Error::other)
    }
}

pub async fn serve<S: Io>(shard: Rc<HttpShard>, ws: Ws<S>) {
    let shard = shard.mqtt.clone();
    let mut io = WsTransport {
        ws,
        pending: Vec::new(),
    };
    let mut input = BytesMut::new();
    let Some((connect, assigned, rest)) = read_connect(&shard, &mut io, &mut input).await else {
        let _ = io.ws.close(None).await;
        return;
    };
    let home = shard.locate("$mqtt", &connect.client_id).1;
    if home == shard.id || assigned {
        crate::mqtt::conn::run(shard, io, rest, *connect, assigned).await;
        return;
    }
    // Relay to the home shard: what we read so far (the CONNECT first), then every message
    // (what is left of the current one first).
    relay(&shard, home, &mut io, input.to_vec()).await;
    let _ = io.ws.close(None).await;
}
