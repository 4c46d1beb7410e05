//! MQTT over WebSocket (`/mqtt`, subprotocol `mqtt`): the WebSocket's binary messages carry
//! the MQTT byte stream. If the client id lives on this shard the session runs here over the
//! WebSocket; otherwise this shard relays the bytes to the home shard (`mqtt::pipe`), one hop
//! per message, since a WebSocket cannot be handed over like a plain socket.

use super::shard::HttpShard;
use super::ws::Ws;
use crate::mqtt::conn::Transport;
use crate::mqtt::listener::read_connect;
use crate::mqtt::mesh::MqttMsg;
use crate::mqtt::pipe::{Pipe, DEPTH};
use async_tungstenite::tungstenite::Message;
use bytes::BytesMut;
use futures_lite::future::or;
use futures_util::StreamExt;
use std::rc::Rc;

/// A WebSocket as an MQTT byte stream.
pub struct WsTransport {
    ws: Ws,
    pending: Vec<u8>,
}

impl Transport for WsTransport {
    fn peer_ip(&self) -> Option<std::net::IpAddr> {
        self.ws.get_ref().peer_addr().ok().map(|a| a.ip())
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

pub async fn serve(shard: Rc<HttpShard>, ws: Ws) {
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
    // Relay to the home shard: what we read so far (the CONNECT first), then every message.
    let (up_tx, up_rx) = flume::bounded(DEPTH);
    let (down_tx, down_rx) = flume::bounded::<Vec<u8>>(DEPTH);
    let msg = MqttMsg::Pipe {
        pipe: Pipe::new(up_rx, down_tx, io.peer_ip()),
        read: input.to_vec(),
    };
    if shard.mqtt_node.inboxes[home].send_async(msg).await.is_err() {
        return;
    }
    if !io.pending.is_empty() {
        let _ = up_tx.send_async(std::mem::take(&mut io.pending)).await;
    }
    loop {
        enum Ev {
            FromClient(Option<Vec<u8>>),
            ToClient(Option<Vec<u8>>),
        }
        let ev = or(
            async {
                let mut chunk = vec![0u8; 16 * 1024];
                match io.read(&mut chunk).await {
                    Ok(n) if n > 0 => {
                        chunk.truncate(n);
                        Ev::FromClient(Some(chunk))
                    }
                    _ => Ev::FromClient(None),
                }
            },
            async { Ev::ToClient(down_rx.recv_async().await.ok()) },
        )
        .await;
        match ev {
            Ev::FromClient(Some(b)) => {
                if up_tx.send_async(b).await.is_err() {
                    break;
                }
            }
            Ev::ToClient(Some(b)) => {
                if io.write_all(&b).await.is_err() {
                    break;
                }
            }
            Ev::FromClient(None) | Ev::ToClient(None) => break,
        }
    }
    let _ = io.ws.close(None).await;
}
