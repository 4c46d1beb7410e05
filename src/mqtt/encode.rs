//! Encoding the packets the server sends (CONNACK, PUBLISH, acks, SUBACK, UNSUBACK,
//! PINGRESP, DISCONNECT) for 3.1.1 or 5.0 with mqttbytes, onto a connection's output buffer.

use super::codec::Version;
use super::message::Message;
use bytes::{Bytes, BytesMut};
use mqttbytes::{v4, v5, QoS};

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// What the server tells a 5.0 client in its CONNACK.
pub struct ConnAckInfo {
    pub session_present: bool,
    /// 3.1.1 return code or 5.0 reason code.
    pub code: u8,
    pub assigned_client_id: Option<String>,
    pub receive_max: u16,
    pub max_packet: u32,
    pub topic_alias_max: u16,
    pub session_expiry_secs: Option<u32>,
    pub server_keep_alive: Option<u16>,
    /// 5.0 Response Information, when the client asked for it.
    pub response_info: Option<String>,
}

pub fn connack(out: &mut BytesMut, v: Version, info: ConnAckInfo) {
    match v {
        Version::V4 => {
            let code = match info.code {
                0 => v4::ConnectReturnCode::Success,
                1 => v4::ConnectReturnCode::RefusedProtocolVersion,
                2 => v4::ConnectReturnCode::BadClientId,
                3 => v4::ConnectReturnCode::ServiceUnavailable,
                4 => v4::ConnectReturnCode::BadUserNamePassword,
                _ => v4::ConnectReturnCode::NotAuthorized,
            };
            let _ = v4::ConnAck::new(code, info.session_present).write(out);
        }
        Version::V5 => {
            let code = match info.code {
                0 => v5::ConnectReturnCode::Success,
                0x81 => v5::ConnectReturnCode::MalformedPacket,
                0x82 => v5::ConnectReturnCode::ProtocolError,
                0x84 => v5::ConnectReturnCode::UnsupportedProtocolVersion,
                0x85 => v5::ConnectReturnCode::ClientIdentifierNotValid,
                0x86 => v5::ConnectReturnCode::BadUserNamePassword,
                0x87 => v5::ConnectReturnCode::NotAuthorized,
                0x89 => v5::ConnectReturnCode::ServerBusy,
                0x8C => v5::ConnectReturnCode::BadAuthenticationMethod,
                0x90 => v5::ConnectReturnCode::TopicNameInvalid,
                0x97 => v5::ConnectReturnCode::QuotaExceeded,
                _ => v5::ConnectReturnCode::UnspecifiedError,
            };
            let mut props = v5::ConnAckProperties::new();
            props.session_expiry_interval = info.session_expiry_secs;
            props.receive_max = Some(info.receive_max);
            props.max_packet_size = Some(info.max_packet);
            props.assigned_client_identifier = info.assigned_client_id;
            props.topic_alias_max = Some(info.topic_alias_max);
            props.retain_available = Some(1);
            props.wildcard_subscription_available = Some(1);
            props.subscription_identifiers_available = Some(1);
            props.shared_subscription_available = Some(1);
            props.server_keep_alive = info.server_keep_alive;
            props.response_information = info.response_info;
            let mut ack = v5::ConnAck::new(code, info.session_present);
            ack.properties = Some(props);
            let _ = ack.write(out);
        }
    }
}

/// How one message goes to one subscriber: its QoS and flags there, its packet id, and the
/// identifiers of the client's subscriptions it matches (5.0 only).
pub struct Delivery<'a> {
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub pkid: u16,
    pub sub_ids: &'a [u32],
    /// A 5.0 topic alias, and whether the client knows it already (then the topic is left
    /// out).
    pub alias: Option<(u16, bool)>,
}

/// A PUBLISH to a subscriber. Returns false (and writes nothing) if it does not fit `max`.
pub fn publish(
    out: &mut BytesMut,
    v: Version,
    m: &Message,
    d: &Delivery,
    now_ms: u64,
    max: usize,
) -> bool {
    let start = out.len();
    let pkid = if d.qos == 0 { 0 } else { d.pkid };
    let ok = match v {
        Version::V4 => {
            let mut p = v4::Publish::from_bytes(m.topic.as_str(), qos(d.qos), m.payload.clone());
            p.retain = d.retain;
            p.dup = d.dup;
            p.pkid = pkid;
            p.write(out).is_ok()
        }
        Version::V5 => {
            let topic = match d.alias {
                Some((_, true)) => "",
                _ => m.topic.as_str(),
            };
            let mut p = v5::Publish::new(topic, qos(d.qos), Vec::new());
            p.payload = m.payload.clone();
            p.retain = d.retain;
            p.dup = d.dup;
            p.pkid = pkid;
            p.properties = properties(m, d, now_ms);
            p.write(out).is_ok()
        }
    };
    if !ok || out.len() - start > max {
        out.truncate(start);
        return false;
    }
    true
}

/// A 5.0 PUBLISH's properties: the publisher's, the remaining expiry interval, the topic
/// alias, and one Subscription Identifier per matching subscription that has one (MQTT 5.0
/// §3.3.2.3.8).
fn properties(m: &Message, d: &Delivery, now_ms: u64) -> Option<v5::PublishProperties> {
    let expiry = m.remaining_expiry_secs(now_ms);
    if m.props.is_none() && expiry.is_none() && d.sub_ids.is_empty() && d.alias.is_none() {
        return None;
    }
    let p = m.props.as_deref().cloned().unwrap_or_default();
    Some(v5::PublishProperties {
        payload_format_indicator: p.payload_format,
        message_expiry_interval: expiry,
        topic_alias: d.alias.map(|(a, _)| a),
        response_topic: p.response_topic,
        correlation_data: p.correlation_data.map(Bytes::from),
        user_properties: p.user_properties,
        subscription_identifiers: d.sub_ids.iter().map(|i| *i as usize).collect(),
        content_type: p.content_type,
    })
}

