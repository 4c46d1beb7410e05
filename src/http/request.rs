//! Parsing one request from a connection's buffer with httparse: the request head, the few
//! headers the server acts on, and the body (Content-Length or chunked), within the limits.

/// Request methods the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    /// The method as it appears on the wire (`OTHER` for those the server does not know).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

/// A parsed request, borrowing the connection's buffer.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub accept_encoding: Option<&'a str>,
    /// `Host` (checked against the node's names) and `Origin` (checked on WebSocket upgrades).
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    /// Real-time requests: `Upgrade`, whether `Connection` names `upgrade`, the WebSocket
    /// key, version and subprotocols, and SSE's `Last-Event-ID`.
    pub upgrade: Option<&'a str>,
    pub connection_upgrade: bool,
    pub ws_key: Option<&'a str>,
    pub ws_version: Option<&'a str>,
    pub ws_protocol: Option<&'a str>,
    pub last_event_id: Option<&'a str>,
    /// A CORS preflight names the method it asks for (`Access-Control-Request-Method`).
    pub cors_request_method: bool,
    /// `Authorization` (credentials; see `http/auth.rs`).
    pub authorization: Option<&'a str>,
    /// Who sent it, once authenticated (`None` while the node has no users).
    pub user: Option<std::sync::Arc<crate::security::Principal>>,
    /// The request line and every header, as received (for handlers that read any header).
    pub head: &'a [u8],
    pub body: &'a [u8],
}

/// The outcome of trying to parse the buffered bytes (once per request, on the stack).
#[allow(clippy::large_enum_variant)]
pub enum Parsed<'a> {
    /// A whole request; `consumed` bytes of the buffer belong to it.
    Complete {
        req: Request<'a>,
        consumed: usize,
        close: bool,
    },
    /// More bytes are needed. `expect_continue` asks for a `100 Continue` first.
    Incomplete { expect_continue: bool },
    /// The request is wrong: answer with this status and close.
    Error { status: u16, detail: String },
}

/// Limits applied while parsing.
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
}

const MAX_HEADERS: usize = 64;

