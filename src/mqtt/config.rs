//! The `[mqtt]` section of the configuration: where the broker listens and every bound it
//! keeps (connections, packet size, in-flight window, queues, subscriptions, retained store).

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Address every shard listens on (SO_REUSEPORT). Port 0 picks a free port.
    pub listen: String,
    /// Largest packet accepted or sent, in bytes (announced to v5 clients).
    pub max_packet_bytes: usize,
    /// Open MQTT connections per shard; past it new connections are closed at once.
    pub max_connections_per_shard: usize,
    /// QoS 1/2 messages sent to a client and not yet acknowledged (v5: our receive maximum
    /// is the same number for the client's publishes).
    pub max_inflight: u16,
    /// Messages waiting for a connected client (beyond the in-flight window). Past it a QoS 0
    /// message is dropped (counted) and a QoS 1/2 message disconnects the client.
    pub max_queued_messages: usize,
    /// Bytes of messages waiting for a connected client (topic, payload, properties), the
    /// same rule at the bound as `max_queued_messages`.
    pub max_queued_bytes: usize,
    /// Bytes of messages kept for a disconnected persistent session; past it new messages
    /// are dropped (counted in `offline_dropped`).
    pub max_offline_bytes: usize,
    /// Messages kept for a disconnected persistent session. Past it new messages are dropped
    /// (counted in `/status` as `mqtt.offline_dropped`).
    pub max_offline_messages: usize,
    /// Topic filters one client may hold; more are refused in the SUBACK.
    pub max_subscriptions_per_client: usize,
    /// Retained messages kept (plain topics); a new retained topic past it is not retained.
    pub max_retained_messages: usize,
    /// Largest retained payload kept, in bytes.
    pub max_retained_bytes: usize,
    /// Longest keep-alive a 5.0 client gets, in seconds: one asking for more, or for none
    /// (0), is given this as the Server Keep Alive in its CONNACK, and the server closes the
    /// connection after 1.5 times it without a packet. A 3.1.1 client, which cannot be told,
    /// keeps the keep-alive it asked for.
    pub max_keep_alive_secs: u16,
    /// Longest session expiry granted (seconds); v3.1.1 persistent sessions get this too.
    pub max_session_expiry_secs: u32,
    /// Records sent as retained messages when a wildcard filter covers a table.
    pub max_table_snapshot: usize,
    /// Sessions kept on disk (persistent sessions), node-wide. Past it a client asking for a
    /// new persistent session is refused (5.0: Quota exceeded; 3.1.1: Server unavailable).
    pub max_persistent_sessions: usize,
    /// Bytes of MQTT state (queued copies, acknowledgements, sessions) a shard may have
    /// waiting for its writer. At the bound publishers wait before their next message.
    pub max_persist_backlog_bytes: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:1883".into(),
            max_packet_bytes: 1024 * 1024,
            max_connections_per_shard: 10_000,
            max_inflight: 64,
            max_queued_messages: 1000,
            max_queued_bytes: 16 << 20,
            max_offline_bytes: 64 << 20,
            max_offline_messages: 10_000,
            max_subscriptions_per_client: 100,
            max_retained_messages: 100_000,
            max_retained_bytes: 64 * 1024,
            max_keep_alive_secs: 3600,
            max_session_expiry_secs: 7 * 86_400,
            max_table_snapshot: 1000,
            max_persistent_sessions: 100_000,
            max_persist_backlog_bytes: 64 << 20,
        }
    }
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

fn range(key: &str, v: usize, lo: usize, hi: usize) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(err(key, format!("must be between {lo} and {hi}")));
    }
    Ok(())
}

impl MqttConfig {
    /// The listen address.
    pub fn addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            err(
                "mqtt.listen",
                format!("{:?} is not an address like \"0.0.0.0:1883\"", self.listen),
            )
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.addr()?;
        range(
            "mqtt.max_packet_bytes",
            self.max_packet_bytes,
            1024,
            256 << 20,
        )?;
        range(
            "mqtt.max_connections_per_shard",
            self.max_connections_per_shard,
            1,
            1 << 20,
        )?;
        range("mqtt.max_inflight", self.max_inflight as usize, 1, 65_535)?;
        range(
            "mqtt.max_queued_messages",
            self.max_queued_messages,
            1,
            1 << 20,
        )?;
        range(
            "mqtt.max_queued_bytes",
            self.max_queued_bytes,
            self.max_packet_bytes,
            1 << 40,
        )?;
        range("mqtt.max_offline_bytes", self.max_offline_bytes, 0, 1 << 40)?;
        range(
            "mqtt.max_offline_messages",
            self.max_offline_messages,
            0,
            1 << 24,
        )?;
        range(
            "mqtt.max_subscriptions_per_client",
            self.max_subscriptions_per_client,
            1,
            100_000,
        )?;
        range(
            "mqtt.max_retained_messages",
            self.max_retained_messages,
            0,
            1 << 24,
        )?;
        range(
            "mqtt.max_retained_bytes",
            self.max_retained_bytes,
            1,
            self.max_packet_bytes,
        )?;
        range(
            "mqtt.max_keep_alive_secs",
            self.max_keep_alive_secs as usize,
            1,
            65_535,
        )?;
        range(
            "mqtt.max_table_snapshot",
            self.max_table_snapshot,
            0,
            1_000_000,
        )?;
        range(
            "mqtt.max_persistent_sessions",
            self.max_persistent_sessions,
            0,
            1 << 24,
        )?;
        range(
            "mqtt.max_persist_backlog_bytes",
            self.max_persist_backlog_bytes,
            1,
            1 << 40,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn mqtt_keys_are_validated_by_name() {
        let e = Config::from_toml("[mqtt]\nlisten = \"nowhere\"\n", "t").unwrap_err();
        assert_eq!(e.key, "mqtt.listen");
        let e = Config::from_toml("[mqtt]\nmax_inflight = 0\n", "t").unwrap_err();
        assert_eq!(e.key, "mqtt.max_inflight");
        let e = Config::from_toml("[mqtt]\nmax_keep_alive_secs = 0\n", "t").unwrap_err();
        assert_eq!(e.key, "mqtt.max_keep_alive_secs");
        let e = Config::from_toml("[mqtt]\nbogus = 1\n", "t").unwrap_err();
        assert_eq!(e.key, "bogus");
        let c = Config::from_toml("[mqtt]\nlisten = \"127.0.0.1:0\"\n", "t").unwrap();
        assert_eq!(c.mqtt.max_offline_messages, 10_000);
    }
}
