//! The byte streams under the front ends and the replication links: plain TCP or TLS over
//! it (`Io`, which HTTP, MQTT and the peer links are generic over, so the plain path pays
//! nothing for TLS), and TLS itself (`tls`: certificates, handshakes, reload) with its
//! `[tls]` configuration section (`tls_config`). Knows nothing of HTTP, MQTT or replication.

pub mod tls;
pub mod tls_config;

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;

/// A connection's byte stream: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + 'static {
    /// The TCP socket under the stream (socket options, addresses).
    fn tcp(&self) -> &TcpStream;

    /// Announces the end of the stream to the peer with the next write (TLS `close_notify`,
    /// so a client knows the response was not cut short); nothing on plain TCP.
    fn close_notify(&mut self) {}

    /// The user a verified client certificate names (its common name); `None` on plain TCP,
    /// without `tls.client_ca_file`, or when the client sent no certificate.
    fn client_name(&self) -> Option<String> {
        None
    }
}

impl Io for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Io for tls::ServerStream {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }

    fn close_notify(&mut self) {
        self.get_mut().1.send_close_notify();
    }

    fn client_name(&self) -> Option<String> {
        tls::client_name(self)
    }
}

impl Io for tls::ClientStream {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Writes all of `buf` and pushes it onto the wire. Over TLS `write_all` may leave the last
/// record in the session's buffer until a flush; on plain TCP the flush does nothing.
pub async fn send<S: AsyncWrite + Unpin>(s: &mut S, buf: &[u8]) -> std::io::Result<()> {
    s.write_all(buf).await?;
    s.flush().await
}
