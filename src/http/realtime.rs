//! Which requests leave HTTP for a stream: `Accept: text/event-stream` (SSE) or
//! `Upgrade: websocket` on `/{Table}/{id}` and `/{Table}/`, and `Upgrade: websocket` with the
//! `mqtt` subprotocol on `/mqtt`. Checks them, and hands the connection to `sse` or `ws`.

#![allow(clippy::result_large_err)] // like the REST handlers: the error is the ready response

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::router::percent_decode;
use super::shard::HttpShard;
use crate::net::Io;
use crate::storage::catalog::TableDef;
use crate::storage::hlc::Version;
use crate::storage::record_id::MAX_ID_BYTES;
use std::rc::Rc;
use std::sync::Arc;

/// What a real-time stream follows.
#[derive(Debug, Clone)]
pub struct Target {
    pub table: Arc<TableDef>,
    /// `None` for the whole table.
    pub id: Option<String>,
    /// The MQTT topic filter it amounts to: `{Table}/{id}` or `{Table}/#`.
    pub filter: String,
}

/// A request that becomes a stream, with everything it needs owned.
#[derive(Debug)]
pub enum Stream {
    Sse {
        target: Target,
        last_event_id: Option<Version>,
        /// The CORS lines its head carries (a page of another origin reading it).
        cors: Option<super::cors::Allowed>,
    },
    WebSocket {
        target: Target,
        key: String,
        /// Who opened it (its messages are publishes that user must be allowed).
        user: Option<Arc<crate::security::Principal>>,
    },
    MqttOverWebSocket {
        key: String,
    },
    /// The admin page's feed of node snapshots (`admin_page::live`), holding its slot.
    AdminLive(super::admin_page::live::Slot),
}

/// `None`: an ordinary request. `Some(Err)`: a stream request that is wrong.
pub fn stream_of(shard: &HttpShard, req: &Request<'_>) -> Option<Result<Stream, Response>> {
    let websocket = req
        .upgrade
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let sse = req.accept.is_some_and(|a| a.contains("text/event-stream"));
    if !websocket && !sse {
        return None;
    }
    if req.method != Method::Get {
        return None;
    }
    // A component's path: the component decides (it may answer with a stream). The admin
    // page's live stream is routed like any other admin path.
    if super::component::serves(shard, req.path) || req.path.starts_with("/admin/") {
        return None;
    }
    Some(decide(shard, req, websocket))
}

