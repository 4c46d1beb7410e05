//! Fuzz target of the HTTP/1.1 request parser (`microlith::http::request::parse`): the bytes
//! a client sends on a connection, parsed request after request as `http::conn` does.
//!
//! Properties: no panic; a complete request consumes between 1 byte and the whole buffer,
//! its path starts with `/`, its body fits the limit; it parses the same from exactly its
//! own bytes (nothing after it changes it); and every shorter prefix of it is incomplete.

#![no_main]

use libfuzzer_sys::fuzz_target;
use microlith::http::request::{parse, Limits, Parsed};

const LIMITS: Limits = Limits {
    max_header_bytes: 2048,
    max_body_bytes: 1024,
};

/// What a complete parse said, owned, to compare two parses.
#[derive(Debug, PartialEq)]
struct Summary {
    consumed: usize,
    close: bool,
    path: String,
    query: Option<String>,
    host: Option<String>,
    body: Vec<u8>,
}

fn summary(buf: &[u8]) -> Option<Summary> {
    let mut scratch = Vec::new();
    match parse(buf, &LIMITS, &mut scratch) {
        Parsed::Complete {
            req,
            consumed,
            close,
        } => Some(Summary {
            consumed,
            close,
            path: req.path.to_string(),
            query: req.query.map(str::to_string),
            host: req.host.map(str::to_string),
            body: req.body.to_vec(),
        }),
        _ => None,
    }
}

fn check_request(buf: &[u8], cut: usize) -> Option<usize> {
    let s = summary(buf)?;
    assert!(s.consumed >= 1 && s.consumed <= buf.len(), "{s:?}");
    assert!(s.path.starts_with('/'), "{s:?}");
    assert!(s.body.len() <= LIMITS.max_body_bytes, "{s:?}");
    assert_eq!(summary(&buf[..s.consumed]).as_ref(), Some(&s));
    let prefix = &buf[..cut % s.consumed];
    let mut scratch = Vec::new();
    assert!(
        matches!(
            parse(prefix, &LIMITS, &mut scratch),
            Parsed::Incomplete { .. }
        ),
        "a prefix of {} of {} bytes is not incomplete",
        prefix.len(),
        s.consumed
    );
    Some(s.consumed)
}

fuzz_target!(|data: &[u8]| {
    let cut = data.len() / 2 + 1;
    let mut rest = data;
    while let Some(consumed) = check_request(rest, cut) {
        rest = &rest[consumed..];
    }
});
