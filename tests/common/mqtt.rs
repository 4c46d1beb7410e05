//! MQTT test clients: rumqttc (3.1.1 and 5.0) behind one small blocking interface, and a raw
//! byte-level client with a hand-written encoder for precise protocol and bad-input tests.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A received application message, both protocol versions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub user_properties: Vec<(String, String)>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Vec<u8>>,
    pub content_type: Option<String>,
    pub expiry: Option<u32>,
}

impl Msg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).to_string()
    }
}

/// What a client saw.
#[derive(Debug, Clone)]
pub enum Got {
    ConnAck { present: bool, code: u8 },
    SubAck(Vec<u8>),
    UnsubAck,
    PubAck(u16),
    PubRec(u16),
    PubComp(u16),
    Publish(Msg),
    Disconnect(u8),
    Error(String),
}

enum Handle {
    V4(rumqttc::Client),
    V5(rumqttc::v5::Client),
}

/// A rumqttc client driven by a background thread; events arrive on a channel.
pub struct Client {
    handle: Handle,
    rx: mpsc::Receiver<Got>,
    held: VecDeque<Got>,
    pub present: bool,
}

pub const WAIT: Duration = Duration::from_secs(10);

fn v5_code(c: &rumqttc::v5::mqttbytes::v5::SubscribeReasonCode) -> u8 {
    use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode as C;
    match c {
        C::Success(q) => *q as u8,
        C::Failure | C::Unspecified => 0x80,
        C::ImplementationSpecific => 0x83,
        C::NotAuthorized => 0x87,
        C::TopicFilterInvalid => 0x8F,
        C::PkidInUse => 0x91,
        C::QuotaExceeded => 0x97,
        C::SharedSubscriptionsNotSupported => 0x9E,
        C::SubscriptionIdNotSupported => 0xA1,
        C::WildcardSubscriptionsNotSupported => 0xA2,
    }
}

fn split(addr: &str) -> (String, u16) {
    let (h, p) = addr.rsplit_once(':').unwrap();
    (h.to_string(), p.parse().unwrap())
}

