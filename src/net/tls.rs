//! TLS for the front ends and the replication links: reads the `[tls]` files (at start and on
//! reload, on the thread that asks, never on a shard's executor), builds the rustls
//! configurations (TLS 1.2 and 1.3 only, the `ring` provider), and runs handshakes bounded in
//! time. A reload swaps the configurations at once: new handshakes use the new certificate,
//! connections already open keep the session they have. A reload that fails changes nothing.

use super::tls_config::TlsConfig;
use crate::config::ConfigError;
use futures_lite::future::or;
use glommio::net::TcpStream;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A TLS connection a listener accepted.
pub type ServerStream = futures_rustls::server::TlsStream<TcpStream>;
/// A TLS connection this node dialed.
pub type ClientStream = futures_rustls::client::TlsStream<TcpStream>;

/// The configurations a reload replaces, one per kind of listener.
pub struct Configs {
    /// HTTPS (ALPN `http/1.1`).
    pub http: Arc<ServerConfig>,
    /// MQTT over TLS.
    pub mqtt: Arc<ServerConfig>,
    /// Replication links, accepting and dialing; both sides present this node's certificate
    /// and verify the other's against `tls.ca_file`. `None` when links stay plain.
    pub peers: Option<PeerConfigs>,
}

/// Both ends of a replication link.
pub struct PeerConfigs {
    pub accept: Arc<ServerConfig>,
    pub dial: Arc<ClientConfig>,
}

/// The node's TLS: what `[tls]` says and the configurations built from its files.
pub struct Tls {
    config: TlsConfig,
    peers: bool,
    current: RwLock<Arc<Configs>>,
}

impl Tls {
    /// Reads the files and builds the configurations; `None` when TLS is off. `clustered`:
    /// a cluster secret is set (the links then use TLS unless `tls.peer_links = false`).
    pub fn start(config: &TlsConfig, clustered: bool) -> Result<Option<Arc<Tls>>, ConfigError> {
        if !config.enabled() {
            return Ok(None);
        }
        let peers = config.on_peer_links(clustered);
        let configs = build(config, peers)?;
        Ok(Some(Arc::new(Tls {
            config: config.clone(),
            peers,
            current: RwLock::new(Arc::new(configs)),
        })))
    }

    /// The configurations new handshakes use.
    pub fn configs(&self) -> Arc<Configs> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the files again and, if every one is good, makes new handshakes use them.
    /// Blocking (file reads): call it off the shards' executors.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let configs = Arc::new(build(&self.config, self.peers)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = configs;
        Ok(())
    }

    /// True when replication links use TLS.
    pub fn on_peer_links(&self) -> bool {
        self.peers
    }

    /// The longest a handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.config.handshake_timeout_ms)
    }
}

/// Checks that the `[tls]` files load (`check-config`), without serving.
pub fn check(config: &TlsConfig, clustered: bool) -> Result<(), ConfigError> {
    Tls::start(config, clustered).map(|_| ())
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn versions(config: &TlsConfig) -> &'static [&'static SupportedProtocolVersion] {
    static BOTH: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY_13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match config.min_version.as_str() {
        "1.3" => &ONLY_13,
        _ => &BOTH,
    }
}

/// Every configuration, from the files as they are now.
fn build(config: &TlsConfig, peers: bool) -> Result<Configs, ConfigError> {
    let key = certified_key(config)?;
    let clients = client_verifier(config)?;
    let server = |alpn: &[&[u8]]| -> Result<Arc<ServerConfig>, ConfigError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions(config))
            .map_err(|e| err("tls.min_version", e.to_string()))?;
        let builder = match &clients {
            Some(v) => builder.with_client_cert_verifier(v.clone()),
            None => builder.with_no_client_auth(),
        };
        let mut c = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())));
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(c))
    };
    let peers = match (peers, &config.ca_file) {
        (true, Some(ca)) => Some(peer_configs(config, &key, ca)?),
        (true, None) => return Err(err("tls.ca_file", "peer links need a CA: set it")),
        (false, _) => None,
    };
    Ok(Configs {
        http: server(&[b"http/1.1"])?,
        mqtt: server(&[])?,
        peers,
    })
}

/// With `tls.client_ca_file`: a verifier that asks clients for a certificate chaining to it,
/// and lets those without one connect (they authenticate with credentials instead).
fn client_verifier(config: &TlsConfig) -> Result<Option<Arc<dyn ClientCertVerifier>>, ConfigError> {
    let Some(ca) = &config.client_ca_file else {
        return Ok(None);
    };
    let roots = Arc::new(roots("tls.client_ca_file", ca)?);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| err("tls.client_ca_file", format!("{}: {e}", ca.display())))?;
    Ok(Some(verifier))
}

