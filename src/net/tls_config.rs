//! The `[tls]` section of the configuration: the certificate chain and key every TLS listener
//! presents, the CA that peers' certificates must chain to, where the HTTPS and MQTT-over-TLS
//! listeners bind, and the handshake bounds. Checks the keys that need no file (the files
//! themselves are read at start and on reload, see `tls.rs`).

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The certificate chain, PEM, leaf first. TLS is on when it is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The CA certificates (PEM) the nodes' certificates chain to: replication links verify
    /// the peer against it, both ways.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The CA certificates (PEM) that clients' certificates chain to. When set, the HTTPS and
    /// MQTT-over-TLS listeners ask for a client certificate (a client may still connect
    /// without one); a verified certificate's common name names the user a request or CONNECT
    /// without credentials authenticates as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// The HTTPS listener (REST, SSE, WebSocket), beside the plain `http.listen`.
    pub https_listen: String,
    /// The MQTT-over-TLS listener, beside the plain `mqtt.listen`.
    pub mqtt_listen: String,
    /// Replication links over TLS (when clustering is on). Every node of a cluster must agree.
    pub peer_links: bool,
    /// Lowest protocol version accepted: "1.2" or "1.3".
    pub min_version: String,
    /// A client must finish its handshake within this long (milliseconds).
    pub handshake_timeout_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            ca_file: None,
            client_ca_file: None,
            https_listen: "0.0.0.0:9927".into(),
            mqtt_listen: "0.0.0.0:8883".into(),
            peer_links: true,
            min_version: "1.2".into(),
            handshake_timeout_ms: 10_000,
        }
    }
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

fn addr(key: &str, text: &str, example: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        err(
            key,
            format!("{text:?} is not an address like \"{example}\""),
        )
    })
}

impl TlsConfig {
    /// True when a certificate is configured: the TLS listeners run.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }

    /// True when replication links use TLS (TLS on, clustering on, `peer_links`).
    pub fn on_peer_links(&self, clustered: bool) -> bool {
        self.enabled() && clustered && self.peer_links
    }

    pub fn https_addr(&self) -> Result<SocketAddr, ConfigError> {
        addr("tls.https_listen", &self.https_listen, "0.0.0.0:9927")
    }

    pub fn mqtt_addr(&self) -> Result<SocketAddr, ConfigError> {
        addr("tls.mqtt_listen", &self.mqtt_listen, "0.0.0.0:8883")
    }

    /// Checks every key that needs no file; `clustered`: a cluster secret is set.
    pub fn validate(&self, clustered: bool) -> Result<(), ConfigError> {
        self.https_addr()?;
        self.mqtt_addr()?;
        if !matches!(self.min_version.as_str(), "1.2" | "1.3") {
            return Err(err(
                "tls.min_version",
                format!(
                    "{:?}: use \"1.2\" or \"1.3\" (older versions are never offered)",
                    self.min_version
                ),
            ));
        }
        if !(100..=120_000).contains(&self.handshake_timeout_ms) {
            return Err(err(
                "tls.handshake_timeout_ms",
                "must be between 100 and 120000 milliseconds",
            ));
        }
        for (key, path) in [
            ("tls.cert_file", &self.cert_file),
            ("tls.key_file", &self.key_file),
            ("tls.ca_file", &self.ca_file),
            ("tls.client_ca_file", &self.client_ca_file),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(err(key, "must not be empty: give a PEM file's path"));
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err(err(
                    "tls.key_file",
                    "tls.cert_file is set but not its private key: add `key_file = \"...\"`",
                ))
            }
            (None, Some(_)) => {
                return Err(err(
                    "tls.cert_file",
                    "tls.key_file is set but no certificate: add `cert_file = \"...\"`",
                ))
            }
            (None, None) if self.ca_file.is_some() || self.client_ca_file.is_some() => {
                return Err(err(
                    "tls.cert_file",
                    "a CA file is set but TLS is off: add `cert_file` and `key_file`",
                ))
            }
            _ => {}
        }
        if self.on_peer_links(clustered) && self.ca_file.is_none() {
            return Err(err(
                "tls.ca_file",
                "replication links use TLS and verify peers against a CA: add \
                 `ca_file = \"...\"`, or set `peer_links = false` to keep them plain",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::TlsConfig;

    fn on() -> TlsConfig {
        TlsConfig {
            cert_file: Some("c.pem".into()),
            key_file: Some("k.pem".into()),
            ..Default::default()
        }
    }

    #[test]
    fn off_by_default_and_valid() {
        let c = TlsConfig::default();
        assert!(!c.enabled());
        c.validate(true).unwrap();
    }

    #[test]
    fn each_bad_key_is_named() {
        let key = |c: TlsConfig, clustered| c.validate(clustered).unwrap_err().key;
        let mut c = on();
        c.key_file = None;
        assert_eq!(key(c, false), "tls.key_file");
        let mut c = on();
        c.min_version = "1.1".into();
        assert_eq!(key(c, false), "tls.min_version");
        let mut c = on();
        c.https_listen = "nowhere".into();
        assert_eq!(key(c, false), "tls.https_listen");
        assert_eq!(key(on(), true), "tls.ca_file", "peer links need a CA");
        let mut c = on();
        c.peer_links = false;
        c.validate(true).unwrap();
        let c = TlsConfig {
            ca_file: Some("ca.pem".into()),
            ..Default::default()
        };
        assert_eq!(key(c, false), "tls.cert_file");
    }
}
