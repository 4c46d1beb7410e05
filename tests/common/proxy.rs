//! A fault-injecting TCP proxy for replication links, written independently of the server: it
//! forwards one link (the dialing node → the peer it pulls from) and can cut it, delay it,
//! resume it, or damage one frame of the peer's stream. It knows only the documented framing
//! (docs/replication.md): `[payload length u32 BE][CRC-32 u32 BE][payload]`. Over TLS it
//! only forwards, cuts and delays.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A damage to do to the next large frame from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Flip bits in the payload, header untouched: the checksum fails.
    Corrupt,
    /// Replace the payload with 0xff bytes and a matching checksum: the archive fails validation.
    Garbage,
    /// Send the header and half the payload, then close.
    Truncate,
    /// Send a header announcing a 1 GiB payload.
    Oversize,
}

#[derive(Default)]
struct Inner {
    target: Mutex<Option<String>>,
    cut: AtomicBool,
    delay_ms: AtomicU64,
    fault: Mutex<Option<Fault>>,
    faults_done: AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
}

pub struct Proxy {
    pub addr: String,
    inner: Arc<Inner>,
}

impl Proxy {
    pub fn new() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let inner = Arc::new(Inner::default());
        let i = inner.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if i.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Some(target) = i.target.lock().unwrap().clone() else {
                    continue;
                };
                let Ok(server) =
                    TcpStream::connect_timeout(&target.parse().unwrap(), Duration::from_secs(1))
                else {
                    continue;
                };
                {
                    let mut conns = i.conns.lock().unwrap();
                    conns.retain(|c| c.peer_addr().is_ok());
                    conns.push(client.try_clone().unwrap());
                    conns.push(server.try_clone().unwrap());
                }
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = i.clone();
                std::thread::spawn(move || raw_pump(up, client, server));
                let down = i.clone();
                std::thread::spawn(move || frame_pump(down, s2, c2));
            }
        });
        Proxy { addr, inner }
    }

    pub fn set_target(&self, addr: &str) {
        *self.inner.target.lock().unwrap() = Some(addr.to_string());
    }

    /// Closes every connection and refuses new ones until `resume`.
    pub fn cut(&self) {
        self.inner.cut.store(true, Ordering::SeqCst);
        close_all(&self.inner);
    }

    pub fn resume(&self) {
        self.inner.cut.store(false, Ordering::SeqCst);
    }

    pub fn delay(&self, ms: u64) {
        self.inner.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Damages the next peer frame larger than 200 bytes, then cuts the link.
    pub fn arm(&self, f: Fault) {
        *self.inner.fault.lock().unwrap() = Some(f);
    }

    pub fn faults_done(&self) -> u64 {
        self.inner.faults_done.load(Ordering::SeqCst)
    }
}

fn close_all(i: &Inner) {
    for c in i.conns.lock().unwrap().drain(..) {
        let _ = c.shutdown(Shutdown::Both);
    }
}

fn pause(i: &Inner) {
    let d = i.delay_ms.load(Ordering::SeqCst);
    if d > 0 {
        std::thread::sleep(Duration::from_millis(d));
    }
}

/// Dialer → peer: bytes as they come.
fn raw_pump(i: Arc<Inner>, mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16384];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pause(&i);
        if i.cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Peer → dialer: frame by frame, so one frame can be damaged. A TLS link (its first byte
/// starts a handshake record, 0x16; a frame starts with a small length, 0x00) hides its
/// frames: its bytes go as they come.
fn frame_pump(i: Arc<Inner>, mut from: TcpStream, mut to: TcpStream) {
    let mut first = [0u8; 1];
    if from.read_exact(&mut first).is_ok() && first[0] == 0x16 && to.write_all(&first).is_ok() {
        return raw_pump(i, from, to);
    }
    let mut carried = Some(first[0]);
    loop {
        let mut header = [0u8; 8];
        let read = match carried.take() {
            Some(b) => {
                header[0] = b;
                from.read_exact(&mut header[1..])
            }
            None => from.read_exact(&mut header),
        };
        if read.is_err() {
            break;
        }
        let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; len];
        if from.read_exact(&mut payload).is_err() {
            break;
        }
        pause(&i);
        if i.cut.load(Ordering::SeqCst) {
            break;
        }
        let fault = if len > 200 {
            i.fault.lock().unwrap().take()
        } else {
            None
        };
        let ok = match fault {
            None => to
                .write_all(&header)
                .and_then(|_| to.write_all(&payload))
                .is_ok(),
            Some(f) => {
                // Refuse reconnections at once: the retry must not deliver the record.
                i.cut.store(true, Ordering::SeqCst);
                match f {
                    Fault::Corrupt => {
                        payload[len / 2] ^= 0x55;
                        let _ = to.write_all(&header).and_then(|_| to.write_all(&payload));
                    }
                    Fault::Garbage => {
                        let garbage = vec![0xffu8; len];
                        header[4..].copy_from_slice(&crc32(&garbage).to_be_bytes());
                        let _ = to.write_all(&header).and_then(|_| to.write_all(&garbage));
                    }
                    Fault::Truncate => {
                        let _ = to
                            .write_all(&header)
                            .and_then(|_| to.write_all(&payload[..len / 2]));
                    }
                    Fault::Oversize => {
                        header[..4].copy_from_slice(&(1u32 << 30).to_be_bytes());
                        let _ = to.write_all(&header).and_then(|_| to.write_all(&payload));
                    }
                }
                let _ = to.flush();
                // Let the receiver see the damage before the cut closes the connection.
                std::thread::sleep(Duration::from_millis(300));
                i.faults_done.fetch_add(1, Ordering::SeqCst);
                close_all(&i);
                false
            }
        };
        if !ok {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// CRC-32 (IEEE), as the framing uses.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in bytes {
        c ^= *b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}
