//! An application message as the broker carries it between sessions and shards (topic,
//! payload, QoS, retain, v5 properties that are passed through, expiry), and its stored form
//! (rkyv) for retained messages and offline queues.

use bytes::Bytes;
use rkyv::{Archive, Deserialize, Serialize};
use std::sync::Arc;

/// v5 properties that travel with a message from publisher to subscribers unchanged.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Props {
    pub payload_format: Option<u8>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Vec<u8>>,
    pub user_properties: Vec<(String, String)>,
}

/// A message being routed. Shared (`Arc`) between every session that receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    /// QoS the publisher used (a subscriber gets min(this, its subscription's QoS)).
    pub qos: u8,
    pub retain: bool,
    pub props: Option<Box<Props>>,
    /// Unix ms after which the message is no longer delivered (v5 message expiry).
    pub expires_at_ms: Option<u64>,
    /// Client id of the publisher (for v5 no-local); empty for database changes.
    pub from: Arc<str>,
    /// For a record's value or change: its version (SSE event ids, resumption).
    pub version: Option<crate::storage::hlc::Version>,
}

impl Message {
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|t| now_ms >= t)
    }

    /// Remaining expiry interval in seconds, for the outgoing v5 property.
    pub fn remaining_expiry_secs(&self, now_ms: u64) -> Option<u32> {
        self.expires_at_ms
            .map(|t| (t.saturating_sub(now_ms).div_ceil(1000)).min(u32::MAX as u64) as u32)
    }
}

/// Stored form: a message plus the delivery state of one queue entry.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub props: Option<Props>,
    pub expires_at_ms: u64,
    pub from: String,
    /// Packet id given when sent (0 = not sent yet).
    pub pkid: u16,
    /// 0 queued, 1 sent (waiting for PUBACK/PUBREC), 2 released (waiting for PUBCOMP).
    pub state: u8,
}

impl StoredMessage {
    pub fn from_message(m: &Message, qos: u8, retain: bool, pkid: u16, state: u8) -> Self {
        StoredMessage {
            topic: m.topic.clone(),
            payload: m.payload.to_vec(),
            qos,
            retain,
            props: m.props.as_deref().cloned(),
            expires_at_ms: m.expires_at_ms.unwrap_or(0),
            from: m.from.to_string(),
            pkid,
            state,
        }
    }

    pub fn to_message(&self) -> Message {
        Message {
            topic: self.topic.clone(),
            payload: Bytes::from(self.payload.clone()),
            qos: self.qos,
            retain: self.retain,
            props: self.props.clone().map(Box::new),
            expires_at_ms: (self.expires_at_ms != 0).then_some(self.expires_at_ms),
            from: Arc::from(self.from.as_str()),
            version: None,
        }
    }

    /// The stored bytes; an error (which plain strings and byte vectors never cause) is
    /// for the caller to log: nothing half-encoded is ever stored.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        rkyv::to_bytes::<rkyv::rancor::Error>(self)
            .map(|b| b.into_vec())
            .map_err(|e| format!("cannot encode a stored MQTT message: {e}"))
    }

    /// Validates and decodes stored bytes; `None` for anything this build did not write.
    pub fn decode(bytes: &[u8]) -> Option<StoredMessage> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        let archived = rkyv::access::<ArchivedStoredMessage, rkyv::rancor::Error>(&aligned).ok()?;
        rkyv::deserialize::<StoredMessage, rkyv::rancor::Error>(archived).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_message_round_trips() {
        let m = Message {
            topic: "a/b".into(),
            payload: Bytes::from_static(b"hi"),
            qos: 2,
            retain: true,
            props: Some(Box::new(Props {
                user_properties: vec![("k".into(), "v".into())],
                ..Props::default()
            })),
            expires_at_ms: Some(5),
            from: Arc::from("c1"),
            version: None,
        };
        let s = StoredMessage::from_message(&m, 1, false, 7, 1);
        let back = StoredMessage::decode(&s.encode().unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.to_message().props, m.props);
        assert!(StoredMessage::decode(b"garbage").is_none());
    }
}