fn q4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn q5(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS;
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

impl Client {
    /// MQTT 3.1.1. Waits for the CONNACK (panics if refused).
    pub fn v4(addr: &str, id: &str, clean: bool) -> Client {
        Client::v4_with(addr, id, clean, |_| {})
    }

    pub fn v4_with(
        addr: &str,
        id: &str,
        clean: bool,
        tweak: impl FnOnce(&mut rumqttc::MqttOptions),
    ) -> Client {
        let (h, p) = split(addr);
        let mut o = rumqttc::MqttOptions::new(id, h, p);
        o.set_clean_session(clean);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(1 << 20, 1 << 20);
        tweak(&mut o);
        Client::v4_opts(o)
    }

    /// MQTT 3.1.1 over a WebSocket to `ws://{http_addr}/mqtt`.
    pub fn v4_ws(http_addr: &str, id: &str) -> Client {
        let (_, p) = split(http_addr);
        let mut o = rumqttc::MqttOptions::new(id, format!("ws://{http_addr}/mqtt"), p);
        o.set_transport(rumqttc::Transport::Ws);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(1 << 20, 1 << 20);
        Client::v4_opts(o)
    }

    pub fn v4_opts(o: rumqttc::MqttOptions) -> Client {
        let (client, mut conn) = rumqttc::Client::new(o, 64);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use rumqttc::{Event, Packet};
            for ev in conn.iter() {
                let got = match ev {
                    Ok(Event::Incoming(p)) => match p {
                        Packet::ConnAck(a) => Got::ConnAck {
                            present: a.session_present,
                            code: a.code as u8,
                        },
                        Packet::SubAck(a) => Got::SubAck(
                            a.return_codes
                                .iter()
                                .map(|c| match c {
                                    rumqttc::SubscribeReasonCode::Success(q) => *q as u8,
                                    rumqttc::SubscribeReasonCode::Failure => 0x80,
                                })
                                .collect(),
                        ),
                        Packet::UnsubAck(_) => Got::UnsubAck,
                        Packet::PubAck(a) => Got::PubAck(a.pkid),
                        Packet::PubRec(a) => Got::PubRec(a.pkid),
                        Packet::PubComp(a) => Got::PubComp(a.pkid),
                        Packet::Publish(p) => Got::Publish(Msg {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            qos: p.qos as u8,
                            retain: p.retain,
                            dup: p.dup,
                            ..Msg::default()
                        }),
                        _ => continue,
                    },
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = tx.send(Got::Error(e.to_string()));
                        break;
                    }
                };
                if tx.send(got).is_err() {
                    break;
                }
            }
        });
        Client::connected(Handle::V4(client), rx)
    }

    /// MQTT 5.0. Waits for the CONNACK (panics if refused).
    pub fn v5(addr: &str, id: &str, clean: bool) -> Client {
        Client::v5_with(addr, id, clean, |_| {})
    }

    pub fn v5_with(
        addr: &str,
        id: &str,
        clean: bool,
        tweak: impl FnOnce(&mut rumqttc::v5::MqttOptions),
    ) -> Client {
        let (h, p) = split(addr);
        let mut o = rumqttc::v5::MqttOptions::new(id, h, p);
        o.set_clean_start(clean);
        o.set_keep_alive(Duration::from_secs(30));
        tweak(&mut o);
        let (client, mut conn) = rumqttc::v5::Client::new(o, 64);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            use rumqttc::v5::mqttbytes::v5::Packet;
            use rumqttc::v5::Event;
            for ev in conn.iter() {
                let got = match ev {
                    Ok(Event::Incoming(p)) => match p {
                        Packet::ConnAck(a) => Got::ConnAck {
                            present: a.session_present,
                            code: a.code as u8,
                        },
                        Packet::SubAck(a) => {
                            Got::SubAck(a.return_codes.iter().map(v5_code).collect())
                        }
                        Packet::UnsubAck(_) => Got::UnsubAck,
                        Packet::PubAck(a) => Got::PubAck(a.pkid),
                        Packet::PubRec(a) => Got::PubRec(a.pkid),
                        Packet::PubComp(a) => Got::PubComp(a.pkid),
                        Packet::Disconnect(d) => Got::Disconnect(d.reason_code as u8),
                        Packet::Publish(p) => {
                            let props = p.properties.clone().unwrap_or_default();
                            Got::Publish(Msg {
                                topic: String::from_utf8_lossy(&p.topic).to_string(),
                                payload: p.payload.to_vec(),
                                qos: p.qos as u8,
                                retain: p.retain,
                                dup: p.dup,
                                user_properties: props.user_properties,
                                response_topic: props.response_topic,
                                correlation_data: props.correlation_data.map(|b| b.to_vec()),
                                content_type: props.content_type,
                                expiry: props.message_expiry_interval,
                            })
                        }
                        _ => continue,
                    },
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = tx.send(Got::Error(e.to_string()));
                        break;
                    }
                };
                if tx.send(got).is_err() {
                    break;
                }
            }
        });
        Client::connected(Handle::V5(client), rx)
    }

    fn connected(handle: Handle, rx: mpsc::Receiver<Got>) -> Client {
        let mut c = Client {
            handle,
            rx,
            held: VecDeque::new(),
            present: false,
        };
        match c.next_where(WAIT, |g| matches!(g, Got::ConnAck { .. } | Got::Error(_))) {
            Some(Got::ConnAck { present, code: 0 }) => c.present = present,
            other => panic!("connect failed: {other:?}"),
        }
        c
    }

    /// The next event matching `want`, keeping the others for later.
    pub fn next_where(&mut self, wait: Duration, want: impl Fn(&Got) -> bool) -> Option<Got> {
        if let Some(i) = self.held.iter().position(&want) {
            return self.held.remove(i);
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left) {
                Ok(g) if want(&g) => return Some(g),
                Ok(g) => self.held.push_back(g),
                Err(_) => return None,
            }
        }
    }

    /// Subscribes and returns the SUBACK codes.
    pub fn sub(&mut self, filter: &str, qos: u8) -> Vec<u8> {
        match &self.handle {
            Handle::V4(c) => c.subscribe(filter, q4(qos)).unwrap(),
            Handle::V5(c) => c.subscribe(filter, q5(qos)).unwrap(),
        }
        match self.next_where(WAIT, |g| matches!(g, Got::SubAck(_) | Got::Error(_))) {
            Some(Got::SubAck(codes)) => codes,
            other => panic!("no SUBACK for {filter}: {other:?}"),
        }
    }

    pub fn unsub(&mut self, filter: &str) {
        match &self.handle {
            Handle::V4(c) => c.unsubscribe(filter).unwrap(),
            Handle::V5(c) => c.unsubscribe(filter).unwrap(),
        }
        assert!(self
            .next_where(WAIT, |g| matches!(g, Got::UnsubAck))
            .is_some());
    }

    /// Publishes; for QoS 1/2 waits for the PUBACK/PUBCOMP.
    pub fn publish(&mut self, topic: &str, qos: u8, retain: bool, payload: &[u8]) {
        match &self.handle {
            Handle::V4(c) => c.publish(topic, q4(qos), retain, payload.to_vec()).unwrap(),
            Handle::V5(c) => c.publish(topic, q5(qos), retain, payload.to_vec()).unwrap(),
        }
        self.wait_ack(qos);
    }

    /// Publishes with 5.0 properties.
    pub fn publish5(
        &mut self,
        topic: &str,
        qos: u8,
        retain: bool,
        payload: &[u8],
        props: rumqttc::v5::mqttbytes::v5::PublishProperties,
    ) {
        let Handle::V5(c) = &self.handle else {
            panic!("5.0 only")
        };
        c.publish_with_properties(topic, q5(qos), retain, payload.to_vec(), props)
            .unwrap();
        self.wait_ack(qos);
    }

    fn wait_ack(&mut self, qos: u8) {
        let ok = match qos {
            0 => true,
            1 => self
                .next_where(WAIT, |g| matches!(g, Got::PubAck(_)))
                .is_some(),
            _ => self
                .next_where(WAIT, |g| matches!(g, Got::PubComp(_)))
                .is_some(),
        };
        assert!(ok, "publish at QoS {qos} was not acknowledged");
    }

    /// The next application message, if one arrives within `wait`.
    pub fn recv(&mut self, wait: Duration) -> Option<Msg> {
        match self.next_where(wait, |g| matches!(g, Got::Publish(_))) {
            Some(Got::Publish(m)) => Some(m),
            _ => None,
        }
    }

    /// The next message, which must arrive.
    pub fn expect(&mut self) -> Msg {
        self.recv(WAIT).expect("a message within 10 s")
    }

    pub fn disconnect(self) {
        match &self.handle {
            Handle::V4(c) => drop(c.disconnect()),
            Handle::V5(c) => drop(c.disconnect()),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A raw MQTT connection: bytes in, packets out.
pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: &str) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
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
