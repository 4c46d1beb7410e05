//! Compression of answers (brotli or gzip, at a fast level) when the client's
//! `Accept-Encoding` allows it and the body is at least `http.compress_min_bytes` long (or
//! the client refuses uncompressed bodies). Only textual and record types are compressed;
//! never 1xx, 204, 206 or 304, nor an answer that already has a `Content-Encoding`. HEAD is
//! answered from the same compressed body as GET, so its headers are GET's. The compressed
//! body is kept only when it is smaller (or a few bytes larger, for a client that refuses
//! uncompressed answers), so it never outgrows the answer.

use super::negotiate::{encodings, Coding};
use super::response::Response;
use std::io::Write;

/// brotli quality and window (quality 1: fastest; the window bounds the encoder's memory).
const BROTLI_QUALITY: i32 = 1;
const BROTLI_WINDOW: i32 = 18;

/// Bytes a coding may add to a body that does not shrink (headers, stored blocks), beyond
/// what a body under the window size needs.
const OVERHEAD: usize = 64;

/// Compresses `resp` for a client that sent `accept_encoding`, if it is worth it.
/// `min_bytes`: the smallest body compressed (`None`: compression is off).
pub fn apply(resp: &mut Response, accept_encoding: Option<&str>, min_bytes: Option<usize>) {
    let Some(min_bytes) = min_bytes else {
        return;
    };
    if !eligible(resp) {
        return;
    }
    let accepted = encodings(accept_encoding);
    let big = resp.body.len() >= min_bytes;
    if big {
        resp.vary("Accept-Encoding");
    }
    let Some(coding) = accepted.coding else {
        return;
    };
    if !big && accepted.identity {
        return;
    }
    // A client that refuses identity gets the coding even if it does not shrink the body.
    let cap = match accepted.identity {
        true => resp.body.len(),
        false => resp.body.len() + OVERHEAD,
    };
    if let Some(body) = compress(coding, &resp.body, cap) {
        resp.body = body;
        resp.vary("Accept-Encoding");
        resp.extra
            .push(format!("Content-Encoding: {}", coding.token()));
    }
}

/// Whether an answer may be compressed at all: a body that is there, of a type that shrinks.
fn eligible(resp: &Response) -> bool {
    let no_body = matches!(resp.status, 100..=199 | 204 | 206 | 304) || resp.body.is_empty();
    let encoded = resp.extra.iter().any(|h| {
        h.get(..17)
            .is_some_and(|n| n.eq_ignore_ascii_case("content-encoding:"))
    });
    !no_body && !encoded && shrinks(&resp.content_type)
}

/// Text, JSON, XML, JavaScript, CBOR and MessagePack.
fn shrinks(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.starts_with("text/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/cbor"
                | "application/x-msgpack"
                | "application/javascript"
                | "application/xml"
                | "image/svg+xml"
        )
}

/// `body` compressed, if that makes it shorter than `cap`.
fn compress(coding: Coding, body: &[u8], cap: usize) -> Option<Vec<u8>> {
    let mut out = Capped(Vec::with_capacity(body.len() / 4 + 64), cap);
    match coding {
        Coding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
            enc.write_all(body).ok()?;
            enc.finish().ok()?;
        }
        Coding::Brotli => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: BROTLI_QUALITY,
                lgwin: BROTLI_WINDOW,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &body[..], &mut out, &params).ok()?;
        }
    }
    Some(out.0)
}

/// A buffer that refuses to grow to its cap: compression stops as soon as it would not pay.
struct Capped(Vec<u8>, usize);

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + b.len() >= self.1 {
            return Err(std::io::Error::other("compressed body not smaller"));
        }
        self.0.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn answer(body: &[u8], content_type: &'static str) -> Response {
        let mut r = Response::json(200, body.to_vec());
        r.content_type = content_type.into();
        r
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.extra
            .iter()
            .find_map(|h| h.strip_prefix(name)?.strip_prefix(": "))
    }

    #[test]
    fn big_bodies_are_compressed_as_accepted() {
        let body = br#"{"name":"lamp","price":25}"#.repeat(100);
        let mut r = answer(&body, "application/json");
        apply(&mut r, Some("gzip, br"), Some(1024));
        assert_eq!(header(&r, "Content-Encoding"), Some("br"));
        assert_eq!(header(&r, "Vary"), Some("Accept-Encoding"));
        let mut plain = Vec::new();
        brotli::Decompressor::new(&r.body[..], 4096)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, body);

        let mut r = answer(&body, "text/csv; charset=utf-8");
        apply(&mut r, Some("gzip"), Some(1024));
        assert_eq!(header(&r, "Content-Encoding"), Some("gzip"));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&r.body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, body);
    }

    #[test]
    fn what_is_not_compressed() {
        let body = b"abcd".repeat(1000);
        let (small, big): (&[u8], &[u8]) = (b"{}", &body);
        let cases = [
            (small, "application/json", Some("gzip"), Some(1024)),
            (big, "application/json", None, Some(1024)),
            (big, "application/json", Some("gzip"), None),
            (big, "image/png", Some("gzip"), Some(1024)),
            (big, "application/json", Some("identity"), Some(1024)),
        ];
        for (body, ct, ae, min) in cases {
            let mut r = answer(body, ct);
            apply(&mut r, ae, min);
            assert_eq!(header(&r, "Content-Encoding"), None, "{ct} {ae:?} {min:?}");
            assert_eq!(r.body, body);
        }
        let mut r = answer(&body, "application/json");
        r.status = 304;
        apply(&mut r, Some("gzip"), Some(0));
        assert_eq!(header(&r, "Content-Encoding"), None);
    }

    #[test]
    fn refusing_identity_compresses_small_bodies() {
        let body = br#"{"a":1}"#;
        let mut r = answer(body, "application/json");
        apply(&mut r, Some("gzip, identity;q=0"), Some(1024));
        assert_eq!(header(&r, "Content-Encoding"), Some("gzip"));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&r.body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, body);
    }

    #[test]
    fn incompressible_bodies_stay_as_they_are() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        for coding in ["gzip", "br"] {
            let mut r = answer(&noise, "application/cbor");
            apply(&mut r, Some(coding), Some(1024));
            assert_eq!(header(&r, "Content-Encoding"), None, "{coding}");
            assert_eq!(header(&r, "Vary"), Some("Accept-Encoding"));
            assert_eq!(r.body, noise);
        }
    }
}
