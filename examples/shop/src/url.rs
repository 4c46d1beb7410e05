//! Percent-encoding of ids where they go into a query string (`category=...`) or a link
//! (`/shop/p/...`): everything but letters, digits and `-._~` is encoded, so an id can hold
//! `&`, `/`, quotes or spaces without changing the query or the markup around it.

/// `s` percent-encoded (UTF-8 bytes).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(hex(b >> 4));
            out.push(hex(b & 0x0f));
        }
    }
    out
}

fn hex(n: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(n & 0x0f)])
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn ids_with_special_characters_are_encoded() {
        assert_eq!(encode("p-0042"), "p-0042");
        assert_eq!(encode("a&b=c/d e"), "a%26b%3Dc%2Fd%20e");
        assert_eq!(encode("product:é"), "product%3A%C3%A9");
    }
}
