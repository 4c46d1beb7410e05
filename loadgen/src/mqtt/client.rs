//! One MQTT client of a worker, publisher or subscriber: connect and session setup
//! (CONNECT/CONNACK, SUBSCRIBE/SUBACK), stamped publications with the QoS 1/2 handshakes
//! and their ack latency, and received publications checked against the stamps.

use super::codec::{self, ConnectOpts, Packet, PUBACK, PUBCOMP, PUBREC, PUBREL};
use super::plan::{Plan, Shared};
use super::tracker::{PubReceipts, Receipt, Stamp, STAMP_BYTES};
use crate::net::{connect_nonblocking, Poller};
use crate::progress::Pending;
use crate::wire::Wire;
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Down { retry_at: u64 },
    Connecting { since: u64 },
    AwaitConnAck { since: u64 },
    AwaitSubAck { since: u64 },
    Ready,
}

pub struct Outstanding {
    pub sent_ns: u64,
    pub measured: bool,
    /// The acknowledgement awaited next: PUBACK, PUBREC or PUBCOMP.
    pub awaiting: u8,
}

pub struct Publisher {
    pub index: usize,
    pub seq: u64,
    next_pid: u16,
    pub outstanding: HashMap<u16, Outstanding>,
    pub sent_per_topic: Vec<u64>,
    pub published_measured: u64,
    pub acked: u64,
    /// Open loop: count of intended sends so far and the next intended time.
    pub k: u64,
    pub next_intended: u64,
    /// Deliveries owed by the subscribers for what this publisher sent, and the part
    /// written off after a stalled window (lost messages).
    pub owed: u64,
    pub written_off: u64,
    pub last_delivered: u64,
    pub last_progress_ns: u64,
    pub done: bool,
    payload: Vec<u8>,
}

pub struct Subscriber {
    pub index: usize,
    pub receipts: Vec<PubReceipts>,
    pub delivered_measured: u64,
    pub stale: u64,
}

pub enum Role {
    Pub(Publisher),
    Sub(Subscriber),
}

pub struct Client {
    pub wire: Wire,
    pub phase: Phase,
    pub generation: u32,
    pub role: Role,
    pub client_id: String,
    pub last_write_ns: u64,
    /// QoS 1/2 publications this session may leave unacknowledged: --inflight, lowered to
    /// the broker's Receive Maximum when it announces one.
    pub window: usize,
}

/// Where clients report what they observe (owned by the worker).
pub struct Sink<'a> {
    pub plan: &'a Plan,
    pub shared: &'a Shared,
    pub latency: &'a mut Histogram<u64>,
    pub ack_latency: &'a mut [Histogram<u64>; 3],
    pub pending: &'a mut Pending,
    pub errors: &'a mut BTreeMap<String, u64>,
    pub measure_from: u64,
    pub measure_to: u64,
}

impl Sink<'_> {
    pub fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
        self.pending.errors += 1;
    }
}

fn connack_meaning(code: u8) -> &'static str {
    match code {
        1 => "unacceptable protocol version",
        2 | 0x85 => "client identifier rejected",
        3 | 0x88 => "server unavailable",
        4 | 0x86 => "bad user name or password",
        5 | 0x87 => "not authorized",
        0x84 => "unsupported protocol version",
        _ => "refused",
    }
}

impl Client {
    pub fn publisher(index: usize, plan: &Plan) -> Self {
        let p = &plan.publishers[index];
        let publisher = Publisher {
            index,
            seq: 0,
            next_pid: 0,
            outstanding: HashMap::new(),
            sent_per_topic: vec![0; p.topics.len()],
            published_measured: 0,
            acked: 0,
            k: 0,
            next_intended: 0,
            owed: 0,
            written_off: 0,
            last_delivered: 0,
            last_progress_ns: 0,
            done: false,
            payload: (0..plan.payload_bytes)
                .map(|i| b'a' + (i % 26) as u8)
                .collect(),
        };
        Self::new(
            format!("{}-{}-pub-{index}", plan.client_prefix, plan.nonce),
            Role::Pub(publisher),
        )
    }

    pub fn subscriber(index: usize, plan: &Plan) -> Self {
        let receipts = vec![PubReceipts::default(); plan.publishers.len()];
        let sub = Subscriber {
            index,
            receipts,
            delivered_measured: 0,
            stale: 0,
        };
        Self::new(
            format!("{}-{}-sub-{index}", plan.client_prefix, plan.nonce),
            Role::Sub(sub),
        )
    }

    fn new(client_id: String, role: Role) -> Self {
        Client {
            wire: Wire::default(),
            phase: Phase::Down { retry_at: 0 },
            generation: 0,
            role,
            client_id,
            last_write_ns: 0,
            window: usize::MAX,
        }
    }

    pub fn token(&self, slot: usize) -> u64 {
        slot as u64 | (self.generation as u64) << 32
    }

