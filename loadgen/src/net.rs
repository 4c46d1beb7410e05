//! The small event loop underneath every worker: an edge-triggered epoll wrapper with a
//! nanosecond wait (epoll_pwait2, falling back to epoll_wait), non-blocking TCP connect,
//! and address resolution with a clear error for unreachable targets.

use anyhow::{anyhow, Result};
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const READABLE: u32 = libc::EPOLLIN as u32;
pub const WRITABLE: u32 = libc::EPOLLOUT as u32;
pub const HANGUP: u32 = (libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP) as u32;

static NO_PWAIT2: AtomicBool = AtomicBool::new(false);

pub struct Poller {
    fd: RawFd,
    events: Vec<libc::epoll_event>,
    ready: usize,
}

impl Poller {
    pub fn new(capacity: usize) -> io::Result<Self> {
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(16)];
        Ok(Poller {
            fd,
            events,
            ready: 0,
        })
    }

    /// Registers `fd` edge-triggered for reads, writes and hang-ups under `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        if unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn delete(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }

    /// Waits for events for at most `timeout_ns` (None = forever, 0 = poll).
    pub fn wait(&mut self, timeout_ns: Option<u64>) -> io::Result<usize> {
        let max = self.events.len() as libc::c_int;
        let n = if !NO_PWAIT2.load(Ordering::Relaxed) {
            let ts = timeout_ns.map(|t| libc::timespec {
                tv_sec: (t / 1_000_000_000) as libc::time_t,
                tv_nsec: (t % 1_000_000_000) as libc::c_long,
            });
            let tp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            let r = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    self.fd,
                    self.events.as_mut_ptr(),
                    max,
                    tp,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                NO_PWAIT2.store(true, Ordering::Relaxed);
                return self.wait(timeout_ns);
            }
            r as libc::c_int
        } else {
            let ms = timeout_ns.map_or(-1, |t| {
                t.div_ceil(1_000_000).min(i32::MAX as u64) as libc::c_int
            });
            unsafe { libc::epoll_wait(self.fd, self.events.as_mut_ptr(), max, ms) }
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                self.ready = 0;
                return Ok(0);
            }
            return Err(e);
        }
        self.ready = n as usize;
        Ok(self.ready)
    }

    /// The `i`-th ready event as (token, flags).
    #[inline]
    pub fn event(&self, i: usize) -> (u64, u32) {
        let e = self.events[i];
        (e.u64, e.events)
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

/// Starts a non-blocking TCP connect; completion shows as writability, then check
/// `TcpStream::take_error`.
pub fn connect_nonblocking(addr: &SocketAddr) -> io::Result<TcpStream> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // Wrap first so the descriptor is closed on every error path.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let r = match addr {
        SocketAddr::V4(a) => {
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            unsafe {
                libc::connect(
                    fd,
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of_val(&sa) as libc::socklen_t,
                )
            }
        }
        SocketAddr::V6(a) => {
            let sa = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            unsafe {
                libc::connect(
                    fd,
                    &sa as *const _ as *const libc::sockaddr,
                    std::mem::size_of_val(&sa) as libc::socklen_t,
                )
            }
        }
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Resolves `host:port` to its first address.
pub fn resolve(target: &str) -> Result<SocketAddr> {
    target
        .to_socket_addrs()
        .map_err(|e| anyhow!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {target}: no address"))
}

/// One blocking connect with a deadline, so an unreachable target fails fast and clearly
/// before any worker starts.
pub fn probe(target: &str, addr: &SocketAddr, timeout: Duration) -> Result<()> {
    match TcpStream::connect_timeout(addr, timeout) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
            Err(anyhow!(
                "cannot connect to {target} ({addr}): no answer within the connect timeout of {:?}",
                timeout
            ))
        }
        Err(e) => Err(anyhow!(
            "cannot connect to {target} ({addr}): {e} (is the server running?)"
        )),
    }
}
