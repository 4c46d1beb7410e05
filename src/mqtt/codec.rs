//! Framing and translation: client bytes → `packet::Packet` (mqttbytes v4 for 3.1.1, v5 for
//! 5.0, after the fixed-header checks mqttbytes leaves out), and the server's packets →
//! bytes. Never panics on input: every failure is a `Fault` that ends the connection.

use super::frame_check::{connect_level, repeats_a_property, subscription_options, unsubscribe_v5};
use super::message::Props;
use super::packet::{Connect, Fault, Packet, PublishIn, SubRequest, Will};
use bytes::BytesMut;
use mqttbytes::{v4, v5, QoS};
use std::sync::Arc;

/// Protocol level of a connection, known once its CONNECT is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V4,
    V5,
}

/// The outcome of decoding the start of `buf`.
pub enum Decoded {
    Packet(Packet),
    /// More bytes are needed.
    Incomplete,
    /// CONNECT with a protocol level we do not speak: answer CONNACK 0x01 and close.
    UnsupportedVersion,
}

/// Decodes one packet. `version` is `None` until the CONNECT has been read.
pub fn decode(buf: &mut BytesMut, version: Option<Version>, max: usize) -> Result<Decoded, Fault> {
    let header = match mqttbytes::check(buf.iter(), max) {
        Ok(h) => h,
        Err(mqttbytes::Error::InsufficientBytes(_)) => return Ok(Decoded::Incomplete),
        Err(mqttbytes::Error::PayloadSizeLimitExceeded(_)) => return Err(Fault::TooLarge),
        Err(_) => return Err(Fault::Malformed),
    };
    let byte1 = buf[0];
    let (kind, flags) = (byte1 >> 4, byte1 & 0x0f);
    let flags_ok = match kind {
        3 => true,
        6 | 8 | 10 => flags == 0b0010,
        1..=14 => flags == 0,
        _ => false,
    };
    if !flags_ok {
        return Err(Fault::Malformed);
    }
    // DUP set on a QoS 0 PUBLISH (MQTT-3.3.1-2 in both versions): malformed.
    if kind == 3 && flags & 0x08 != 0 && flags & 0x06 == 0 {
        return Err(Fault::Malformed);
    }
    let version = match version {
        Some(v) => {
            if kind == 1 {
                return Err(Fault::Protocol);
            }
            v
        }
        None => {
            if kind != 1 {
                return Err(Fault::Protocol);
            }
            match connect_level(&buf[..header.frame_length()]) {
                Some(4) => Version::V4,
                Some(5) => Version::V5,
                Some(_) => return Ok(Decoded::UnsupportedVersion),
                None => return Err(Fault::Malformed),
            }
        }
    };
    if kind == 8 {
        subscription_options(&buf[..header.frame_length()], version)?;
    }
    // A 5.0 property other than a User Property given twice is a protocol error (§2.2.2.2);
    // the decoder underneath would keep the last one.
    if version == Version::V5 && kind != 1 && repeats_a_property(&buf[..header.frame_length()]) {
        return Err(Fault::Protocol);
    }
    if version == Version::V5 && byte1 == 0xE0 && buf.len() >= 2 && buf[1] == 0 {
        let _ = buf.split_to(2);
        return Ok(Decoded::Packet(Packet::Disconnect {
            reason: 0,
            session_expiry_secs: None,
        }));
    }
    if version == Version::V5 && kind == 10 {
        let packet = unsubscribe_v5(&buf[..header.frame_length()])?;
        let _ = buf.split_to(header.frame_length());
        return Ok(Decoded::Packet(packet));
    }
    let packet = match version {
        Version::V4 => from_v4(v4::read(buf, max).map_err(fault)?),
        Version::V5 => from_v5(v5::read(buf, max).map_err(fault)?),
    }?;
    Ok(Decoded::Packet(packet))
}

fn fault(e: mqttbytes::Error) -> Fault {
    match e {
        mqttbytes::Error::PayloadSizeLimitExceeded(_) => Fault::TooLarge,
        mqttbytes::Error::InvalidProtocolLevel(_) | mqttbytes::Error::InvalidProtocol => {
            Fault::Protocol
        }
        _ => Fault::Malformed,
    }
}

fn qos_u8(q: QoS) -> u8 {
    q as u8
}

