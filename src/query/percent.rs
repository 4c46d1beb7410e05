//! Strict percent-decoding, the one used for query strings and for URL path segments (table
//! names and record ids). `%` must be followed by exactly two hex digits (either case); no
//! sign, no single digit. Every other byte stays as it is (`+` is a `+`, not a space). The
//! decoded bytes must be valid UTF-8.

use std::borrow::Cow;

/// Why a text could not be percent-decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PercentError {
    /// The `%` at this byte offset of the input is not followed by two hex digits.
    BadEscape(usize),
    /// The decoded bytes are not valid UTF-8.
    NotUtf8,
}

impl std::fmt::Display for PercentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PercentError::BadEscape(at) => {
                write!(f, "invalid percent-encoding at byte {at}, expected %XX")
            }
            PercentError::NotUtf8 => f.write_str("percent-encoded bytes are not valid UTF-8"),
        }
    }
}

impl std::error::Error for PercentError {}

/// Decodes the `%XX` escapes of `s`; borrows `s` when it has none.
pub fn percent_decode(s: &str) -> Result<Cow<'_, str>, PercentError> {
    let Some(first) = s.find('%') else {
        return Ok(Cow::Borrowed(s));
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (Some(h), Some(l)) => out.push((h << 4) | l),
            _ => return Err(PercentError::BadEscape(i)),
        }
        i += 3;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PercentError::NotUtf8)
}

/// Encodes `s` as one URL path segment: every byte but RFC 3986's unreserved characters
/// (letters, digits, `-._~`) as `%XX`, so `/` and spaces in a record id stay inside it.
pub fn encode_segment(s: &str) -> Cow<'_, str> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
    if s.bytes().all(plain) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    Cow::Owned(out)
}

fn hex(b: Option<&u8>) -> Option<u8> {
    match *b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_escapes_is_borrowed() {
        for s in ["", "plain", "a+b", "é/ü", "x=1&y=2"] {
            assert!(
                matches!(percent_decode(s), Ok(Cow::Borrowed(b)) if b == s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn escapes_decode_in_either_case() {
        assert_eq!(percent_decode("%C3%A9").unwrap(), "é");
        assert_eq!(percent_decode("%c3%a9").unwrap(), "é");
        assert_eq!(percent_decode("a%20b%2Fc").unwrap(), "a b/c");
        assert_eq!(percent_decode("%25").unwrap(), "%");
        assert_eq!(percent_decode("%2525").unwrap(), "%25", "decoded once");
        assert_eq!(percent_decode("x+%2B").unwrap(), "x++", "+ stays +");
        assert_eq!(percent_decode("%00").unwrap(), "\0");
        assert!(matches!(percent_decode("%41"), Ok(Cow::Owned(_))));
    }

    #[test]
    fn anything_but_two_hex_digits_after_percent_is_refused() {
        for (s, at) in [
            ("%+1", 0),
            ("%-1", 0),
            ("% 1", 0),
            ("%2", 0),
            ("%", 0),
            ("%zz", 0),
            ("%4g", 0),
            ("%0x1", 0),
            ("ab%2", 2),
            ("%41%", 3),
            ("%41%+1", 3),
            ("a%é9", 1),
            ("%%41", 0),
        ] {
            assert_eq!(percent_decode(s), Err(PercentError::BadEscape(at)), "{s:?}");
        }
    }

    #[test]
    fn segments_encode_everything_but_unreserved_and_decode_back() {
        assert!(matches!(encode_segment("p-1_a.b~"), Cow::Borrowed(_)));
        assert_eq!(encode_segment("a/b"), "a%2Fb");
        assert_eq!(encode_segment("with space"), "with%20space");
        assert_eq!(encode_segment("é"), "%C3%A9");
        for s in ["a/b?c#d", "100%", "ü ß", ""] {
            assert_eq!(percent_decode(&encode_segment(s)).unwrap(), s);
        }
    }

    #[test]
    fn decoded_bytes_must_be_utf8() {
        for s in ["%FF", "%C3", "a%C3b", "%C3%28", "%ED%A0%80", "%C0%AF"] {
            assert_eq!(percent_decode(s), Err(PercentError::NotUtf8), "{s:?}");
        }
    }
}
