//! Injection: a template's static text with each slot filled from the live values of the
//! page's products, into one output buffer. Nothing here allocates beyond that buffer
//! (sized once from the template): numbers are formatted in place.

use super::template::{Format, Template, What};
use std::io::Write;

/// A currency code kept inline (ISO codes are three letters; up to eight ASCII letters or
/// digits are kept, anything else counts as unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Code {
    bytes: [u8; 8],
    len: u8,
}

impl Code {
    pub fn new(s: &str) -> Option<Code> {
        let ok = !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| {
            let mut bytes = [0u8; 8];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Code {
                bytes,
                len: s.len() as u8,
            }
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A product's live values, read per request; `None` where the record or field is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Live {
    pub cents: Option<i64>,
    pub stock: Option<i64>,
    pub currency: Option<Code>,
}

/// Bytes a slot needs at most, for sizing the buffer.
const SLOT_BYTES: usize = 24;

/// The page: `template` with its slots filled from `live` (indexed like the page's
/// products; a slot past the end shows as unknown).
pub fn fill(template: &Template, live: &[Live], out: &mut Vec<u8>) {
    out.reserve(template.static_len() + template.slots() * SLOT_BYTES);
    for (text, slot) in template.parts() {
        out.extend_from_slice(text);
        if let Some(s) = slot {
            let value = live.get(s.product as usize).copied().unwrap_or_default();
            write_slot(template.format, s.what, &value, out);
        }
    }
}

fn write_slot(format: Format, what: What, v: &Live, out: &mut Vec<u8>) {
    match (what, format) {
        (What::Cents, _) => number(v.cents, format, out),
        (What::Stock, _) => number(v.stock, format, out),
        (What::Currency, Format::Json) => match v.currency {
            Some(c) => quoted(c.as_bytes(), out),
            None => out.extend_from_slice(b"null"),
        },
        (What::Currency, Format::Html) => {
            out.extend_from_slice(v.currency.as_ref().map_or(&b""[..], Code::as_bytes))
        }
        (What::Dollars, _) => wrapped(format, out, |out| dollars(v.cents, out)),
        (What::StockText, _) => wrapped(format, out, |out| stock_text(v.stock, out)),
    }
}

/// A number; unknown is `null` in JSON and empty in HTML.
fn number(n: Option<i64>, format: Format, out: &mut Vec<u8>) {
    match (n, format) {
        (Some(n), _) => {
            let _ = write!(out, "{n}");
        }
        (None, Format::Json) => out.extend_from_slice(b"null"),
        (None, Format::Html) => {}
    }
}

/// Text that is a JSON string in JSON (none of it needs escaping) and plain in HTML.
fn wrapped(format: Format, out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let json = format == Format::Json;
    if json {
        out.push(b'"');
    }
    body(out);
    if json {
        out.push(b'"');
    }
}

fn quoted(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}

/// `$339.91`, `-$0.05`; unknown is `price unavailable`.
pub fn dollars(cents: Option<i64>, out: &mut Vec<u8>) {
    let Some(c) = cents else {
        out.extend_from_slice(b"price unavailable");
        return;
    };
    let sign = if c < 0 { "-" } else { "" };
    let abs = c.unsigned_abs();
    let _ = write!(out, "{sign}${}.{:02}", abs / 100, abs % 100);
}

/// `44 in stock`, `out of stock` (0 or less); unknown is `stock unavailable`.
pub fn stock_text(stock: Option<i64>, out: &mut Vec<u8>) {
    match stock {
        Some(n) if n > 0 => {
            let _ = write!(out, "{n} in stock");
        }
        Some(_) => out.extend_from_slice(b"out of stock"),
        None => out.extend_from_slice(b"stock unavailable"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::template::Builder;
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prices_show_as_dollars_and_cents() {
        assert_eq!(text(|o| dollars(Some(33991), o)), "$339.91");
        assert_eq!(text(|o| dollars(Some(199), o)), "$1.99");
        assert_eq!(text(|o| dollars(Some(5), o)), "$0.05");
        assert_eq!(text(|o| dollars(Some(-5), o)), "-$0.05");
        assert_eq!(text(|o| dollars(None, o)), "price unavailable");
    }

    #[test]
    fn zero_stock_shows_as_out_of_stock() {
        assert_eq!(text(|o| stock_text(Some(44), o)), "44 in stock");
        assert_eq!(text(|o| stock_text(Some(0), o)), "out of stock");
    }

    #[test]
    fn slots_are_filled_in_both_formats_and_unknown_values_are_null_or_empty() {
        let mut j = Builder::new(Format::Json);
        j.raw("{\"p\":")
            .slot(0, What::Cents)
            .raw(",\"c\":")
            .slot(0, What::Currency);
        j.raw(",\"s\":").slot(1, What::Stock).raw("}");
        let live = [
            Live {
                cents: Some(33991),
                stock: Some(44),
                currency: Code::new("USD"),
            },
            Live::default(),
        ];
        let out = text(|o| fill(&j.finish(), &live, o));
        assert_eq!(out, r#"{"p":33991,"c":"USD","s":null}"#);
        let mut h = Builder::new(Format::Html);
        h.raw("<i data-s=\"")
            .slot(1, What::Stock)
            .raw("\">")
            .slot(0, What::Dollars);
        h.raw(" ")
            .slot(0, What::StockText)
            .raw(" ")
            .slot(5, What::Cents)
            .raw("</i>");
        let out = text(|o| fill(&h.finish(), &live, o));
        assert_eq!(out, "<i data-s=\"\">$339.91 44 in stock </i>");
    }

    #[test]
    fn odd_currencies_count_as_unknown() {
        assert!(Code::new("USD").is_some());
        assert!(Code::new("").is_none());
        assert!(Code::new("U\"SD").is_none());
        assert!(Code::new("TOOLONGCODE").is_none());
    }
}