fn from_v4(p: v4::Packet) -> Result<Packet, Fault> {
    Ok(match p {
        v4::Packet::Connect(c) => {
            let will = c.last_will.map(|w| Will {
                message: super::message::Message {
                    topic: w.topic,
                    payload: w.message,
                    qos: qos_u8(w.qos),
                    retain: w.retain,
                    props: None,
                    expires_at_ms: None,
                    from: Arc::from(c.client_id.as_str()),
                    version: None,
                },
                delay_secs: 0,
            });
            Packet::Connect(Box::new(Connect {
                v5: false,
                clean: c.clean_session,
                keep_alive_secs: c.keep_alive,
                session_expiry_secs: if c.clean_session { 0 } else { u32::MAX },
                will,
                receive_max: u16::MAX,
                max_packet: None,
                topic_alias_max: 0,
                username: c
                    .login
                    .as_ref()
                    .map(|l| l.username.clone())
                    .filter(|u| !u.is_empty()),
                password: c
                    .login
                    .map(|l| super::packet::Password::new(l.password.into_bytes())),
                client_id: c.client_id,
                auth_method: None,
                request_response: false,
            }))
        }
        v4::Packet::Publish(p) => Packet::Publish(PublishIn {
            topic: p.topic,
            pkid: p.pkid,
            qos: qos_u8(p.qos),
            retain: p.retain,
            dup: p.dup,
            payload: p.payload,
            props: None,
            topic_alias: None,
            expiry_secs: None,
        }),
        v4::Packet::PubAck(a) => Packet::PubAck(a.pkid),
        v4::Packet::PubRec(a) => Packet::PubRec(a.pkid),
        v4::Packet::PubRel(a) => Packet::PubRel(a.pkid),
        v4::Packet::PubComp(a) => Packet::PubComp(a.pkid),
        v4::Packet::Subscribe(s) => {
            if s.filters.is_empty() {
                return Err(Fault::Protocol);
            }
            Packet::Subscribe {
                pkid: s.pkid,
                filters: s
                    .filters
                    .into_iter()
                    .map(|f| SubRequest {
                        filter: f.path,
                        qos: qos_u8(f.qos),
                        no_local: false,
                        retain_as_published: false,
                        sub_id: None,
                        retain_handling: 0,
                    })
                    .collect(),
            }
        }
        v4::Packet::Unsubscribe(u) => {
            if u.topics.is_empty() {
                return Err(Fault::Protocol);
            }
            Packet::Unsubscribe {
                pkid: u.pkid,
                filters: u.topics,
            }
        }
        v4::Packet::PingReq => Packet::PingReq,
        v4::Packet::Disconnect => Packet::Disconnect {
            reason: 0,
            session_expiry_secs: None,
        },
        _ => Packet::ServerOnly,
    })
}

