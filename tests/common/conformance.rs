//! What the MQTT conformance tests (`tests/mqtt_conformance_*.rs`) share: both protocol
//! levels, a server, raw and rumqttc clients of either level, and how a connection the
//! server closed ended.

use super::mqtt::{pkt, Client, Raw, WAIT};
use super::Server;

/// Both protocol levels: 4 is MQTT 3.1.1, 5 is MQTT 5.0.
pub const LEVELS: [u8; 2] = [4, 5];

/// A server of two shards.
pub fn server() -> Server {
    Server::start("[shards]\ncount = 2\n")
}

/// A raw connection whose `connect` was accepted.
pub fn accepted(s: &Server, connect: &[u8]) -> Raw {
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(connect);
    let ack = r.packet(WAIT).expect("a CONNACK");
    assert_eq!((ack[0], ack[3]), (0x20, 0), "accepted: {ack:?}");
    r
}

/// A raw connection of `level` whose CONNECT (clean, no properties) was accepted.
pub fn connected(s: &Server, level: u8, id: &str) -> Raw {
    accepted(s, &pkt::connect(level, id, true, 30, None))
}

/// A rumqttc client of `level`.
pub fn client(s: &Server, level: u8, id: &str) -> Client {
    match level {
        4 => Client::v4(&s.mqtt_addr, id, true),
        _ => Client::v5(&s.mqtt_addr, id, true),
    }
}

/// What the server sent before it closed the connection: for 5.0, the DISCONNECT's reason
/// code; for 3.1.1, which has no server DISCONNECT, `None` (and nothing may come).
pub fn closed_with(r: &mut Raw, level: u8) -> Option<u8> {
    let got = r.until_closed(WAIT);
    match level {
        4 => {
            assert!(got.is_empty(), "3.1.1: closed without a packet: {got:?}");
            None
        }
        _ => {
            let last = got.last().expect("a DISCONNECT");
            assert_eq!(last[0], 0xE0, "a DISCONNECT: {got:?}");
            Some(last[2])
        }
    }
}