/// Parses the request at the start of `buf`. Chunked bodies are decoded into `scratch`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits, scratch: &'a mut Vec<u8>) -> Parsed<'a> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_header_bytes {
                return Parsed::Error {
                    status: 431,
                    detail: format!("request head exceeds {} bytes", limits.max_header_bytes),
                };
            }
            return Parsed::Incomplete {
                expect_continue: false,
            };
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Error {
                status: 431,
                detail: format!("more than {MAX_HEADERS} header fields"),
            }
        }
        Err(e) => {
            return Parsed::Error {
                status: 400,
                detail: format!("malformed request: {e}"),
            }
        }
    };
    if head_len > limits.max_header_bytes {
        return Parsed::Error {
            status: 431,
            detail: format!("request head exceeds {} bytes", limits.max_header_bytes),
        };
    }
    let method = match req.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        _ => Method::Other,
    };
    let (target, authority) = match request_target(req.path.unwrap_or("/")) {
        Ok(t) => t,
        Err(detail) => {
            return Parsed::Error {
                status: 400,
                detail,
            }
        }
    };
    let http10 = req.version == Some(0);
    let mut close = http10;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut expect_continue = false;
    let mut r = Request {
        method,
        path: target,
        query: None,
        content_type: None,
        if_match: None,
        if_none_match: None,
        accept: None,
        accept_encoding: None,
        host: None,
        origin: None,
        upgrade: None,
        connection_upgrade: false,
        ws_key: None,
        ws_version: None,
        ws_protocol: None,
        last_event_id: None,
        cors_request_method: false,
        authorization: None,
        user: None,
        head: &buf[..head_len],
        body: &[],
    };
    if let Some((p, q)) = target.split_once('?') {
        r.path = p;
        r.query = Some(q);
    }
    for h in req.headers.iter() {
        let value = match std::str::from_utf8(h.value) {
            Ok(v) => v.trim(),
            Err(_) => continue,
        };
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            // 1*DIGIT (RFC 9112 §6.2): no sign, no list.
            let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            match value.parse::<usize>().ok().filter(|_| digits).ok_or(()) {
                Ok(n) if content_length.is_none_or(|c| c == n) => content_length = Some(n),
                _ => {
                    return Parsed::Error {
                        status: 400,
                        detail: format!("invalid Content-Length {value:?}"),
                    }
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else {
                return Parsed::Error {
                    status: 501,
                    detail: format!("Transfer-Encoding {value:?} is not supported (only chunked)"),
                };
            }
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
            r.connection_upgrade |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("content-type") {
            r.content_type = Some(value);
        } else if name.eq_ignore_ascii_case("if-match") {
            r.if_match = Some(value);
        } else if name.eq_ignore_ascii_case("if-none-match") {
            r.if_none_match = Some(value);
        } else if name.eq_ignore_ascii_case("accept") {
            r.accept = Some(value);
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            r.accept_encoding = Some(value);
        } else if name.eq_ignore_ascii_case("host") {
            if r.host.replace(value).is_some() {
                return Parsed::Error {
                    status: 400,
                    detail: "more than one Host header".into(),
                };
            }
        } else if name.eq_ignore_ascii_case("origin") {
            r.origin = Some(value);
        } else if name.eq_ignore_ascii_case("upgrade") {
            r.upgrade = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            r.ws_key = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            r.ws_version = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            r.ws_protocol = Some(value);
        } else if name.eq_ignore_ascii_case("authorization") {
            r.authorization = Some(value);
        } else if name.eq_ignore_ascii_case("last-event-id") {
            r.last_event_id = Some(value);
        } else if name.eq_ignore_ascii_case("access-control-request-method") {
            r.cors_request_method = true;
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    if let Some(error) = framing_and_host(http10, chunked, &mut r, authority) {
        return error;
    }
    if chunked && content_length.is_some() {
        return Parsed::Error {
            status: 400,
            detail: "both Content-Length and Transfer-Encoding: chunked".into(),
        };
    }
    let rest = &buf[head_len..];
    if chunked {
        return match decode_chunked(rest, limits.max_body_bytes, scratch) {
            Chunked::Done(used) => {
                r.body = scratch.as_slice();
                Parsed::Complete {
                    req: r,
                    consumed: head_len + used,
                    close,
                }
            }
            Chunked::More => Parsed::Incomplete { expect_continue },
            Chunked::TooLarge => Parsed::Error {
                status: 413,
                detail: format!("body exceeds {} bytes", limits.max_body_bytes),
            },
            Chunked::Bad(d) => Parsed::Error {
                status: 400,
                detail: d,
            },
        };
    }
    let len = content_length.unwrap_or(0);
    if len > limits.max_body_bytes {
        return Parsed::Error {
            status: 413,
            detail: format!(
                "body of {len} bytes exceeds {} bytes",
                limits.max_body_bytes
            ),
        };
    }
    if rest.len() < len {
        return Parsed::Incomplete {
            expect_continue: expect_continue && rest.is_empty(),
        };
    }
    r.body = &rest[..len];
    Parsed::Complete {
        req: r,
        consumed: head_len + len,
        close,
    }
}

/// The request target: origin-form (`/path?query`), or absolute-form
/// (`http://authority/path`), which a server MUST accept (RFC 9112 §3.2.2); its authority
/// then stands for the Host header. Anything else is refused.
fn request_target(target: &str) -> Result<(&str, Option<&str>), String> {
    if target.starts_with('/') {
        return Ok((target, None));
    }
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            let head = target.get(..scheme.len())?;
            head.eq_ignore_ascii_case(scheme)
                .then(|| &target[scheme.len()..])
        })
        .ok_or_else(|| format!("request target {target:?} must start with '/' or http://"))?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("request target {target:?} has no usable authority"));
    }
    // `http://host?q` has an empty path: it is `/`, which this server never serves with a
    // query; refuse rather than guess.
    if !path.starts_with('/') {
        return Err(format!("request target {target:?} has no path"));
    }
    Ok((path, Some(authority)))
}

/// RFC 9112's rules on the head as a whole: an HTTP/1.1 request names its host (a Host
/// header or an absolute-form target, which wins); an HTTP/1.0 request has no
/// Transfer-Encoding (its framing would be ambiguous). The error to answer, if one breaks.
fn framing_and_host<'a>(
    http10: bool,
    chunked: bool,
    r: &mut Request<'a>,
    authority: Option<&'a str>,
) -> Option<Parsed<'a>> {
    if http10 && chunked {
        return Some(Parsed::Error {
            status: 400,
            detail: "an HTTP/1.0 request cannot use Transfer-Encoding".into(),
        });
    }
    if authority.is_some() {
        r.host = authority;
    }
    if !http10 && r.host.is_none() {
        return Some(Parsed::Error {
            status: 400,
            detail: "an HTTP/1.1 request needs a Host header".into(),
        });
    }
    None
}

enum Chunked {
    Done(usize),
    More,
    TooLarge,
    Bad(String),
}