/// Which acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    PubAck,
    PubRec,
    PubRel,
    PubComp,
}

/// An acknowledgement; `reason` is used by 5.0 only (0 = success).
pub fn ack(out: &mut BytesMut, v: Version, kind: Ack, pkid: u16, reason: u8) {
    match (v, kind) {
        (Version::V4, Ack::PubAck) => drop(v4::PubAck::new(pkid).write(out)),
        (Version::V4, Ack::PubRec) => drop(v4::PubRec::new(pkid).write(out)),
        (Version::V4, Ack::PubRel) => drop(v4::PubRel::new(pkid).write(out)),
        (Version::V4, Ack::PubComp) => drop(v4::PubComp::new(pkid).write(out)),
        (Version::V5, Ack::PubAck) => {
            let mut a = v5::PubAck::new(pkid);
            a.reason = match reason {
                0 => v5::PubAckReason::Success,
                0x10 => v5::PubAckReason::NoMatchingSubscribers,
                0x83 => v5::PubAckReason::ImplementationSpecificError,
                0x87 => v5::PubAckReason::NotAuthorized,
                0x90 => v5::PubAckReason::TopicNameInvalid,
                0x97 => v5::PubAckReason::QuotaExceeded,
                0x99 => v5::PubAckReason::PayloadFormatInvalid,
                _ => v5::PubAckReason::UnspecifiedError,
            };
            let _ = a.write(out);
        }
        (Version::V5, Ack::PubRec) => {
            let mut a = v5::PubRec::new(pkid);
            a.reason = match reason {
                0 => v5::PubRecReason::Success,
                0x10 => v5::PubRecReason::NoMatchingSubscribers,
                0x83 => v5::PubRecReason::ImplementationSpecificError,
                0x87 => v5::PubRecReason::NotAuthorized,
                0x90 => v5::PubRecReason::TopicNameInvalid,
                0x97 => v5::PubRecReason::QuotaExceeded,
                0x99 => v5::PubRecReason::PayloadFormatInvalid,
                _ => v5::PubRecReason::UnspecifiedError,
            };
            let _ = a.write(out);
        }
        (Version::V5, Ack::PubRel) => {
            let mut a = v5::PubRel::new(pkid);
            if reason != 0 {
                a.reason = v5::PubRelReason::PacketIdentifierNotFound;
            }
            let _ = a.write(out);
        }
        (Version::V5, Ack::PubComp) => {
            let mut a = v5::PubComp::new(pkid);
            if reason != 0 {
                a.reason = v5::PubCompReason::PacketIdentifierNotFound;
            }
            let _ = a.write(out);
        }
    }
}

/// SUBACK with one code per filter: 0..=2 granted QoS, else a failure (3.1.1 sends 0x80).
pub fn suback(out: &mut BytesMut, v: Version, pkid: u16, codes: &[u8]) {
    match v {
        Version::V4 => {
            let codes = codes
                .iter()
                .map(|c| match c {
                    0..=2 => v4::SubscribeReasonCode::Success(qos(*c)),
                    _ => v4::SubscribeReasonCode::Failure,
                })
                .collect();
            let _ = v4::SubAck::new(pkid, codes).write(out);
        }
        Version::V5 => {
            use v5::SubscribeReasonCode as C;
            let codes = codes
                .iter()
                .map(|c| match c {
                    0 => C::QoS0,
                    1 => C::QoS1,
                    2 => C::QoS2,
                    0x87 => C::NotAuthorized,
                    0x8F => C::TopicFilterInvalid,
                    0x97 => C::QuotaExceeded,
                    0x9E => C::SharedSubscriptionsNotSupported,
                    _ => C::Unspecified,
                })
                .collect();
            let _ = v5::SubAck {
                pkid,
                return_codes: codes,
                properties: None,
            }
            .write(out);
        }
    }
}

/// UNSUBACK; `existed` gives the 5.0 reason per filter.
pub fn unsuback(out: &mut BytesMut, v: Version, pkid: u16, existed: &[bool]) {
    match v {
        Version::V4 => drop(v4::UnsubAck::new(pkid).write(out)),
        Version::V5 => {
            let reasons = existed
                .iter()
                .map(|e| {
                    if *e {
                        v5::UnsubAckReason::Success
                    } else {
                        v5::UnsubAckReason::NoSubscriptionExisted
                    }
                })
                .collect();
            let _ = v5::UnsubAck {
                pkid,
                reasons,
                properties: None,
            }
            .write(out);
        }
    }
}

pub fn pingresp(out: &mut BytesMut) {
    out.extend_from_slice(&[0xD0, 0x00]);
}

/// A 5.0 DISCONNECT with a reason code (3.1.1 has no server DISCONNECT: nothing is written).
pub fn disconnect(out: &mut BytesMut, v: Version, reason: u8) {
    if v == Version::V5 {
        // Reason code and an empty property list.
        out.extend_from_slice(&[0xE0, 0x02, reason, 0x00]);
    }
}