    pub fn start_connect(
        &mut self,
        slot: usize,
        plan: &Plan,
        poller: &Poller,
        now: u64,
    ) -> std::io::Result<()> {
        self.generation = self.generation.wrapping_add(1);
        let s = connect_nonblocking(&plan.addr)?;
        poller.add(s.as_raw_fd(), self.token(slot))?;
        self.wire.stream = Some(s);
        self.phase = Phase::Connecting { since: now };
        Ok(())
    }

    /// TCP is up: check it and send CONNECT.
    pub fn on_connected(&mut self, plan: &Plan, now: u64) -> std::io::Result<()> {
        let s = self
            .wire
            .stream
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no socket"))?;
        if let Some(e) = s.take_error()? {
            return Err(e);
        }
        s.peer_addr()?;
        let opts = ConnectOpts {
            client_id: &self.client_id,
            keepalive: plan.keepalive,
            session_expiry: match self.role {
                Role::Sub(_) => plan.sub_session_expiry,
                Role::Pub(_) => 0,
            },
            username: plan.username.as_deref(),
            password: plan.password.as_deref(),
        };
        codec::connect(&mut self.wire.wbuf, plan.version, &opts);
        self.phase = Phase::AwaitConnAck { since: now };
        self.last_write_ns = now;
        Ok(())
    }

    pub fn close(&mut self, poller: &Poller, retry_at: u64) {
        if let Some(s) = self.wire.reset() {
            poller.delete(s.as_raw_fd());
        }
        self.phase = Phase::Down { retry_at };
    }

    /// Whether the publisher may send another message now (QoS window and, in closed
    /// loop, the end-to-end delivery window).
    pub fn can_publish(&self, sink: &Sink, closed_loop: bool) -> bool {
        let Role::Pub(p) = &self.role else {
            return false;
        };
        let plan = &sink.plan.publishers[p.index];
        if plan.qos > 0 && p.outstanding.len() >= self.window.min(sink.plan.inflight) {
            return false;
        }
        if closed_loop {
            let fan = plan.fanout.iter().copied().max().unwrap_or(0);
            let delivered = sink.shared.delivered[p.index].load(Ordering::Relaxed);
            if fan > 0
                && p.owed.saturating_sub(delivered + p.written_off)
                    >= sink.plan.inflight as u64 * fan
            {
                return false;
            }
        }
        true
    }

    /// Appends one stamped PUBLISH intended at `intended`.
    pub fn publish(&mut self, sink: &mut Sink, intended: u64, now: u64) {
        let Role::Pub(p) = &mut self.role else { return };
        let plan = &sink.plan.publishers[p.index];
        let t = (p.seq % plan.topics.len() as u64) as usize;
        Stamp {
            nonce: sink.plan.nonce,
            publisher: p.index as u32,
            seq: p.seq,
            intended_ns: intended,
            topic: t as u32,
        }
        .write(&mut p.payload[..STAMP_BYTES]);
        let measured = intended >= sink.measure_from && intended < sink.measure_to;
        let mut pid = 0;
        if plan.qos > 0 {
            loop {
                p.next_pid = p.next_pid % 65535 + 1;
                if !p.outstanding.contains_key(&p.next_pid) {
                    break;
                }
            }
            pid = p.next_pid;
            let awaiting = if plan.qos == 1 { PUBACK } else { PUBREC };
            p.outstanding.insert(
                pid,
                Outstanding {
                    sent_ns: now,
                    measured,
                    awaiting,
                },
            );
        }
        codec::publish(
            &mut self.wire.wbuf,
            sink.plan.version,
            &plan.topics[t],
            plan.qos,
            sink.plan.retain,
            pid,
            &p.payload,
        );
        p.sent_per_topic[t] += 1;
        p.seq += 1;
        p.owed += plan.fanout[t];
        sink.shared.expected[p.index].fetch_add(plan.fanout[t], Ordering::Relaxed);
        if measured {
            p.published_measured += 1;
        }
        self.last_write_ns = now;
    }

