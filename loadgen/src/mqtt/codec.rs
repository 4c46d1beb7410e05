//! Hand-encoded MQTT 3.1.1 (v4) and 5.0 (v5) packets: the few a load generator needs
//! (CONNECT, SUBSCRIBE, PUBLISH, the QoS 1/2 acknowledgements, PINGREQ, DISCONNECT), and
//! a zero-copy decoder for what a broker sends back.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V4,
    V5,
}

pub const PUBACK: u8 = 4;
pub const PUBREC: u8 = 5;
pub const PUBREL: u8 = 6;
pub const PUBCOMP: u8 = 7;

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// Decodes a variable byte integer; returns (value, bytes used).
fn get_len(b: &[u8]) -> Result<Option<(usize, usize)>, &'static str> {
    let mut v = 0usize;
    for i in 0..4 {
        let Some(&byte) = b.get(i) else {
            return Ok(None);
        };
        v |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    Err("malformed remaining length")
}

pub struct ConnectOpts<'a> {
    pub client_id: &'a str,
    pub keepalive: u16,
    /// 5.0 Session Expiry Interval in seconds; 0 = the property is left out.
    pub session_expiry: u32,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
}

pub fn connect(out: &mut Vec<u8>, v: Version, o: &ConnectOpts) {
    let mut body = Vec::with_capacity(64);
    put_str(&mut body, b"MQTT");
    body.push(if v == Version::V5 { 5 } else { 4 });
    let mut flags = 0x02; // clean session / clean start
    if o.username.is_some() {
        flags |= 0x80;
    }
    if o.password.is_some() {
        flags |= 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&o.keepalive.to_be_bytes());
    if v == Version::V5 {
        if o.session_expiry > 0 {
            body.push(5); // properties: Session Expiry Interval (0x11), four bytes
            body.push(0x11);
            body.extend_from_slice(&o.session_expiry.to_be_bytes());
        } else {
            body.push(0); // no properties
        }
    }
    put_str(&mut body, o.client_id.as_bytes());
    if let Some(u) = o.username {
        put_str(&mut body, u.as_bytes());
    }
    if let Some(p) = o.password {
        put_str(&mut body, p.as_bytes());
    }
    out.push(0x10);
    put_len(out, body.len());
    out.extend_from_slice(&body);
}

pub fn subscribe(out: &mut Vec<u8>, v: Version, pid: u16, filter: &str, qos: u8) {
    let props = usize::from(v == Version::V5);
    out.push(0x82);
    put_len(out, 2 + props + 2 + filter.len() + 1);
    out.extend_from_slice(&pid.to_be_bytes());
    if v == Version::V5 {
        out.push(0);
    }
    put_str(out, filter.as_bytes());
    out.push(qos);
}

/// PUBLISH with `payload`; `pid` is used for QoS 1 and 2 only.
pub fn publish(
    out: &mut Vec<u8>,
    v: Version,
    topic: &[u8],
    qos: u8,
    retain: bool,
    pid: u16,
    payload: &[u8],
) {
    let mut first = 0x30 | (qos << 1);
    if retain {
        first |= 1;
    }
    out.push(first);
    let len = 2
        + topic.len()
        + if qos > 0 { 2 } else { 0 }
        + usize::from(v == Version::V5)
        + payload.len();
    put_len(out, len);
    put_str(out, topic);
    if qos > 0 {
        out.extend_from_slice(&pid.to_be_bytes());
    }
    if v == Version::V5 {
        out.push(0);
    }
    out.extend_from_slice(payload);
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (success, no properties: valid in v4 and v5).
pub fn ack(out: &mut Vec<u8>, kind: u8, pid: u16) {
    out.push(kind << 4 | if kind == PUBREL { 0x02 } else { 0 });
    out.push(2);
    out.extend_from_slice(&pid.to_be_bytes());
}

pub fn pingreq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xC0, 0]);
}

pub fn disconnect(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xE0, 0]);
}

#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `receive_max`: the broker's Receive Maximum (v5 property), if it sent one.
    ConnAck {
        code: u8,
        receive_max: Option<u16>,
    },
    SubAck {
        pid: u16,
        code: u8,
    },
    Publish {
        qos: u8,
        retain: bool,
        pid: u16,
        topic: &'a [u8],
        payload: &'a [u8],
    },
    Ack {
        kind: u8,
        pid: u16,
        code: u8,
    },
    PingResp,
    Disconnect {
        code: u8,
    },
    Other(u8),
}

fn u16_at(b: &[u8], i: usize) -> Result<u16, &'static str> {
    b.get(i..i + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or("packet too short")
}