fn from_v5(p: v5::Packet) -> Result<Packet, Fault> {
    Ok(match p {
        v5::Packet::Connect(c) => {
            let props = c.properties.unwrap_or_else(empty_connect_props);
            if props.receive_maximum == Some(0) || props.max_packet_size == Some(0) {
                return Err(Fault::Protocol);
            }
            let will = c.last_will.map(|w| {
                let wp = w.properties;
                let delay_secs = wp.as_ref().and_then(|p| p.delay_interval).unwrap_or(0);
                let expiry = wp.as_ref().and_then(|p| p.message_expiry_interval);
                let props = wp.map(|p| {
                    Box::new(Props {
                        payload_format: p.payload_format_indicator,
                        content_type: p.content_type,
                        response_topic: p.response_topic,
                        correlation_data: p.correlation_data.map(|b| b.to_vec()),
                        user_properties: p.user_properties,
                    })
                });
                Will {
                    message: super::message::Message {
                        topic: w.topic,
                        payload: w.message,
                        qos: qos_u8(w.qos),
                        retain: w.retain,
                        props,
                        // Resolved to a deadline when the will is published.
                        expires_at_ms: expiry.map(u64::from),
                        from: Arc::from(c.client_id.as_str()),
                        version: None,
                    },
                    delay_secs,
                }
            });
            Packet::Connect(Box::new(Connect {
                v5: true,
                clean: c.clean_session,
                keep_alive_secs: c.keep_alive,
                session_expiry_secs: props.session_expiry_interval.unwrap_or(0),
                will,
                receive_max: props.receive_maximum.unwrap_or(u16::MAX),
                max_packet: props.max_packet_size,
                topic_alias_max: props.topic_alias_max.unwrap_or(0),
                username: c
                    .login
                    .as_ref()
                    .map(|l| l.username.clone())
                    .filter(|u| !u.is_empty()),
                password: c
                    .login
                    .map(|l| super::packet::Password::new(l.password.into_bytes())),
                client_id: c.client_id,
                auth_method: props.authentication_method,
                request_response: props.request_response_info == Some(1),
            }))
        }
        v5::Packet::Publish(p) => {
            let (props, alias, expiry) = match p.properties {
                None => (None, None, None),
                Some(pp) => {
                    if pp.topic_alias == Some(0) {
                        return Err(Fault::TopicAliasInvalid);
                    }
                    if !pp.subscription_identifiers.is_empty() {
                        return Err(Fault::Protocol);
                    }
                    let props = Props {
                        payload_format: pp.payload_format_indicator,
                        content_type: pp.content_type,
                        response_topic: pp.response_topic,
                        correlation_data: pp.correlation_data.map(|b| b.to_vec()),
                        user_properties: pp.user_properties,
                    };
                    let props = (props != Props::default()).then(|| Box::new(props));
                    (props, pp.topic_alias, pp.message_expiry_interval)
                }
            };
            Packet::Publish(PublishIn {
                topic: p.topic,
                pkid: p.pkid,
                qos: qos_u8(p.qos),
                retain: p.retain,
                dup: p.dup,
                payload: p.payload,
                props,
                topic_alias: alias,
                expiry_secs: expiry,
            })
        }
        v5::Packet::PubAck(a) => Packet::PubAck(a.pkid),
        v5::Packet::PubRec(a) => Packet::PubRec(a.pkid),
        v5::Packet::PubRel(a) => Packet::PubRel(a.pkid),
        v5::Packet::PubComp(a) => Packet::PubComp(a.pkid),
        v5::Packet::Subscribe(s) => {
            if s.filters.is_empty() {
                return Err(Fault::Protocol);
            }
            // A Subscription Identifier of 0 is a protocol error (MQTT 5.0 §3.8.2.1.2).
            let sub_id = match s.properties.and_then(|p| p.id) {
                Some(0) => return Err(Fault::Protocol),
                id => id.map(|i| i as u32),
            };
            // No Local on a shared subscription is a protocol error (MQTT 5.0 §3.8.3.1).
            if s.filters
                .iter()
                .any(|f| f.nolocal && super::topic::is_shared(&f.path))
            {
                return Err(Fault::Protocol);
            }
            Packet::Subscribe {
                pkid: s.pkid,
                filters: s
                    .filters
                    .into_iter()
                    .map(|f| SubRequest {
                        filter: f.path,
                        qos: qos_u8(f.qos),
                        no_local: f.nolocal,
                        retain_as_published: f.preserve_retain,
                        retain_handling: match f.retain_forward_rule {
                            v5::RetainForwardRule::OnEverySubscribe => 0,
                            v5::RetainForwardRule::OnNewSubscribe => 1,
                            v5::RetainForwardRule::Never => 2,
                        },
                        sub_id,
                    })
                    .collect(),
            }
        }
        v5::Packet::Unsubscribe(u) => {
            if u.filters.is_empty() {
                return Err(Fault::Protocol);
            }
            Packet::Unsubscribe {
                pkid: u.pkid,
                filters: u.filters,
            }
        }
        v5::Packet::PingReq => Packet::PingReq,
        v5::Packet::Disconnect(d) => Packet::Disconnect {
            reason: d.reason_code as u8,
            session_expiry_secs: d.properties.and_then(|p| p.session_expiry_interval),
        },
        _ => Packet::ServerOnly,
    })
}

fn empty_connect_props() -> v5::ConnectProperties {
    v5::ConnectProperties {
        session_expiry_interval: None,
        receive_maximum: None,
        max_packet_size: None,
        topic_alias_max: None,
        request_response_info: None,
        request_problem_info: None,
        user_properties: Vec::new(),
        authentication_method: None,
        authentication_data: None,
    }
}