/// Decodes a whole chunked body (trailers ignored) if it is all in `buf`.
fn decode_chunked(buf: &[u8], max: usize, out: &mut Vec<u8>) -> Chunked {
    out.clear();
    let mut pos = 0;
    loop {
        let (used, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete((u, s))) => (u, s),
            Ok(httparse::Status::Partial) => return Chunked::More,
            Err(_) => return Chunked::Bad("malformed chunk size".into()),
        };
        pos += used;
        let size = match usize::try_from(size) {
            Ok(s) if out.len().saturating_add(s) <= max => s,
            _ => return Chunked::TooLarge,
        };
        if size == 0 {
            // Trailer section: header lines until an empty line.
            loop {
                let Some(eol) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
                    return Chunked::More;
                };
                pos += eol + 2;
                if eol == 0 {
                    return Chunked::Done(pos);
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Chunked::More;
        }
        out.extend_from_slice(&buf[pos..pos + size]);
        pos += size;
        if &buf[pos..pos + 2] != b"\r\n" {
            return Chunked::Bad("chunk not followed by CRLF".into());
        }
        pos += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 1024,
        max_body_bytes: 64,
    };

    #[test]
    fn content_length_body_and_pipelining() {
        let mut s = Vec::new();
        let buf = b"PUT /T/1?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        match parse(buf, &LIMITS, &mut s) {
            Parsed::Complete {
                req,
                consumed,
                close,
            } => {
                assert_eq!(
                    (req.method, req.path, req.query, req.body),
                    (Method::Put, "/T/1", Some("x=1"), &b"{}"[..])
                );
                assert_eq!(consumed, buf.len() - 27);
                assert!(!close);
            }
            _ => panic!("expected a request"),
        }
    }

    #[test]
    fn chunked_body_is_decoded() {
        let mut s = Vec::new();
        let buf = b"POST /T/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n4\r\na\":1\r\n1\r\n}\r\n0\r\n\r\n";
        match parse(buf, &LIMITS, &mut s) {
            Parsed::Complete { req, consumed, .. } => {
                assert_eq!(req.body, b"{\"a\":1}");
                assert_eq!(consumed, buf.len());
            }
            _ => panic!("expected a request"),
        }
        assert!(matches!(
            parse(&buf[..buf.len() - 3], &LIMITS, &mut s),
            Parsed::Incomplete { .. }
        ));
    }

    #[test]
    fn limits_and_malformed_input() {
        let mut s = Vec::new();
        assert!(matches!(
            parse(b"GARBAGE\r\n\r\n", &LIMITS, &mut s),
            Parsed::Error { status: 400, .. }
        ));
        let big = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "a".repeat(2000)
        );
        assert!(matches!(
            parse(big.as_bytes(), &LIMITS, &mut s),
            Parsed::Error { status: 431, .. }
        ));
        let body = b"PUT /T/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n";
        assert!(matches!(
            parse(body, &LIMITS, &mut s),
            Parsed::Error { status: 413, .. }
        ));
        let both = b"PUT /T/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            parse(both, &LIMITS, &mut s),
            Parsed::Error { status: 400, .. }
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.0\r\n\r\n", &LIMITS, &mut s),
            Parsed::Complete { close: true, .. }
        ));
    }

    fn status_of(raw: &[u8]) -> Option<u16> {
        match parse(raw, &LIMITS, &mut Vec::new()) {
            Parsed::Error { status, .. } => Some(status),
            Parsed::Complete { .. } => None,
            Parsed::Incomplete { .. } => Some(0),
        }
    }

    #[test]
    fn rfc9112_request_rules_are_enforced() {
        // §3.2: an HTTP/1.1 request without Host is 400; HTTP/1.0 may omit it.
        assert_eq!(status_of(b"GET / HTTP/1.1\r\n\r\n"), Some(400));
        assert_eq!(status_of(b"GET / HTTP/1.0\r\n\r\n"), None);
        // §6.2: Content-Length is 1*DIGIT.
        for cl in ["+2", "-2", " 2x", "2, 2", ""] {
            let raw = format!("PUT /T/1 HTTP/1.1\r\nHost: h\r\nContent-Length: {cl}\r\n\r\n{{}}");
            assert_eq!(status_of(raw.as_bytes()), Some(400), "{cl:?}");
        }
        // §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        let te10 = b"PUT /T/1 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(status_of(te10), Some(400));
    }

    #[test]
    fn absolute_form_targets_are_accepted_and_name_the_host() {
        let mut s = Vec::new();
        let raw = b"GET http://Node:9926/T/1?select(a) HTTP/1.1\r\nHost: other\r\n\r\n";
        match parse(raw, &LIMITS, &mut s) {
            Parsed::Complete { req, .. } => {
                assert_eq!((req.path, req.query), ("/T/1", Some("select(a)")));
                assert_eq!(req.host, Some("Node:9926"), "the target's authority wins");
            }
            _ => panic!("absolute-form refused"),
        }
        for bad in ["ftp://h/x", "http:///x", "http://u@h/x", "http://h", "*"] {
            let raw = format!("GET {bad} HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(status_of(raw.as_bytes()), Some(400), "{bad}");
        }
    }
}
