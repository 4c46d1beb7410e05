//! A shard's MQTT listener: accepts connections (SO_REUSEPORT spreads them), enforces the
//! per-shard cap and the per-address one (`limits.mqtt_connections_per_ip`: on the shard that
//! accepted a connection, and again on the home shard it is handed to), reads the CONNECT
//! (bounded in size and time), gives an empty client id one that lives on this shard, and
//! either runs the connection here or hands the socket to the home shard of its client id.

use super::codec::{self, Decoded};
use super::conn::Transport;
use super::mesh::{Handoff, MqttMsg};
use super::packet::{Connect, Packet};
use super::MqttShard;
use crate::security::limits::Listener;
use bytes::BytesMut;
use futures_lite::future::or;
use glommio::net::TcpStream;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A client must send its whole CONNECT within this time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn accept_loop(shard: Rc<MqttShard>, listener: glommio::net::TcpListener) {
    let max = shard.config().mqtt.max_connections_per_shard;
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(shard = shard.id, "mqtt accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shard.mqtt_node.connections[shard.id].load(Ordering::Relaxed) >= max {
            tracing::debug!(
                shard = shard.id,
                "mqtt connection refused: max_connections_per_shard"
            );
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shard = shard.clone();
        glommio::spawn_local(async move { first_contact(shard, stream, BytesMut::new()).await })
            .detach();
    }
}

/// Takes a connection handed over by another shard.
pub fn adopt(shard: &Rc<MqttShard>, fd: RawFd, read: Vec<u8>) {
    // SAFETY: the descriptor is an open TCP socket released by its previous owner.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let shard = shard.clone();
    glommio::spawn_local(async move {
        first_contact(shard, stream, BytesMut::from(&read[..])).await;
    })
    .detach();
}

async fn first_contact(shard: Rc<MqttShard>, mut stream: TcpStream, mut input: BytesMut) {
    let client = shard.limits.client(stream.peer_addr().ok().map(|a| a.ip()));
    let Some(_slot) = shard.limits.connection(Listener::Mqtt, &client) else {
        tracing::debug!(shard = shard.id, ip = %client.ip, "mqtt connection refused: limits.mqtt_connections_per_ip");
        return;
    };
    let counter = &shard.mqtt_node.connections[shard.id];
    counter.fetch_add(1, Ordering::Relaxed);
    if let Some((connect, assigned, rest)) = read_connect(&shard, &mut stream, &mut input).await {
        let home = shard.locate("$mqtt", &connect.client_id).1;
        if home == shard.id || assigned {
            super::conn::run(shard.clone(), stream, rest, *connect, assigned).await;
        } else {
            // The session lives on `home`: move the socket there with what we read.
            let fd = stream.into_raw_fd();
            let msg = MqttMsg::Handoff {
                socket: Handoff::new(fd),
                read: input.to_vec(),
            };
            let _ = shard.mqtt_node.inboxes[home].send_async(msg).await;
        }
    }
    shard.mqtt_node.connections[shard.id].fetch_sub(1, Ordering::Relaxed);
}

/// Reads until a whole CONNECT is decoded (bounded in size by the packet limit and in time by
/// `CONNECT_TIMEOUT`). Returns it, whether its id was assigned here, and the bytes after it;
/// `input` keeps every byte read (for a handoff).
pub async fn read_connect<T: Transport>(
    shard: &MqttShard,
    io: &mut T,
    input: &mut BytesMut,
) -> Option<(Box<Connect>, bool, BytesMut)> {
    let max = shard.config().mqtt.max_packet_bytes;
    let deadline = std::time::Instant::now() + CONNECT_TIMEOUT;
    let mut chunk = vec![0u8; 4096];
    loop {
        let mut work = input.clone();
        match codec::decode(&mut work, None, max) {
            Ok(Decoded::Packet(Packet::Connect(mut c))) => {
                let assigned = c.client_id.is_empty();
                if assigned {
                    if !c.clean && !c.v5 {
                        // 3.1.1: a persistent session needs a client id (CONNACK 0x02).
                        let mut out = BytesMut::new();
                        codec::connack(&mut out, codec::Version::V4, refused(2));
                        let _ = io.write_all(&out).await;
                        return None;
                    }
                    c.client_id = local_client_id(shard);
                }
                return Some((c, assigned, work));
            }
            Ok(Decoded::Packet(_)) => return None,
            Ok(Decoded::UnsupportedVersion) => {
                let mut out = BytesMut::new();
                codec::connack(&mut out, codec::Version::V4, refused(1));
                let _ = io.write_all(&out).await;
                return None;
            }
            Ok(Decoded::Incomplete) => {}
            Err(fault) => {
                tracing::debug!(shard = shard.id, ?fault, "bad first packet");
                return None;
            }
        }
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        let read = or(async { Some(io.read(&mut chunk).await) }, async {
            glommio::timer::sleep(left).await;
            None
        })
        .await;
        match read {
            Some(Ok(n)) if n > 0 => input.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

fn refused(code: u8) -> codec::ConnAckInfo {
    codec::ConnAckInfo {
        session_present: false,
        code,
        assigned_client_id: None,
        receive_max: 1,
        max_packet: 0,
        topic_alias_max: 0,
        session_expiry_secs: None,
        server_keep_alive: None,
    }
}

/// A fresh client id whose home is this shard.
fn local_client_id(shard: &MqttShard) -> String {
    loop {
        let n = shard.client_ids.get().wrapping_add(0x9e37_79b9_7f4a_7c15)
            ^ crate::storage::now_millis();
        shard.client_ids.set(n);
        let id = format!("microlith-{:016x}", n);
        if shard.locate("$mqtt", &id).1 == shard.id {
            return id;
        }
    }
}
