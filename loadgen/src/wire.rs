//! A non-blocking socket with its byte buffers, shared by HTTP and MQTT clients: append
//! to the write buffer and flush until the socket is full; read everything available
//! (edge-triggered) into a reusable read buffer and consume framed messages from it.

use std::io::{self, Read, Write};
use std::net::TcpStream;

pub struct Wire {
    pub stream: Option<TcpStream>,
    pub wbuf: Vec<u8>,
    wpos: usize,
    /// Always initialised to its length; unread data lives in `rstart..rend`.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// The peer closed its side.
    pub eof: bool,
}

impl Default for Wire {
    fn default() -> Self {
        Wire {
            stream: None,
            wbuf: Vec::with_capacity(4096),
            wpos: 0,
            rbuf: vec![0; 16 * 1024],
            rstart: 0,
            rend: 0,
            eof: false,
        }
    }
}

impl Wire {
    /// Forgets the socket and all buffered bytes.
    pub fn reset(&mut self) -> Option<TcpStream> {
        self.wbuf.clear();
        self.wpos = 0;
        self.rstart = 0;
        self.rend = 0;
        self.eof = false;
        self.stream.take()
    }

    pub fn has_unsent(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    pub fn unsent(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Writes buffered bytes until done or the socket is full.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        while self.wpos < self.wbuf.len() {
            match s.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(())
    }

    /// Reads what is available; sets `eof` when the peer closed. Edge-triggered sockets
    /// must be drained, but a read that returns less than the space offered already
    /// emptied the socket (new bytes raise a new edge), so it stops there, saving the
    /// EAGAIN read, unless the event also reported a hang-up (`hup`): then it reads on
    /// to see the end of stream.
    pub fn fill(&mut self, hup: bool) -> io::Result<()> {
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        } else if self.rstart > 64 * 1024 || self.rbuf.len() - self.rend < 4096 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        loop {
            if self.rbuf.len() - self.rend < 4096 {
                let grow = self.rbuf.len().max(16 * 1024);
                self.rbuf.resize(self.rbuf.len() + grow, 0);
            }
            let space = self.rbuf.len() - self.rend;
            match s.read(&mut self.rbuf[self.rend..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.rend += n;
                    if n < space && !hup {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Unread bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.rbuf[self.rstart..self.rend]
    }

    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.rstart += n;
    }
}