/// Decodes one packet from the front of `buf`: Ok(None) if incomplete, else the packet
/// and its total length.
pub fn decode(buf: &[u8], v: Version) -> Result<Option<(Packet<'_>, usize)>, &'static str> {
    if buf.is_empty() {
        return Ok(None);
    }
    let Some((len, n)) = get_len(&buf[1..])? else {
        return Ok(None);
    };
    let total = 1 + n + len;
    if buf.len() < total {
        return Ok(None);
    }
    let first = buf[0];
    let b = &buf[1 + n..total];
    let v5 = v == Version::V5;
    let p = match first >> 4 {
        2 => {
            let code = *b.get(1).ok_or("short CONNACK")?;
            let receive_max = if v5 && b.len() > 2 {
                receive_maximum(&b[2..])?
            } else {
                None
            };
            Packet::ConnAck { code, receive_max }
        }
        3 => {
            let qos = (first >> 1) & 3;
            let tl = u16_at(b, 0)? as usize;
            let topic = b.get(2..2 + tl).ok_or("short PUBLISH")?;
            let mut i = 2 + tl;
            let mut pid = 0;
            if qos > 0 {
                pid = u16_at(b, i)?;
                i += 2;
            }
            if v5 {
                let (pl, pn) =
                    get_len(b.get(i..).ok_or("short PUBLISH")?)?.ok_or("short PUBLISH")?;
                i += pn + pl;
            }
            Packet::Publish {
                qos,
                retain: first & 1 == 1,
                pid,
                topic,
                payload: b.get(i..).ok_or("short PUBLISH")?,
            }
        }
        4..=7 => Packet::Ack {
            kind: first >> 4,
            pid: u16_at(b, 0)?,
            code: b.get(2).copied().unwrap_or(0),
        },
        9 => {
            let pid = u16_at(b, 0)?;
            let mut i = 2;
            if v5 {
                let (pl, pn) = get_len(b.get(2..).ok_or("short SUBACK")?)?.ok_or("short SUBACK")?;
                i += pn + pl;
            }
            Packet::SubAck {
                pid,
                code: *b.get(i).ok_or("short SUBACK")?,
            }
        }
        13 => Packet::PingResp,
        14 => Packet::Disconnect {
            code: b.first().copied().unwrap_or(0),
        },
        t => Packet::Other(t),
    };
    Ok(Some((p, total)))
}

/// Walks a v5 property block (length-prefixed) for Receive Maximum (0x21).
fn receive_maximum(b: &[u8]) -> Result<Option<u16>, &'static str> {
    let (len, n) = get_len(b)?.ok_or("short properties")?;
    let props = b.get(n..n + len).ok_or("short properties")?;
    let mut i = 0;
    while i < props.len() {
        let id = props[i];
        i += 1;
        let size = match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => 1,
            0x13 | 0x22 | 0x23 => 2,
            0x21 => return Ok(Some(u16_at(props, i)?)),
            0x02 | 0x11 | 0x18 | 0x27 => 4,
            0x0B => get_len(&props[i..])?.ok_or("short property")?.1,
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F => {
                2 + u16_at(props, i)? as usize
            }
            0x26 => {
                let k = 2 + u16_at(props, i)? as usize;
                k + 2 + u16_at(props, i + k)? as usize
            }
            _ => return Err("unknown property"),
        };
        i += size;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_in_both_versions() {
        for v in [Version::V4, Version::V5] {
            let mut out = Vec::new();
            publish(&mut out, v, b"a/b", 1, true, 7, &[9u8; 200]);
            let (p, n) = decode(&out, v).unwrap().unwrap();
            assert_eq!(n, out.len());
            assert_eq!(
                p,
                Packet::Publish {
                    qos: 1,
                    retain: true,
                    pid: 7,
                    topic: b"a/b",
                    payload: &[9u8; 200]
                }
            );
            assert_eq!(decode(&out[..out.len() - 1], v).unwrap(), None);
        }
    }

    #[test]
    fn connect_carries_the_session_expiry_only_in_5_0() {
        let mut opts = ConnectOpts {
            client_id: "c",
            keepalive: 30,
            session_expiry: 0,
            username: None,
            password: None,
        };
        let mut plain = Vec::new();
        connect(&mut plain, Version::V5, &opts);
        // Fixed header (2), protocol name (6), level, flags, keep-alive (2), no properties.
        assert_eq!(
            plain[..13],
            [0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 30, 0]
        );
        opts.session_expiry = 3600;
        let mut out = Vec::new();
        connect(&mut out, Version::V5, &opts);
        assert_eq!(out[1], 19, "five bytes of properties more");
        assert_eq!(out[12..18], [5, 0x11, 0, 0, 0x0E, 0x10]);
        assert_eq!(&out[18..], b"\0\x01c");
    }

    #[test]
    fn acks_and_suback_decode() {
        let mut out = Vec::new();
        ack(&mut out, PUBREL, 300);
        assert_eq!(out[0], 0x62);
        assert_eq!(
            decode(&out, Version::V4).unwrap().unwrap().0,
            Packet::Ack {
                kind: PUBREL,
                pid: 300,
                code: 0
            }
        );
        // v5 CONNACK with Topic Alias Maximum (0x22) and Receive Maximum (0x21) = 20.
        let connack5 = [0x20, 9, 0, 0, 6, 0x22, 0, 10, 0x21, 0, 20];
        assert_eq!(
            decode(&connack5, Version::V5).unwrap().unwrap().0,
            Packet::ConnAck {
                code: 0,
                receive_max: Some(20)
            }
        );
        assert_eq!(
            decode(&[0x20, 2, 0, 5], Version::V4).unwrap().unwrap().0,
            Packet::ConnAck {
                code: 5,
                receive_max: None
            }
        );
        let suback5 = [0x90, 4, 0, 1, 0, 1];
        assert_eq!(
            decode(&suback5, Version::V5).unwrap().unwrap().0,
            Packet::SubAck { pid: 1, code: 1 }
        );
    }
}
