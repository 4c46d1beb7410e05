//! MQTT test clients: rumqttc (3.1.1 and 5.0) behind one small blocking interface; the raw
//! byte-level client is in `raw_mqtt.rs` (re-exported here).

#[allow(unused_imports)]
pub use super::raw_mqtt::{pkt, Raw};

use std::collections::VecDeque;
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
    /// 5.0 Subscription Identifiers, in the order they came.
    pub sub_ids: Vec<usize>,
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
        Client::try_v4_opts(o).unwrap_or_else(|got| panic!("connect failed: {got:?}"))
    }

    /// MQTT 3.1.1; the connected client, or what came instead of an accepting CONNACK.
    pub fn try_v4_opts(o: rumqttc::MqttOptions) -> Result<Client, Box<Got>> {
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
        Client::try_connected(Handle::V4(client), rx)
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
                                sub_ids: props.subscription_identifiers,
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
        Client::try_connected(handle, rx).unwrap_or_else(|got| panic!("connect failed: {got:?}"))
    }

    fn try_connected(handle: Handle, rx: mpsc::Receiver<Got>) -> Result<Client, Box<Got>> {
        let mut c = Client {
            handle,
            rx,
            held: VecDeque::new(),
            present: false,
        };
        match c.next_where(WAIT, |g| matches!(g, Got::ConnAck { .. } | Got::Error(_))) {
            Some(Got::ConnAck { present, code: 0 }) => c.present = present,
            Some(other) => return Err(Box::new(other)),
            None => return Err(Box::new(Got::Error("no CONNACK within 10 s".into()))),
        }
        Ok(c)
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

    /// Subscribes (5.0) with a Subscription Identifier and returns the SUBACK codes.
    pub fn sub_with_id(&mut self, filter: &str, qos: u8, id: usize) -> Vec<u8> {
        let Handle::V5(c) = &self.handle else {
            panic!("5.0 only")
        };
        let props = rumqttc::v5::mqttbytes::v5::SubscribeProperties {
            id: Some(id),
            user_properties: Vec::new(),
        };
        c.subscribe_with_properties(filter, q5(qos), props).unwrap();
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
