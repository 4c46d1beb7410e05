//! A shard's MQTT listeners, plain and TLS: accept connections (SO_REUSEPORT spreads them),
//! enforce the per-shard cap and the per-address one (`limits.mqtt_connections_per_ip`: on
//! the shard that accepted a connection, and again on the home shard a socket is handed to),
//! read the CONNECT (bounded in size and time), give an empty client id one that lives on this
//! shard, and either run the connection here or move it to the home shard of its client id. A
//! plain socket is handed over whole; a TLS session cannot be (its keys live here), so this
//! shard keeps it and relays the MQTT bytes (`pipe::relay`).

use super::codec::{self, Decoded};
use super::conn::Transport;
use super::mesh::{Handoff, MqttMsg};
use super::packet::{Connect, Packet};
use super::MqttShard;
use crate::net::tls::Tls;
use crate::security::limits::Listener;
use bytes::BytesMut;
use futures_lite::future::or;
use glommio::net::TcpStream;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A client must send its whole CONNECT within this time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the listener until the task is dropped; `tls`: the listener speaks MQTT over TLS.
pub async fn accept_loop(
    shard: Rc<MqttShard>,
    listener: glommio::net::TcpListener,
    tls: Option<Arc<Tls>>,
) {
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
        match &tls {
            None => glommio::spawn_local(first_contact(shard, stream, BytesMut::new())),
            Some(tls) => glommio::spawn_local(tls_contact(shard, tls.clone(), stream)),
        }
        .detach();
    }
}

/// A TLS connection: the handshake, the CONNECT, then the session here or relayed to its
/// home shard. Counted on this shard while it holds the socket.
async fn tls_contact(shard: Rc<MqttShard>, tls: Arc<Tls>, stream: TcpStream) {
    let Some(_slot) = connection_slot(&shard, &stream) else {
        return;
    };
    let counter = &shard.mqtt_node.connections[shard.id];
    counter.fetch_add(1, Ordering::Relaxed);
    let config = tls.configs().mqtt.clone();
    match crate::net::tls::accept(config, stream, tls.handshake_timeout()).await {
        Ok(mut io) => {
            let mut input = BytesMut::new();
            if let Some((connect, assigned, rest)) = read_connect(&shard, &mut io, &mut input).await
            {
                let home = shard.locate("$mqtt", &connect.client_id).1;
                if home == shard.id || assigned {
                    super::conn::run(shard.clone(), io, rest, *connect, assigned).await;
                } else {
                    super::pipe::relay(&shard, home, &mut io, input.to_vec()).await;
                }
            }
        }
        Err(e) => tracing::debug!(shard = shard.id, "MQTT TLS handshake failed: {e}"),
    }
    counter.fetch_sub(1, Ordering::Relaxed);
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

/// A place for the connection under `limits.mqtt_connections_per_ip` (held while it lives),
/// or `None` (logged) when its address has no room left.
fn connection_slot(
    shard: &MqttShard,
    stream: &TcpStream,
) -> Option<crate::security::limits::conns::Slot> {
    let client = shard.limits.client(stream.peer_addr().ok().map(|a| a.ip()));
    let slot = shard.limits.connection(Listener::Mqtt, &client);
    if slot.is_none() {
        tracing::debug!(shard = shard.id, ip = %client.ip, "mqtt connection refused: limits.mqtt_connections_per_ip");
    }
    slot
}

async fn first_contact(shard: Rc<MqttShard>, mut stream: TcpStream, mut input: BytesMut) {
    let Some(_slot) = connection_slot(&shard, &stream) else {
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
        response_info: None,
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
