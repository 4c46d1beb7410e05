//! One HTTP client connection of a worker: its socket state (connecting, open, down), the
//! FIFO of requests in flight (intended and actual send times), and response framing on
//! the bytes its `Wire` has read.

use super::response::{Parsed, ResponseParser};
use crate::net::{connect_nonblocking, Poller};
use crate::wire::Wire;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// A request on the wire: when it should have been sent, when it was, and whether it
/// falls in the measured window.
#[derive(Clone, Copy, Debug)]
pub struct InFlight {
    pub intended: u64,
    pub sent: u64,
    pub measured: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No socket; reconnect at or after `retry_at`.
    Down {
        retry_at: u64,
    },
    Connecting {
        since: u64,
    },
    Open,
}

pub struct Conn {
    pub wire: Wire,
    pub state: State,
    pub generation: u32,
    pub inflight: VecDeque<InFlight>,
    parser: ResponseParser,
    /// The server announced it closes after the current response.
    pub closing: bool,
}

impl Conn {
    pub fn new() -> Self {
        Conn {
            wire: Wire::default(),
            state: State::Down { retry_at: 0 },
            generation: 0,
            inflight: VecDeque::new(),
            parser: ResponseParser::default(),
            closing: false,
        }
    }

    /// Token for the poller: connection index in the low half, generation in the high.
    pub fn token(&self, index: usize) -> u64 {
        (index as u64) | ((self.generation as u64) << 32)
    }

    pub fn start_connect(
        &mut self,
        index: usize,
        addr: &SocketAddr,
        poller: &Poller,
        now: u64,
    ) -> io::Result<()> {
        self.generation = self.generation.wrapping_add(1);
        let s = connect_nonblocking(addr)?;
        poller.add(s.as_raw_fd(), self.token(index))?;
        self.wire.stream = Some(s);
        self.state = State::Connecting { since: now };
        Ok(())
    }

    /// Called on the first writable/hang-up event while connecting.
    pub fn finish_connect(&mut self) -> io::Result<()> {
        let s = self
            .wire
            .stream
            .as_ref()
            .ok_or_else(|| io::Error::other("no socket"))?;
        if let Some(e) = s.take_error()? {
            return Err(e);
        }
        s.peer_addr()?;
        self.state = State::Open;
        Ok(())
    }

    /// Drops the socket and buffers; in-flight entries are left for the caller to account.
    pub fn close(&mut self, poller: &Poller, retry_at: u64) {
        if let Some(s) = self.wire.reset() {
            poller.delete(s.as_raw_fd());
        }
        self.state = State::Down { retry_at };
        self.parser.reset();
        self.closing = false;
    }

    /// Frames the next buffered response, consuming it when complete.
    pub fn next_response(&mut self) -> Parsed {
        loop {
            let r = self.parser.parse(self.wire.data(), self.wire.eof);
            match r {
                Parsed::Interim { len } => self.wire.consume(len),
                Parsed::Done { len, close, .. } => {
                    self.wire.consume(len);
                    if close {
                        self.closing = true;
                    }
                    return r;
                }
                _ => return r,
            }
        }
    }
}