    /// Handles every complete packet buffered. Err = the session cannot go on.
    pub fn process(&mut self, sink: &mut Sink, now: u64) -> Result<(), String> {
        loop {
            let (len, packet) = match codec::decode(self.wire.data(), sink.plan.version) {
                Ok(Some((p, n))) => (n, owned(p)),
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("malformed packet from the broker: {e}")),
            };
            self.wire.consume(len);
            self.handle(packet, sink, now)?;
        }
    }

    fn handle(&mut self, packet: Owned, sink: &mut Sink, now: u64) -> Result<(), String> {
        let v = sink.plan.version;
        match packet {
            Owned::ConnAck { code, receive_max } => {
                self.window = receive_max.map_or(usize::MAX, |r| r.max(1) as usize);
                if code != 0 {
                    return Err(format!(
                        "broker refused CONNECT of {}: code {code} ({})",
                        self.client_id,
                        connack_meaning(code)
                    ));
                }
                match &self.role {
                    Role::Sub(s) => {
                        let filter = &sink.plan.subscribers[s.index].filter;
                        codec::subscribe(&mut self.wire.wbuf, v, 1, filter, sink.plan.sub_qos);
                        self.phase = Phase::AwaitSubAck { since: now };
                    }
                    Role::Pub(_) => self.phase = Phase::Ready,
                }
            }
            Owned::SubAck { code } => {
                if code >= 0x80 {
                    let Role::Sub(s) = &self.role else {
                        return Ok(());
                    };
                    return Err(format!(
                        "broker refused SUBSCRIBE to '{}': code {code:#x}",
                        sink.plan.subscribers[s.index].filter
                    ));
                }
                self.phase = Phase::Ready;
            }
            Owned::Publish {
                qos,
                pid,
                payload_empty,
            } => {
                // No stamp: an empty retained-message clear is expected, anything else
                // was published by someone other than this run.
                if !payload_empty {
                    sink.error("foreign_message");
                }
                match qos {
                    1 => codec::ack(&mut self.wire.wbuf, PUBACK, pid),
                    2 => codec::ack(&mut self.wire.wbuf, PUBREC, pid),
                    _ => {}
                }
            }
            Owned::Stamped { qos, pid, stamp } => {
                match qos {
                    1 => codec::ack(&mut self.wire.wbuf, PUBACK, pid),
                    2 => codec::ack(&mut self.wire.wbuf, PUBREC, pid),
                    _ => {}
                }
                let Role::Sub(s) = &mut self.role else {
                    return Ok(());
                };
                if stamp.nonce != sink.plan.nonce {
                    s.stale += 1;
                    return Ok(());
                }
                let p = stamp.publisher as usize;
                if p >= s.receipts.len() {
                    sink.error("foreign_message");
                    return Ok(());
                }
                if s.receipts[p].record(stamp.seq, stamp.topic) == Receipt::New {
                    sink.shared.delivered[p].fetch_add(1, Ordering::Relaxed);
                    let lat = now.saturating_sub(stamp.intended_ns).max(1);
                    sink.pending.done += 1;
                    sink.pending.hist.saturating_record(lat);
                    if stamp.intended_ns >= sink.measure_from && stamp.intended_ns < sink.measure_to
                    {
                        s.delivered_measured += 1;
                        sink.latency.saturating_record(lat);
                    }
                }
            }
            Owned::Ack { kind, pid, code } => match kind {
                PUBREL => codec::ack(&mut self.wire.wbuf, PUBCOMP, pid),
                PUBACK | PUBREC | PUBCOMP => {
                    let Role::Pub(p) = &mut self.role else {
                        return Ok(());
                    };
                    let qos = sink.plan.publishers[p.index].qos as usize;
                    let Some(o) = p.outstanding.get_mut(&pid) else {
                        sink.error("unexpected_ack");
                        return Ok(());
                    };
                    if o.awaiting != kind {
                        sink.error("unexpected_ack");
                        return Ok(());
                    }
                    if code >= 0x80 {
                        p.outstanding.remove(&pid);
                        sink.error("publish_refused");
                    } else if kind == PUBREC {
                        o.awaiting = PUBCOMP;
                        codec::ack(&mut self.wire.wbuf, PUBREL, pid);
                    } else {
                        let o = p.outstanding.remove(&pid).expect("present");
                        p.acked += 1;
                        if o.measured {
                            sink.ack_latency[qos]
                                .saturating_record(now.saturating_sub(o.sent_ns).max(1));
                        }
                    }
                }
                _ => {}
            },
            Owned::Disconnect { code } => {
                return Err(format!("broker sent DISCONNECT (code {code:#x})"))
            }
            Owned::Other => {}
        }
        Ok(())
    }
}

/// A decoded packet detached from the read buffer.
enum Owned {
    ConnAck {
        code: u8,
        receive_max: Option<u16>,
    },
    SubAck {
        code: u8,
    },
    Publish {
        qos: u8,
        pid: u16,
        payload_empty: bool,
    },
    Stamped {
        qos: u8,
        pid: u16,
        stamp: Stamp,
    },
    Ack {
        kind: u8,
        pid: u16,
        code: u8,
    },
    Disconnect {
        code: u8,
    },
    Other,
}

fn owned(p: Packet) -> Owned {
    match p {
        Packet::ConnAck { code, receive_max } => Owned::ConnAck { code, receive_max },
        Packet::SubAck { code, .. } => Owned::SubAck { code },
        Packet::Publish {
            qos, pid, payload, ..
        } => match Stamp::read(payload) {
            Some(stamp) => Owned::Stamped { qos, pid, stamp },
            None => Owned::Publish {
                qos,
                pid,
                payload_empty: payload.is_empty(),
            },
        },
        Packet::Ack { kind, pid, code } => Owned::Ack { kind, pid, code },
        Packet::Disconnect { code } => Owned::Disconnect { code },
        Packet::PingResp | Packet::Other(_) => Owned::Other,
    }
}
