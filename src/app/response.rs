//! What a component handler answers: JSON, bytes with a content type (HTML, text, images),
//! a bare status with headers, or a real-time stream of a table or record (SSE or WebSocket,
//! served by the same machinery as REST streams).

use super::Error;

/// The body of an answer.
pub enum Body {
    Bytes(Vec<u8>),
    /// Stream the changes of `table` (of one record when `id` is set) to the client, as REST
    /// does for `Accept: text/event-stream` or a WebSocket upgrade on `/{table}/{id}`.
    Stream {
        table: String,
        id: Option<String>,
    },
}

pub struct Response {
    pub status: u16,
    pub content_type: String,
    /// Extra headers (name, value).
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    /// A status with no body.
    pub fn status(status: u16) -> Response {
        Response {
            status,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }

    /// A value as JSON.
    pub fn json<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> Result<Response, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::new(500, format!("cannot encode the answer: {e}")))?;
        Ok(Response::bytes(status, "application/json", bytes))
    }

    /// JSON bytes as they are (a stored record's body, for one).
    pub fn raw_json(status: u16, bytes: Vec<u8>) -> Response {
        Response::bytes(status, "application/json", bytes)
    }

    /// Bytes with their content type.
    pub fn bytes(status: u16, content_type: &str, bytes: Vec<u8>) -> Response {
        Response {
            status,
            content_type: content_type.to_string(),
            headers: Vec::new(),
            body: Body::Bytes(bytes),
        }
    }

    /// An HTML page.
    pub fn html(status: u16, page: impl Into<String>) -> Response {
        Response::bytes(status, "text/html; charset=utf-8", page.into().into_bytes())
    }

    /// The changes of a table (or of one record) as a stream: SSE for a client that accepts
    /// `text/event-stream`, a WebSocket for one that asks to upgrade.
    pub fn stream(table: &str, id: Option<&str>) -> Response {
        Response {
            status: 200,
            content_type: "text/event-stream".into(),
            headers: Vec::new(),
            body: Body::Stream {
                table: table.to_string(),
                id: id.map(str::to_string),
            },
        }
    }

    /// Adds a header (names and values must not contain CR or LF; such a header is dropped).
    pub fn header(mut self, name: &str, value: &str) -> Response {
        let clean = |s: &str| !s.contains(['\r', '\n']);
        if clean(name) && clean(value) && !name.is_empty() {
            self.headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}