/// A WebSocket key is 16 bytes in base64: 22 characters of the alphabet, then `==`.
fn valid_ws_key(k: &str) -> bool {
    let b = k.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

fn decide(shard: &HttpShard, req: &Request<'_>, websocket: bool) -> Result<Stream, Response> {
    let key = if websocket {
        if !req.connection_upgrade || req.ws_version != Some("13") {
            let mut r = problem(
                426,
                "a WebSocket upgrade needs Connection: Upgrade and Sec-WebSocket-Version: 13",
            );
            r.extra.push("Sec-WebSocket-Version: 13".into());
            return Err(r);
        }
        match req.ws_key {
            Some(k) if valid_ws_key(k) => Some(k.to_string()),
            _ => {
                let why = "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 §4.2.1)";
                return Err(problem(400, why));
            }
        }
    } else {
        None
    };
    if req.path == "/mqtt" {
        let offers_mqtt = req
            .ws_protocol
            .is_some_and(|p| p.split(',').any(|p| p.trim() == "mqtt"));
        return match key {
            Some(key) if offers_mqtt => Ok(Stream::MqttOverWebSocket { key }),
            Some(_) => Err(problem(
                400,
                "MQTT over WebSocket needs Sec-WebSocket-Protocol: mqtt",
            )),
            None => Err(problem(400, "/mqtt takes a WebSocket upgrade")),
        };
    }
    let target = target_of(shard, req.path)?;
    match key {
        Some(key) => Ok(Stream::WebSocket {
            target,
            key,
            user: req.user.clone(),
        }),
        None => {
            let last_event_id = match req.last_event_id {
                None => None,
                Some(v) => Some(Version::parse_etag(v).ok_or_else(|| {
                    problem(
                        400,
                        &format!("Last-Event-ID {v:?} is not an event id of this server"),
                    )
                })?),
            };
            Ok(Stream::Sse {
                target,
                last_event_id,
                cors: None,
            })
        }
    }
}

/// The stream a component asked for: the changes of `table` (of record `id`), over a
/// WebSocket if the request upgrades, else as SSE.
pub fn stream_for(
    shard: &HttpShard,
    req: &Request<'_>,
    table: &str,
    id: Option<&str>,
) -> Result<Stream, Response> {
    let def = shard.table(table).ok_or_else(|| {
        problem(
            500,
            &format!("the component streams table {table:?}, which does not exist"),
        )
    })?;
    let filter = match id {
        Some(id) if id.contains(['+', '#', '\0']) => {
            return Err(problem(400, "this record id cannot be streamed (+ # NUL)"))
        }
        Some(id) => format!("{}/{id}", def.name),
        None => format!("{}/#", def.name),
    };
    let target = Target {
        table: def,
        id: id.map(str::to_string),
        filter,
    };
    let websocket = req
        .upgrade
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if websocket {
        match req.ws_key {
            Some(k) if req.connection_upgrade && req.ws_version == Some("13") && !k.is_empty() && k.len() <= 64 => {
                return Ok(Stream::WebSocket {
                    target,
                    key: k.to_string(),
                    user: req.user.clone(),
                })
            }
            _ => return Err(problem(400, "a WebSocket upgrade needs Connection: Upgrade, Sec-WebSocket-Version: 13 and a key")),
        }
    }
    let last_event_id = req.last_event_id.and_then(Version::parse_etag);
    Ok(Stream::Sse {
        target,
        last_event_id,
        cors: None,
    })
}

fn target_of(shard: &HttpShard, path: &str) -> Result<Target, Response> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let Some((table_raw, id_raw)) = trimmed.split_once('/') else {
        return Err(problem(
            400,
            "stream a record (/{Table}/{id}) or a table (/{Table}/)",
        ));
    };
    let table = percent_decode(table_raw)
        .ok_or_else(|| problem(400, "table name is not valid percent-encoded UTF-8"))?;
    let Some(def) = shard.table(&table) else {
        return Err(problem(404, &format!("table {table:?} does not exist")));
    };
    if id_raw.is_empty() {
        let filter = format!("{}/#", def.name);
        return Ok(Target {
            table: def,
            id: None,
            filter,
        });
    }
    let id = percent_decode(id_raw)
        .ok_or_else(|| problem(400, "record id is not valid percent-encoded UTF-8"))?;
    if id.len() > MAX_ID_BYTES || id.contains(['+', '#', '\0']) {
        return Err(problem(
            400,
            "this record id cannot be streamed (length or + # NUL)",
        ));
    }
    let filter = format!("{}/{id}", def.name);
    Ok(Target {
        table: def,
        id: Some(id.into_owned()),
        filter,
    })
}

impl Stream {
    /// The stream, its answer allowing `cors` (only an SSE answer is a CORS answer: browsers
    /// check a WebSocket's `Origin` on the server side instead).
    pub fn allowing(mut self, allowed: Option<super::cors::Allowed>) -> Stream {
        if let Stream::Sse { cors, .. } = &mut self {
            *cors = allowed;
        }
        self
    }
}

/// Runs the stream on this connection until either side ends it. `read` holds bytes the
/// client sent after the request.
pub async fn run<S: Io>(shard: Rc<HttpShard>, stream: S, kind: Stream, read: Vec<u8>) {
    let _ = stream.tcp().set_read_timeout(None);
    match kind {
        Stream::Sse {
            target,
            last_event_id,
            cors,
        } => super::sse::serve(shard, stream, target, last_event_id, cors).await,
        Stream::WebSocket { target, key, user } => {
            super::ws::serve_table(shard, stream, target, key, read, user).await
        }
        Stream::MqttOverWebSocket { key } => super::ws::serve_mqtt(shard, stream, key, read).await,
        Stream::AdminLive(slot) => super::admin_page::live::serve(shard, stream, slot).await,
    }
}

/// The JSON an event carries over SSE and WebSocket:
/// `{"type":"put"|"delete"|"message","id":..,"value":..}`.
pub fn event_json(msg: &crate::mqtt::message::Message) -> (&'static str, Vec<u8>) {
    let id = msg.topic.split_once('/').map(|(_, id)| id).unwrap_or("");
    let value: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&msg.payload).into())
    });
    let kind = match (msg.version.is_some(), msg.payload.is_empty()) {
        (true, true) => "delete",
        (true, false) => "put",
        (false, _) => "message",
    };
    let body = if kind == "delete" {
        serde_json::json!({ "type": kind, "id": id })
    } else {
        serde_json::json!({ "type": kind, "id": id, "value": value })
    };
    (kind, serde_json::to_vec(&body).unwrap_or_default())
}
