//! TLS for tests: certificate authorities and the certificates they sign, made with rcgen at
//! test time and written as PEM files, the `[tls]` section that uses them, and clients that
//! trust one CA (a rustls configuration, a ureq agent, a raw TLS stream).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A certificate authority whose certificate is a PEM file.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate (what a client or a peer trusts).
    pub pem: PathBuf,
    dir: PathBuf,
}

/// A certificate and its key, as PEM files.
#[derive(Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate, DER (what a client sees).
    pub der: Vec<u8>,
}

impl Ca {
    /// A new CA named `name`, its files in `dir`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        let pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
            dir: dir.to_path_buf(),
        }
    }

    /// A certificate for `localhost` and `127.0.0.1` named `cn`, good for a server and a
    /// client (a node presents it both ways on peer links); files `{file}.pem`, `{file}.key`.
    pub fn issue(&self, file: &str, cn: &str) -> Issued {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let issued = Issued {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
            der: cert.der().to_vec(),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

/// A `[tls]` section with `cert`, its CA for peers when given, listeners on loopback port 0.
pub fn section(cert: &Issued, ca: Option<&Path>) -> String {
    let ca = ca
        .map(|p| format!("ca_file = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n{ca}https_listen = \"127.0.0.1:0\"\nmqtt_listen = \"127.0.0.1:0\"\n",
        cert.cert.display().to_string(),
        cert.key.display().to_string()
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that trusts only the CA in `ca` (versions as given).
pub fn client_config_with(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A client configuration that trusts only the CA in `ca` and presents `cert`.
pub fn client_config_presenting(ca: &Path, cert: &Issued) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&cert.key).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// A client configuration that trusts only the CA in `ca`.
pub fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    client_config_with(ca, rustls::DEFAULT_VERSIONS)
}

/// An HTTPS agent trusting only `ca`.
pub fn agent(ca: &Path) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .tls_config(client_config(ca))
        .build()
}

pub type Stream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `addr` (as `localhost`) trusting `config`'s CA, handshake done.
pub fn connect_with(addr: &str, config: Arc<rustls::ClientConfig>) -> std::io::Result<Stream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// A TLS connection to `addr` trusting only `ca`, handshake done.
pub fn connect(addr: &str, ca: &Path) -> std::io::Result<Stream> {
    connect_with(addr, client_config(ca))
}

/// The certificate the server presented (DER).
pub fn server_cert(s: &Stream) -> Vec<u8> {
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

/// One GET on a kept-alive connection; returns the status line and body (Content-Length).
pub fn get_on(s: &mut Stream, path: &str) -> (String, String) {
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).expect("response");
        assert!(n > 0, "connection closed before the response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        if body.len() >= len {
            let status = head.lines().next().unwrap_or("").to_string();
            return (status, body[..len].to_string());
        }
    }
}

/// A TLS 1.1 ClientHello (no extensions, two TLS 1.1 cipher suites).
pub fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x04, 0x00, 0x2f, 0x00, 0x35]); // AES128-SHA, AES256-SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00, 0x00, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x02, 0x00, hs.len() as u8];
    record.extend_from_slice(&hs);
    record
}

/// Sends `bytes` on a plain TCP connection to `addr` and returns all the server sent back
/// before it closed the connection (panics if it is still open after 10 s).
pub fn answer_to(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("{addr} kept the connection open: {e} (got {got:?})"),
        }
    }
}

/// An MQTT 3.1.1 client (rumqttc over rustls) to the TLS listener at `addr` (as `localhost`)
/// trusting only `ca`; waits for the CONNACK.
pub fn mqtt_client(addr: &str, ca: &Path, id: &str) -> super::mqtt::Client {
    super::mqtt::Client::v4_opts(mqtt_options(addr, ca, id))
}

/// The options of `mqtt_client`, to add to before connecting.
pub fn mqtt_options(addr: &str, ca: &Path, id: &str) -> rumqttc::MqttOptions {
    let (_, port) = addr.rsplit_once(':').unwrap();
    let mut o = rumqttc::MqttOptions::new(id, "localhost", port.parse().unwrap());
    o.set_keep_alive(Duration::from_secs(30));
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(client_config(ca)),
    ));
    o
}
