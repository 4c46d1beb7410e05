//! Incremental HTTP/1.1 response framing: status line and headers via httparse, then the
//! body by Content-Length, chunked encoding, or read-until-close. Keeps its place across
//! partial reads so large bodies are not re-scanned.

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Need more bytes.
    Partial,
    /// A complete response of `len` bytes; `close` = the server will close afterwards.
    Done {
        status: u16,
        len: usize,
        close: bool,
    },
    /// A 1xx interim response of `len` bytes to skip.
    Interim {
        len: usize,
    },
    Error(&'static str),
}

#[derive(Clone, Copy, Debug)]
enum Framing {
    Length(usize),
    Chunked { scan: usize },
    UntilClose,
}

#[derive(Clone, Copy, Debug)]
struct Head {
    status: u16,
    header_len: usize,
    framing: Framing,
    close: bool,
}

#[derive(Default, Debug)]
pub struct ResponseParser {
    head: Option<Head>,
}

impl ResponseParser {
    pub fn reset(&mut self) {
        self.head = None;
    }

    /// Frames the response at the start of `buf`; `eof` = the peer closed the connection.
    pub fn parse(&mut self, buf: &[u8], eof: bool) -> Parsed {
        let mut head = match self.head {
            Some(h) => h,
            None => match parse_head(buf) {
                Ok(Some(h)) => h,
                Ok(None) => return Parsed::Partial,
                Err(e) => return Parsed::Error(e),
            },
        };
        if (100..200).contains(&head.status) {
            self.head = None;
            return Parsed::Interim {
                len: head.header_len,
            };
        }
        let done = |len: usize| Parsed::Done {
            status: head.status,
            len,
            close: head.close,
        };
        let result = match &mut head.framing {
            Framing::Length(n) => {
                let total = head.header_len + *n;
                if buf.len() >= total {
                    done(total)
                } else {
                    Parsed::Partial
                }
            }
            Framing::UntilClose => {
                if eof {
                    done(buf.len())
                } else {
                    Parsed::Partial
                }
            }
            Framing::Chunked { scan } => match scan_chunks(buf, scan) {
                Ok(Some(end)) => done(end),
                Ok(None) => Parsed::Partial,
                Err(e) => Parsed::Error(e),
            },
        };
        self.head = match result {
            Parsed::Partial => Some(head),
            _ => None,
        };
        result
    }
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let header_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("malformed response head"),
    };
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut close = http10;
    let mut length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok());
            length = Some(v.ok_or("bad Content-Length")?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked { scan: header_len }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        close = true;
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        header_len,
        framing,
        close,
    }))
}

/// Walks chunks from `*scan`; returns the end offset once the last chunk and trailers
/// are in, and remembers how far complete chunks reach.
fn scan_chunks(buf: &[u8], scan: &mut usize) -> Result<Option<usize>, &'static str> {
    loop {
        let rest = &buf[*scan..];
        let Some(eol) = find_crlf(rest) else {
            return Ok(None);
        };
        let line = &rest[..eol];
        let hex = line.split(|b| *b == b';').next().unwrap_or(line);
        let hex = std::str::from_utf8(hex)
            .map_err(|_| "bad chunk size")?
            .trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| "bad chunk size")?;
        if size == 0 {
            // Trailers: header lines until an empty line.
            let mut pos = *scan + eol + 2;
            loop {
                let Some(e) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += e + 2;
                if e == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        let next = *scan + eol + 2 + size + 2;
        if buf.len() < next {
            return Ok(None);
        }
        if &buf[next - 2..next] != b"\r\n" {
            return Err("chunk not followed by CRLF");
        }
        *scan = next;
    }
}

#[inline]
fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_body_in_pieces() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1";
        let mut p = ResponseParser::default();
        assert_eq!(p.parse(&full[..20], false), Parsed::Partial);
        assert_eq!(p.parse(&full[..40], false), Parsed::Partial);
        assert_eq!(
            p.parse(full, false),
            Parsed::Done {
                status: 200,
                len: 43,
                close: false
            }
        );
    }

    #[test]
    fn chunked_with_trailers_and_close() {
        let r = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n";
        let mut p = ResponseParser::default();
        assert_eq!(p.parse(&r[..r.len() - 3], false), Parsed::Partial);
        assert_eq!(
            p.parse(r, false),
            Parsed::Done {
                status: 404,
                len: r.len(),
                close: true
            }
        );
    }

    #[test]
    fn until_close_and_interim_and_garbage() {
        let r = b"HTTP/1.0 200 OK\r\n\r\nbody";
        let mut p = ResponseParser::default();
        assert_eq!(p.parse(r, false), Parsed::Partial);
        assert_eq!(
            p.parse(r, true),
            Parsed::Done {
                status: 200,
                len: r.len(),
                close: true
            }
        );
        let mut p = ResponseParser::default();
        assert_eq!(
            p.parse(b"HTTP/1.1 100 Continue\r\n\r\n", false),
            Parsed::Interim { len: 25 }
        );
        assert!(matches!(
            ResponseParser::default().parse(b"BLAH\r\n\r\n", false),
            Parsed::Error(_)
        ));
    }
}
