//! A response before it is written: status, the few headers the server sets, the body; and
//! its serialization onto the connection's output buffer.

use std::io::Write;

pub struct Response {
    pub status: u16,
    pub content_type: std::borrow::Cow<'static, str>,
    pub body: Vec<u8>,
    pub etag: Option<crate::storage::hlc::Version>,
    pub location: Option<String>,
    pub retry_after: Option<u32>,
    /// Extra headers, each a full `Name: value` line without CRLF.
    pub extra: Vec<String>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            content_type: std::borrow::Cow::Borrowed("application/json"),
            body: Vec::new(),
            etag: None,
            location: None,
            retry_after: None,
            extra: Vec::new(),
        }
    }

    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            body,
            ..Response::new(status)
        }
    }

    /// Adds `token` to the answer's `Vary` header (one header for every token).
    pub fn vary(&mut self, token: &str) {
        match self.extra.iter_mut().find(|h| h.starts_with("Vary: ")) {
            Some(h) if h[6..].split(", ").any(|t| t.eq_ignore_ascii_case(token)) => {}
            Some(h) => {
                h.push_str(", ");
                h.push_str(token);
            }
            None => self.extra.push(format!("Vary: {token}")),
        }
    }

    /// Serializes the head (with the CORS lines of `cors`) and (unless `head_only`) the body.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        head_only: bool,
        close: bool,
        cors: Option<&super::cors::Allowed>,
    ) {
        let _ = write!(out, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        if self.status != 204 && self.status != 304 {
            let _ = write!(
                out,
                "Content-Type: {}\r\nContent-Length: {}\r\n",
                self.content_type,
                self.body.len()
            );
        }
        if let Some(v) = &self.etag {
            out.extend_from_slice(b"ETag: ");
            v.write_etag(out);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(l) = &self.location {
            let _ = write!(out, "Location: {l}\r\n");
        }
        if let Some(s) = self.retry_after {
            let _ = write!(out, "Retry-After: {s}\r\n");
        }
        for h in &self.extra {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(c) = cors {
            c.write(out);
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only && self.status != 204 && self.status != 304 {
            out.extend_from_slice(&self.body);
        }
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        // Statuses a component may choose that have no phrase here: their class.
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}
