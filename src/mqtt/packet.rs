//! The broker's own view of MQTT packets, the same for 3.1.1 and 5.0: what `codec` decodes
//! client packets into, so the session logic is written once for both versions.

use super::message::{Message, Props};

/// A CONNECT, normalized.
#[derive(Debug, Clone)]
pub struct Connect {
    pub v5: bool,
    pub client_id: String,
    /// 3.1.1 clean session / 5.0 clean start.
    pub clean: bool,
    pub keep_alive_secs: u16,
    /// 5.0 session expiry; 3.1.1: 0 for a clean session, "never" otherwise.
    pub session_expiry_secs: u32,
    pub will: Option<Will>,
    /// How many QoS 1/2 messages the client accepts unacknowledged (5.0 receive maximum).
    pub receive_max: u16,
    /// Largest packet the client accepts (5.0).
    pub max_packet: Option<u32>,
    /// Topic aliases the client accepts from the server (5.0 Topic Alias Maximum; 0: none).
    pub topic_alias_max: u16,
    pub username: Option<String>,
    pub password: Option<Password>,
    /// 5.0 Authentication Method (enhanced authentication): not supported, so refused.
    pub auth_method: Option<String>,
    /// 5.0 Request Response Information: the client asks for a base for its response topics.
    pub request_response: bool,
}

/// A CONNECT's password: kept out of every log (`Debug` prints no byte of it).
#[derive(Clone)]
pub struct Password(Vec<u8>);

impl Password {
    pub fn new(bytes: Vec<u8>) -> Password {
        Password(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A will message and its 5.0 delay.
#[derive(Debug, Clone)]
pub struct Will {
    pub message: Message,
    pub delay_secs: u32,
}

/// One filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRequest {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    /// 0: send retained on subscribe, 1: only for a new subscription, 2: never.
    pub retain_handling: u8,
    /// 5.0 Subscription Identifier of the SUBSCRIBE (1..=268,435,455), sent back in every
    /// PUBLISH this subscription matches.
    pub sub_id: Option<u32>,
}

/// A PUBLISH from a client.
#[derive(Debug, Clone)]
pub struct PublishIn {
    /// Empty when a 5.0 topic alias stands for it.
    pub topic: String,
    pub pkid: u16,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub payload: bytes::Bytes,
    pub props: Option<Box<Props>>,
    pub topic_alias: Option<u16>,
    pub expiry_secs: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum Packet {
    Connect(Box<Connect>),
    Publish(PublishIn),
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe {
        pkid: u16,
        filters: Vec<SubRequest>,
    },
    Unsubscribe {
        pkid: u16,
        filters: Vec<String>,
    },
    PingReq,
    Disconnect {
        /// 5.0 reason code (0 normal, 4 = "disconnect with will message").
        reason: u8,
        session_expiry_secs: Option<u32>,
    },
    /// A packet only a server sends (CONNACK, SUBACK, ...): a protocol error from a client.
    ServerOnly,
}

/// Why a connection must end, and the 5.0 reason code to tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Malformed,
    Protocol,
    TooLarge,
    TopicInvalid,
    TopicAliasInvalid,
    ReceiveMaxExceeded,
    KeepAliveTimeout,
    TakenOver,
    QuotaExceeded,
    /// The connection's user is gone, or may no longer hold one of its subscriptions.
    NotAuthorized,
    ShuttingDown,
    /// A QoS 1/2 publish could not be stored for every session it was queued for (a write
    /// failed, or a shard stopped first); ends a 3.1.1 connection, which has no negative
    /// acknowledgement, before the message is acknowledged.
    NotStored,
}

impl Fault {
    pub fn reason_code(self) -> u8 {
        match self {
            Fault::Malformed => 0x81,
            Fault::Protocol => 0x82,
            Fault::TooLarge => 0x95,
            Fault::TopicInvalid => 0x90,
            Fault::TopicAliasInvalid => 0x94,
            Fault::ReceiveMaxExceeded => 0x93,
            Fault::KeepAliveTimeout => 0x8D,
            Fault::TakenOver => 0x8E,
            Fault::QuotaExceeded => 0x97,
            Fault::NotAuthorized => 0x87,
            Fault::ShuttingDown => 0x8B,
            Fault::NotStored => 0x80,
        }
    }
}
