//! WebSockets: the handshake (RFC 6455 via tungstenite's key derivation) and two kinds of
//! session. On `/{Table}/{id}` and `/{Table}/` the socket streams the same events as SSE (one
//! JSON text message each) and takes JSON messages from the client, published to the
//! record's topic (delivered to subscribers, not written; the user must be allowed to publish
//! there, or the socket closes with 1008). On `/mqtt` (subprotocol `mqtt`)
//! it carries MQTT, each binary message a piece of the byte stream (see `ws_mqtt`).

use super::realtime::{event_json, Target};
use super::shard::HttpShard;
use crate::mqtt::fresh::Fresh;
use crate::mqtt::message::Message as MqttMessage;
use crate::mqtt::watch::Watch;
use crate::net::{send, Io};
use crate::security::Principal;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use futures_lite::future::or;
use futures_util::{SinkExt, StreamExt};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// A WebSocket over a connection's byte stream (plain or TLS).
pub type Ws<S> = WebSocketStream<S>;

/// Answers the upgrade and wraps the socket. `read` holds bytes the client sent after the
/// request (already WebSocket frames).
pub async fn accept<S: Io>(
    shard: &HttpShard,
    mut stream: S,
    key: &str,
    protocol: Option<&str>,
    read: Vec<u8>,
) -> Option<Ws<S>> {
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(p) = protocol {
        head.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    head.push_str("\r\n");
    send(&mut stream, head.as_bytes()).await.ok()?;
    let max = shard.config().http.max_body_bytes;
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    Some(WebSocketStream::from_partially_read(stream, read, Role::Server, Some(config)).await)
}

/// A WebSocket on a record or table path.
pub async fn serve_table<S: Io>(
    shard: Rc<HttpShard>,
    stream: S,
    target: Target,
    key: String,
    read: Vec<u8>,
    user: Option<Arc<Principal>>,
) {
    // Subscribe before the handshake completes: a client that writes once the stream is
    // open must see its own write.
    let watch = Watch::open(&shard.mqtt, &target.filter).await;
    let Some(mut ws) = accept(&shard, stream, &key, None, read).await else {
        return;
    };
    let first = match target.id {
        Some(_) => crate::mqtt::tables::snapshot(&shard.mqtt, &target.filter),
        None => Vec::new(),
    };
    let mut fresh = Fresh::new(first.len());
    for m in first {
        if fresh.first(&m) {
            let _ = ws.feed(text(&m)).await;
        }
    }
    let close = loop {
        if watch.closed().is_some() {
            break Some((CloseCode::Policy, "too slow: events were not read in time"));
        }
        if shard.draining.get() {
            break Some((CloseCode::Away, "server shutting down"));
        }
        for m in watch.take() {
            if fresh.live(&m, false) && ws.feed(text(&m)).await.is_err() {
                break;
            }
        }
        if ws.flush().await.is_err() {
            break None;
        }
        enum Ev {
            In(Option<Result<Message, async_tungstenite::tungstenite::Error>>),
            Wake,
            Tick,
        }
        let ev = or(
            async { Ev::In(ws.next().await) },
            or(
                async {
                    let _ = watch.wake.recv().await;
                    Ev::Wake
                },
                async {
                    glommio::timer::sleep(Duration::from_secs(1)).await;
                    Ev::Tick
                },
            ),
        )
        .await;
        match ev {
            Ev::In(Some(Ok(Message::Text(t)))) => {
                if let Err(why) = publish(&shard, &watch, &target, t.as_bytes(), &user).await {
                    break Some(why);
                }
            }
            Ev::In(Some(Ok(Message::Binary(b)))) => {
                if let Err(why) = publish(&shard, &watch, &target, &b, &user).await {
                    break Some(why);
                }
            }
            Ev::In(Some(Ok(Message::Close(_)))) | Ev::In(None) | Ev::In(Some(Err(_))) => {
                break None
            }
            Ev::In(Some(Ok(_))) | Ev::Wake | Ev::Tick => {}
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = ws.close(Some(frame)).await;
    }
    watch.end().await;
}

fn text(m: &MqttMessage) -> Message {
    let (_, json) = event_json(m);
    Message::text(String::from_utf8(json).unwrap_or_default())
}

/// A client's message: a JSON value published to the record's topic (on a table path, an
/// object naming its record by primary key), if the user may publish there. `Err`: how the
/// socket closes.
async fn publish(
    shard: &HttpShard,
    watch: &Watch,
    target: &Target,
    payload: &[u8],
    user: &Option<Arc<Principal>>,
) -> Result<(), (CloseCode, &'static str)> {
    let invalid = |why| (CloseCode::Invalid, why);
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| invalid("messages must be JSON"))?;
    let topic = match &target.id {
        Some(_) => target.filter.clone(),
        None => {
            let Some(id) = value
                .get(&target.table.primary_key)
                .and_then(crate::storage::record_id::id_text)
            else {
                return Err(invalid(
                    "on a table, a message must be an object with its primary key",
                ));
            };
            if crate::storage::record_id::check(&id).is_err() || id.contains(['+', '#', '\0']) {
                return Err(invalid("invalid record id"));
            }
            format!("{}/{id}", target.table.name)
        }
    };
    // A message to the record's subscribers: what MQTT allows a plain publish there.
    let allowed =
        |u: &Principal| crate::mqtt::acl::may_publish(&shard.mqtt, u, &topic, false, false);
    if user.as_ref().is_some_and(|u| !allowed(u)) {
        return Err((
            CloseCode::Policy,
            "this user may not publish to the record's topic (it needs update on the table)",
        ));
    }
    let msg = MqttMessage {
        topic,
        payload: bytes::Bytes::copy_from_slice(payload),
        qos: 0,
        retain: false,
        props: None,
        expires_at_ms: None,
        from: watch.session.client_id.clone(),
        version: None,
    };
    // QoS 0, not retained: nothing to wait for.
    let _ = crate::mqtt::handler::publish_message(&shard.mqtt, msg, false).await;
    Ok(())
}

/// MQTT over WebSocket on `/mqtt`.
pub async fn serve_mqtt<S: Io>(shard: Rc<HttpShard>, stream: S, key: String, read: Vec<u8>) {
    let Some(ws) = accept(&shard, stream, &key, Some("mqtt"), read).await else {
        return;
    };
    super::ws_mqtt::serve(shard, ws).await;
}
