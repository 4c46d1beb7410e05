//! A raw HTTP/1.1 client for tests that must control every header (Host, Origin, a body
//! without Content-Type) or the client's own address: requests written by hand on a TCP
//! connection, answers read by their Content-Length.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// An answer: status, headers (names lowercase) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A keep-alive connection.
pub struct Http {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    pub fn connect(addr: &str) -> Http {
        Http::over(TcpStream::connect(addr).unwrap())
    }

    /// A connection from the loopback address `src` (any of 127.0.0.0/8) to `dst`, so that one
    /// machine can be several clients.
    pub fn connect_from(src: &str, dst: &str) -> Http {
        Http::over(connect_from(src, dst))
    }

    pub fn over(s: TcpStream) -> Http {
        s.set_nodelay(true).unwrap();
        Http { s, buf: Vec::new() }
    }

    /// Sends a request (`head_lines`: extra header lines, each without CRLF) and reads its
    /// answer; `None` if the server closed the connection or did not answer within 10 s.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        head_lines: &[&str],
        body: &str,
    ) -> Option<Answer> {
        let mut req = format!("{method} {path} HTTP/1.1\r\n");
        // HTTP/1.1 needs a Host (RFC 9112 §3.2): `localhost` unless the caller names one.
        if !head_lines
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("host:"))
        {
            req.push_str("Host: localhost\r\n");
        }
        for h in head_lines {
            req.push_str(h);
            req.push_str("\r\n");
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.s.write_all(req.as_bytes()).ok()?;
        self.answer(Duration::from_secs(10))
    }

    /// `GET path` with `Host: localhost`.
    pub fn get(&mut self, path: &str) -> Option<Answer> {
        self.request("GET", path, &["Host: localhost"], "")
    }

    /// Reads one answer.
    pub fn answer(&mut self, wait: Duration) -> Option<Answer> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(a) = self.parse() {
                return Some(a);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 8192];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether the server closed the connection (reads end) within `wait`.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut chunk = [0u8; 256];
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            self.s
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.s.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }

    fn parse(&mut self) -> Option<Answer> {
        let end = self.buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        if self.buf.len() < end + len {
            return None;
        }
        let body = String::from_utf8_lossy(&self.buf[end..end + len]).to_string();
        self.buf.drain(..end + len);
        Some(Answer {
            status,
            headers,
            body,
        })
    }
}

/// A TCP connection from the local address `src` (bound before connecting) to `dst`.
pub fn connect_from(src: &str, dst: &str) -> TcpStream {
    let src: std::net::Ipv4Addr = src.parse().expect("an IPv4 source address");
    let dst: SocketAddr = dst.parse().expect("a socket address");
    let SocketAddr::V4(dst) = dst else {
        panic!("connect_from takes an IPv4 destination")
    };
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, plain sockaddr_in values that outlive the calls; the descriptor
    // is owned by the TcpStream from then on (or closed on failure).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let from = sockaddr(src, 0);
        let to = sockaddr(*dst.ip(), dst.port());
        let ok = libc::bind(fd, &from as *const _ as *const libc::sockaddr, len) == 0
            && libc::connect(fd, &to as *const _ as *const libc::sockaddr, len) == 0;
        if !ok {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            panic!("connect from {src} to {dst}: {e}");
        }
        TcpStream::from_raw_fd(fd)
    }
}