pub use super::encode::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8], v: Option<Version>) -> Result<Decoded, Fault> {
        let mut b = BytesMut::from(bytes);
        decode(&mut b, v, 1024)
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u64;
        for len in 0..64usize {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect();
                for v in [None, Some(Version::V4), Some(Version::V5)] {
                    let _ = one(&bytes, v);
                }
            }
        }
    }

    #[test]
    fn publish_before_connect_is_a_protocol_error() {
        let r = one(&[0x30, 0x05, 0x00, 0x01, b'a', b'h', b'i'], None);
        assert!(matches!(r, Err(Fault::Protocol)));
    }

    #[test]
    fn oversize_is_detected_from_the_header() {
        let r = one(&[0x30, 0xff, 0xff, 0x03], Some(Version::V4));
        assert!(matches!(r, Err(Fault::TooLarge)));
    }

    #[test]
    fn wrong_fixed_header_flags_are_malformed() {
        // SUBSCRIBE must carry flags 0b0010.
        let r = one(&[0x80, 0x06, 0, 1, 0, 1, b'a', 0], Some(Version::V4));
        assert!(matches!(r, Err(Fault::Malformed)));
    }

    #[test]
    fn a_5_0_unsubscribe_is_read_here() {
        // Packet id 7, a User Property, two filters.
        let frame = [
            0xA2, 20, 0, 7, 7, 0x26, 0, 1, b'k', 0, 1, b'v', 0, 3, b'a', b'/', b'b', 0, 1,
            b'#',
            // (remaining length checked below)
        ];
        let mut frame = frame.to_vec();
        frame[1] = (frame.len() - 2) as u8;
        match one(&frame, Some(Version::V5)) {
            Ok(Decoded::Packet(Packet::Unsubscribe { pkid, filters })) => {
                assert_eq!((pkid, filters), (7, vec!["a/b".to_string(), "#".into()]));
            }
            Ok(_) => panic!("not an UNSUBSCRIBE"),
            Err(f) => panic!("refused: {f:?}"),
        }
        // Another property than a User Property: malformed; no filter: a protocol error.
        let other = [0xA2, 8, 0, 7, 2, 0x01, 1, 0, 1, b'a'];
        assert!(matches!(
            one(&other, Some(Version::V5)),
            Err(Fault::Malformed)
        ));
        let empty = [0xA2, 3, 0, 7, 0];
        assert!(matches!(
            one(&empty, Some(Version::V5)),
            Err(Fault::Protocol)
        ));
    }

    #[test]
    fn a_property_given_twice_is_refused() {
        // A 5.0 CONNECT with Session Expiry Interval twice: malformed, no CONNACK.
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 30];
        body.extend_from_slice(&[10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]);
        body.extend_from_slice(&[0, 1, b'c']);
        let mut frame = vec![0x10, body.len() as u8];
        frame.extend_from_slice(&body);
        assert!(matches!(one(&frame, None), Err(Fault::Malformed)));
        // A PUBLISH with Payload Format Indicator twice: a protocol error.
        let publish = [0x30, 9, 0, 1, b't', 4, 0x01, 1, 0x01, 1, b'x'];
        assert!(matches!(
            one(&publish, Some(Version::V5)),
            Err(Fault::Protocol)
        ));
        // User Properties may repeat.
        let user = [
            0x30, 19, 0, 1, b't', 14, 0x26, 0, 1, b'k', 0, 1, b'a', 0x26, 0, 1, b'k', 0, 1, b'b',
            b'x',
        ];
        assert!(one(&user, Some(Version::V5)).is_ok());
    }

    #[test]
    fn connect_fields_must_match_their_flags() {
        // 3.1.1 CONNECT "MQTT" level 4, clean, keep-alive 30, client id "c".
        let base = [
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30, 0, 1, b'c',
        ];
        assert!(matches!(one(&base, None), Ok(Decoded::Packet(_))));
        // A user name that its flag does not announce.
        let mut trailing = base.to_vec();
        trailing.extend_from_slice(&[0, 1, b'u']);
        trailing[1] += 3;
        assert!(matches!(one(&trailing, None), Err(Fault::Malformed)));
        // A password without a user name: malformed in 3.1.1, allowed in 5.0.
        let mut password = trailing.clone();
        password[9] |= 0x40;
        assert!(matches!(one(&password, None), Err(Fault::Malformed)));
        let mut v5 = password.clone();
        v5[8] = 5;
        v5.insert(12, 0); // no properties
        v5[1] += 1;
        assert!(matches!(one(&v5, None), Ok(Decoded::Packet(_))));
    }

    #[test]
    fn reserved_subscription_option_bits_are_malformed() {
        // SUBSCRIBE pkid 1, filter "a", options byte last.
        let v4 = |o: u8| one(&[0x82, 6, 0, 1, 0, 1, b'a', o], Some(Version::V4));
        let v5 = |o: u8| one(&[0x82, 7, 0, 1, 0, 0, 1, b'a', o], Some(Version::V5));
        assert!(matches!(v4(0x02), Ok(Decoded::Packet(_))));
        assert!(matches!(v4(0x04), Err(Fault::Malformed)));
        assert!(matches!(v5(0x2E), Ok(Decoded::Packet(_))));
        assert!(matches!(v5(0x40), Err(Fault::Malformed)));
        assert!(matches!(v5(0x30), Err(Fault::Protocol)));
        assert!(matches!(v5(0x03), Err(Fault::Protocol)));
    }

    #[test]
    fn empty_v5_disconnect_is_normal() {
        let r = one(&[0xE0, 0x00], Some(Version::V5));
        assert!(matches!(
            r,
            Ok(Decoded::Packet(Packet::Disconnect { reason: 0, .. }))
        ));
    }
}
