//! A raw MQTT client for precise protocol and bad-input tests: bytes in, whole packets out,
//! and a hand-written packet encoder that shares nothing with the server's codec.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A raw MQTT connection: bytes in, packets out.
pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: &str) -> Raw {
        Raw::from_stream(TcpStream::connect(addr).unwrap())
    }

    /// A raw connection over a socket the test connected itself.
    pub fn from_stream(s: TcpStream) -> Raw {
        s.set_nodelay(true).unwrap();
        Raw { s, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    /// The next whole packet (fixed header included), or None on timeout or close.
    pub fn packet(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(n) = frame_len(&self.buf) {
                if self.buf.len() >= n {
                    return Some(self.buf.drain(..n).collect());
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.s
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return None,
                Err(_) => return None,
            }
        }
    }

    /// The next packet of a type (first byte's high nibble), skipping others.
    pub fn packet_of(&mut self, kind: u8, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let p = self.packet(left)?;
            if p[0] >> 4 == kind {
                return Some(p);
            }
        }
    }

    /// Reads until the server closes the connection; returns the packets it sent before.
    /// Panics if the connection is still open after `wait`.
    pub fn until_closed(&mut self, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        loop {
            if let Some(n) = frame_len(&self.buf) {
                if self.buf.len() >= n {
                    got.push(self.buf.drain(..n).collect());
                    continue;
                }
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("server kept the connection open; sent {got:?}"));
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => return got,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    panic!("server kept the connection open; sent {got:?}")
                }
                Err(_) => return got,
            }
        }
    }
}

fn frame_len(b: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    let mut shift = 0;
    for i in 1..5 {
        let byte = *b.get(i)?;
        len |= ((byte & 0x7f) as usize) << shift;
        if byte & 0x80 == 0 {
            return Some(1 + i + len);
        }
        shift += 7;
    }
    None
}

/// Hand-written packet encoders (independent of the server's codec).
pub mod pkt {
    fn var(mut n: usize, out: &mut Vec<u8>) {
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

    pub fn s(x: &str, out: &mut Vec<u8>) {
        bin(x.as_bytes(), out);
    }

    pub fn bin(x: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&(x.len() as u16).to_be_bytes());
        out.extend_from_slice(x);
    }

    pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        var(body.len(), &mut out);
        out.extend_from_slice(body);
        out
    }

    /// A will: (topic, payload, qos, retain).
    pub type Will<'a> = (&'a str, &'a [u8], u8, bool);

    pub fn connect(
        level: u8,
        id: &str,
        clean: bool,
        keep_alive: u16,
        will: Option<Will>,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        s("MQTT", &mut b);
        b.push(level);
        let mut flags = if clean { 0x02 } else { 0 };
        if let Some((_, _, q, r)) = will {
            flags |= 0x04 | (q << 3) | if r { 0x20 } else { 0 };
        }
        b.push(flags);
        b.extend_from_slice(&keep_alive.to_be_bytes());
        if level == 5 {
            b.push(0); // no properties
        }
        s(id, &mut b);
        if let Some((t, p, _, _)) = will {
            if level == 5 {
                b.push(0);
            }
            s(t, &mut b);
            bin(p, &mut b);
        }
        frame(0x10, &b)
    }

    /// A clean CONNECT (3.1.1 when `level` is 4, 5.0 when 5) with a user name and password,
    /// either of which may be left out.
    pub fn connect_login(
        level: u8,
        id: &str,
        user: Option<&str>,
        password: Option<&str>,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        s("MQTT", &mut b);
        b.push(level);
        let flags = 0x02
            | if user.is_some() { 0x80 } else { 0 }
            | if password.is_some() { 0x40 } else { 0 };
        b.push(flags);
        b.extend_from_slice(&30u16.to_be_bytes());
        if level == 5 {
            b.push(0);
        }
        s(id, &mut b);
        if let Some(u) = user {
            s(u, &mut b);
        }
        if let Some(p) = password {
            s(p, &mut b);
        }
        frame(0x10, &b)
    }

    /// 5.0 CONNECT with a session expiry.
    pub fn connect5_expiry(id: &str, clean: bool, expiry: u32) -> Vec<u8> {
        let mut b = Vec::new();
        s("MQTT", &mut b);
        b.push(5);
        b.push(if clean { 0x02 } else { 0 });
        b.extend_from_slice(&30u16.to_be_bytes());
        b.push(5);
        b.push(0x11);
        b.extend_from_slice(&expiry.to_be_bytes());
        s(id, &mut b);
        frame(0x10, &b)
    }

    pub fn publish(
        level: u8,
        topic: &str,
        qos: u8,
        pkid: u16,
        payload: &[u8],
        retain: bool,
        dup: bool,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        s(topic, &mut b);
        if qos > 0 {
            b.extend_from_slice(&pkid.to_be_bytes());
        }
        if level == 5 {
            b.push(0);
        }
        b.extend_from_slice(payload);
        let first = 0x30 | (qos << 1) | u8::from(retain) | if dup { 0x08 } else { 0 };
        frame(first, &b)
    }

    /// 5.0 CONNECT with raw property bytes, and a will with its own property bytes.
    pub fn connect5(
        id: &str,
        clean: bool,
        keep_alive: u16,
        props: &[u8],
        will: Option<(Will, &[u8])>,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        s("MQTT", &mut b);
        b.push(5);
        let mut flags = if clean { 0x02 } else { 0 };
        if let Some(((_, _, q, r), _)) = will {
            flags |= 0x04 | (q << 3) | if r { 0x20 } else { 0 };
        }
        b.push(flags);
        b.extend_from_slice(&keep_alive.to_be_bytes());
        var(props.len(), &mut b);
        b.extend_from_slice(props);
        s(id, &mut b);
        if let Some(((t, p, _, _), wp)) = will {
            var(wp.len(), &mut b);
            b.extend_from_slice(wp);
            s(t, &mut b);
            bin(p, &mut b);
        }
        frame(0x10, &b)
    }

    /// A 5.0 PUBLISH with raw property bytes.
    pub fn publish5(topic: &str, qos: u8, pkid: u16, payload: &[u8], props: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        s(topic, &mut b);
        if qos > 0 {
            b.extend_from_slice(&pkid.to_be_bytes());
        }
        var(props.len(), &mut b);
        b.extend_from_slice(props);
        b.extend_from_slice(payload);
        frame(0x30 | (qos << 1), &b)
    }

    /// A u16 property.
    pub fn prop16(id: u8, v: u16) -> Vec<u8> {
        let mut b = vec![id];
        b.extend_from_slice(&v.to_be_bytes());
        b
    }

    /// A u32 property.
    pub fn prop32(id: u8, v: u32) -> Vec<u8> {
        let mut b = vec![id];
        b.extend_from_slice(&v.to_be_bytes());
        b
    }

    pub fn subscribe(level: u8, pkid: u16, filter: &str, qos: u8) -> Vec<u8> {
        let mut b = pkid.to_be_bytes().to_vec();
        if level == 5 {
            b.push(0);
        }
        s(filter, &mut b);
        b.push(qos);
        frame(0x82, &b)
    }

    pub fn ack(kind: u8, pkid: u16) -> Vec<u8> {
        let first = match kind {
            6 => 0x62,
            k => k << 4,
        };
        frame(first, &pkid.to_be_bytes())
    }

    pub const PUBACK: u8 = 4;
    pub const PUBREC: u8 = 5;
    pub const PUBREL: u8 = 6;
    pub const PUBCOMP: u8 = 7;

    pub fn pingreq() -> Vec<u8> {
        vec![0xC0, 0x00]
    }

    pub fn disconnect() -> Vec<u8> {
        vec![0xE0, 0x00]
    }

    /// A 5.0 SUBSCRIBE of one filter with raw property bytes.
    pub fn subscribe5(pkid: u16, filter: &str, options: u8, props: &[u8]) -> Vec<u8> {
        let mut b = pkid.to_be_bytes().to_vec();
        var(props.len(), &mut b);
        b.extend_from_slice(props);
        s(filter, &mut b);
        b.push(options);
        frame(0x82, &b)
    }

    /// A SUBSCRIBE of several filters, each with its raw Subscription Options byte (3.1.1:
    /// the requested QoS); a 5.0 one carries no properties.
    pub fn subscribe_many(level: u8, pkid: u16, filters: &[(&str, u8)]) -> Vec<u8> {
        let mut b = pkid.to_be_bytes().to_vec();
        if level == 5 {
            b.push(0);
        }
        for (f, options) in filters {
            s(f, &mut b);
            b.push(*options);
        }
        frame(0x82, &b)
    }

    /// An UNSUBSCRIBE of `filters` (a 5.0 one carries no properties).
    pub fn unsubscribe(level: u8, pkid: u16, filters: &[&str]) -> Vec<u8> {
        let mut b = pkid.to_be_bytes().to_vec();
        if level == 5 {
            b.push(0);
        }
        for f in filters {
            s(f, &mut b);
        }
        frame(0xA2, &b)
    }

    /// The Packet Identifier of an acknowledgement, SUBACK or UNSUBACK frame.
    pub fn packet_id(p: &[u8]) -> u16 {
        let i = header_len(p);
        u16::from_be_bytes([p[i], p[i + 1]])
    }

    /// The return codes of a SUBACK (3.1.1) or the reason codes of a SUBACK or UNSUBACK
    /// (5.0), in order; a 3.1.1 UNSUBACK has none.
    pub fn ack_codes(p: &[u8], level: u8) -> Vec<u8> {
        let mut i = header_len(p) + 2;
        if level == 5 {
            let (len, n) = read_var(&p[i..]);
            i += n + len as usize;
        }
        p[i..].to_vec()
    }

    /// The UTF-8 string properties of a 5.0 CONNACK frame (Assigned Client Identifier 0x12,
    /// Response Information 0x1A, Reason String 0x1F, ...), in order.
    pub fn connack_strings(p: &[u8]) -> Vec<(u8, String)> {
        let i = header_len(p) + 2;
        let (len, n) = read_var(&p[i..]);
        let props = &p[i + n..i + n + len as usize];
        let mut out = Vec::new();
        let mut at = 0;
        while at < props.len() {
            let id = props[at];
            let value = &props[at + 1..];
            if matches!(id, 0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F) {
                let l = u16::from_be_bytes([value[0], value[1]]) as usize;
                out.push((id, String::from_utf8_lossy(&value[2..2 + l]).to_string()));
            }
            at += 1 + prop_value_len(id, value);
        }
        out
    }

    /// How many bytes the value of a property with identifier `id` takes at the start of `v`.
    fn prop_value_len(id: u8, v: &[u8]) -> usize {
        let str_len = |at: usize| 2 + u16::from_be_bytes([v[at], v[at + 1]]) as usize;
        match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => 1,
            0x13 | 0x21 | 0x22 | 0x23 => 2,
            0x02 | 0x11 | 0x18 | 0x27 => 4,
            0x0B => read_var(v).1,
            0x26 => str_len(0) + str_len(str_len(0)),
            _ => str_len(0),
        }
    }

    /// A Variable Byte Integer property (Subscription Identifier).
    pub fn prop_var(id: u8, v: usize) -> Vec<u8> {
        let mut b = vec![id];
        var(v, &mut b);
        b
    }

    /// The numeric properties (byte, two-byte, four-byte, variable byte integer) of a 5.0
    /// CONNACK frame, in order; string and binary ones are skipped.
    pub fn connack_props(p: &[u8]) -> Vec<(u8, u32)> {
        let i = header_len(p) + 2;
        numeric_props(&p[i..])
    }

    /// The numeric properties of a 5.0 PUBLISH frame, in order (as `connack_props`).
    pub fn publish_props(p: &[u8]) -> Vec<(u8, u32)> {
        let mut i = header_len(p);
        i += 2 + u16::from_be_bytes([p[i], p[i + 1]]) as usize;
        if (p[0] >> 1) & 3 > 0 {
            i += 2;
        }
        numeric_props(&p[i..])
    }

    fn header_len(p: &[u8]) -> usize {
        let mut i = 1;
        while p[i] & 0x80 != 0 {
            i += 1;
        }
        i + 1
    }

    /// A variable byte integer at `p`: (value, bytes it took).
    fn read_var(p: &[u8]) -> (u32, usize) {
        let (mut v, mut i) = (0u32, 0);
        loop {
            let b = p[i];
            v |= ((b & 0x7f) as u32) << (7 * i);
            i += 1;
            if b & 0x80 == 0 {
                return (v, i);
            }
        }
    }

    fn numeric_props(p: &[u8]) -> Vec<(u8, u32)> {
        let (len, n) = read_var(p);
        let props = &p[n..n + len as usize];
        let mut out = Vec::new();
        let mut i = 0;
        while i < props.len() {
            let id = props[i];
            i += 1;
            let be = |k: usize| props[i..i + k].iter().fold(0u32, |a, b| a << 8 | *b as u32);
            let str_len = |at: usize| 2 + u16::from_be_bytes([props[at], props[at + 1]]) as usize;
            match id {
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                    out.push((id, be(1)));
                    i += 1;
                }
                0x13 | 0x21 | 0x22 | 0x23 => {
                    out.push((id, be(2)));
                    i += 2;
                }
                0x02 | 0x11 | 0x18 | 0x27 => {
                    out.push((id, be(4)));
                    i += 4;
                }
                0x0B => {
                    let (v, k) = read_var(&props[i..]);
                    out.push((id, v));
                    i += k;
                }
                0x26 => i += str_len(i) + str_len(i + str_len(i)),
                _ => i += str_len(i),
            }
        }
        out
    }

    /// (topic, payload, qos, dup, pkid) of a PUBLISH frame (3.1.1 layout).
    pub fn parse_publish(p: &[u8], level: u8) -> (String, Vec<u8>, u8, bool, u16) {
        let qos = (p[0] >> 1) & 3;
        let dup = p[0] & 0x08 != 0;
        let mut i = 1;
        while p[i] & 0x80 != 0 {
            i += 1;
        }
        i += 1;
        let tl = u16::from_be_bytes([p[i], p[i + 1]]) as usize;
        let topic = String::from_utf8_lossy(&p[i + 2..i + 2 + tl]).to_string();
        i += 2 + tl;
        let mut pkid = 0;
        if qos > 0 {
            pkid = u16::from_be_bytes([p[i], p[i + 1]]);
            i += 2;
        }
        if level == 5 {
            let mut len = 0usize;
            let mut shift = 0;
            loop {
                let b = p[i];
                i += 1;
                len |= ((b & 0x7f) as usize) << shift;
                if b & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            i += len;
        }
        (topic, p[i..].to_vec(), qos, dup, pkid)
    }
}