/// The common name of the certificate a client presented and the listener verified, if any.
pub fn client_name(stream: &ServerStream) -> Option<String> {
    let cert = stream.get_ref().1.peer_certificates()?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// The replication links' configurations: this node's certificate both ways, the peer's
/// verified against the CA both ways.
fn peer_configs(
    config: &TlsConfig,
    key: &Arc<CertifiedKey>,
    ca: &Path,
) -> Result<PeerConfigs, ConfigError> {
    let roots = Arc::new(roots("tls.ca_file", ca)?);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| err("tls.ca_file", format!("{}: {e}", ca.display())))?;
    let accept = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(config))
        .map_err(|e| err("tls.min_version", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())));
    let dial = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(config))
        .map_err(|e| err("tls.min_version", e.to_string()))?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key.clone())));
    Ok(PeerConfigs {
        accept: Arc::new(accept),
        dial: Arc::new(dial),
    })
}

/// The file's bytes, or an error naming the key.
fn read(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| err(key, format!("cannot read {}: {e}", path.display())))
}

/// Every certificate of a PEM file (at least one).
fn certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(key, format!("{} is not valid PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(err(
            key,
            format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// The chain of `tls.cert_file` with the key of `tls.key_file`, checked to match.
fn certified_key(config: &TlsConfig) -> Result<Arc<CertifiedKey>, ConfigError> {
    let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
        return Err(err("tls.cert_file", "TLS needs cert_file and key_file"));
    };
    let chain = certs("tls.cert_file", cert_file)?;
    let bytes = read("tls.key_file", key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "holds no PEM private key (-----BEGIN PRIVATE KEY-----)".to_string()
            }
            e => format!("is not a valid PEM private key: {e}"),
        };
        err("tls.key_file", format!("{} {why}", key_file.display()))
    })?;
    CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => err(
                "tls.key_file",
                format!(
                    "{} is not the key of the certificate in {}",
                    key_file.display(),
                    cert_file.display()
                ),
            ),
            rustls::Error::InvalidCertificate(_) => err(
                "tls.cert_file",
                format!(
                    "{}: the first certificate is not usable: {e}",
                    cert_file.display()
                ),
            ),
            e => err(
                "tls.key_file",
                format!("{}: the key is not usable: {e}", key_file.display()),
            ),
        })
}

/// The CA certificates of a PEM file as trust anchors.
fn roots(key: &str, path: &Path) -> Result<RootCertStore, ConfigError> {
    let mut store = RootCertStore::empty();
    for c in certs(key, path)? {
        store.add(c).map_err(|e| {
            err(
                key,
                format!(
                    "{}: a certificate is not usable as a CA: {e}",
                    path.display()
                ),
            )
        })?;
    }
    Ok(store)
}

/// Races `work` with a timer of `timeout`.
async fn within<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    let expire = async {
        glommio::timer::sleep(timeout).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake not finished in time",
        ))
    };
    or(work, expire).await
}

/// The server side of a handshake on an accepted connection, within `timeout`. rustls
/// bounds what it buffers of a handshake (one message at most 64 KiB).
pub async fn accept(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
    timeout: Duration,
) -> std::io::Result<ServerStream> {
    within(
        timeout,
        futures_rustls::TlsAcceptor::from(config).accept(tcp),
    )
    .await
}

/// The client side of a handshake with the peer at `addr` (`host:port`, the host being what
/// its certificate must name), within `timeout`.
pub async fn connect(
    config: Arc<ClientConfig>,
    addr: &str,
    tcp: TcpStream,
    timeout: Duration,
) -> std::io::Result<ClientStream> {
    let name = server_name(addr).map_err(std::io::Error::other)?;
    within(
        timeout,
        futures_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
}

/// The name a peer's certificate must carry: the host of `host:port` (an IP address or a DNS
/// name; IPv6 in brackets).
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host:?} cannot be checked against a certificate"))
}

#[cfg(test)]
mod tests {
    use super::server_name;

    #[test]
    fn the_name_to_verify_is_the_host() {
        assert_eq!(
            format!("{:?}", server_name("127.0.0.1:9933").unwrap()),
            format!("{:?}", server_name("127.0.0.1").unwrap())
        );
        assert!(server_name("[::1]:9933").is_ok());
        assert!(server_name("node-2.example:9933").is_ok());
        assert!(server_name("bad host:1").is_err());
    }
}
