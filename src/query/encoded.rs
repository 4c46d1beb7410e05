//! Queries whose structure a client library percent-encoded. The grammar splits on the raw
//! text, so `%26` in a value is a literal `&`; but `URLSearchParams`, Python's `quote` and
//! others encode `(`, `|`, `=` and friends too, and `?%28a=1%7Ca=2%29` would then search for
//! an attribute named `(a` and silently find nothing. When the raw parse shows such an
//! encoded structure (an attribute name holding `( ) [ ] | & = ,`, or a value that starts with
//! an operator and `=`, as `price=gt%3D5` gives), the query is decoded once and parsed
//! again; if that fails too, the error says so. A value that really starts with `gt=` is
//! written with the `string:` prefix (`?name=string:gt%3D5`).

use super::parse::{op_keyword, parse, Expr, Literal, Query, QueryError};
use super::percent::percent_decode;

/// Characters that are structure when unencoded.
const STRUCTURE: &[char] = &['(', ')', '[', ']', '|', '&', '=', ','];

/// Parses a query string as a client sent it (see the module's rules).
pub fn parse_from_client(raw: &str) -> Result<Query, QueryError> {
    let first = parse(raw);
    let suspicious = match &first {
        Ok(q) => looks_encoded(q),
        Err(_) => true,
    };
    if !suspicious || !has_encoded_structure(raw) {
        return first;
    }
    let Ok(decoded) = percent_decode(raw) else {
        return first;
    };
    // Decoded once: a `%` that remains is a literal `%` and must stay one.
    let again = decoded.replace('%', "%25");
    match (parse(&again), first) {
        (Ok(q), _) => Ok(q),
        (Err(e), Err(_)) | (Err(e), Ok(_)) => Err(QueryError {
            message: format!(
                "{} (in the query decoded once: its structure was percent-encoded)",
                e.message
            ),
            ..e
        }),
    }
}

/// Whether the raw text holds a percent-encoded structural character.
fn has_encoded_structure(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1].to_ascii_uppercase(), w[2].to_ascii_uppercase()),
                (b'2', b'8' | b'9' | b'6' | b'C')
                    | (b'5', b'B' | b'D')
                    | (b'7', b'C')
                    | (b'3', b'D')
            )
    })
}

/// Whether a parsed query only makes sense as an encoded structure.
fn looks_encoded(q: &Query) -> bool {
    q.filter.as_ref().is_some_and(expr_looks_encoded)
}

fn expr_looks_encoded(e: &Expr) -> bool {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().any(expr_looks_encoded),
        Expr::Cond(c) => {
            c.attr.contains(STRUCTURE)
                || matches!(&c.value, Literal::Auto(text) if starts_with_operator(text))
        }
    }
}

/// `gt=5`, `less_than=9`: what `attr=gt%3D5` decodes its value to.
fn starts_with_operator(text: &str) -> bool {
    text.split_once('=')
        .is_some_and(|(word, _)| op_keyword(word, true).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(encoded: &str, plain: &str) {
        assert_eq!(
            parse_from_client(encoded).unwrap(),
            parse(plain).unwrap(),
            "{encoded}"
        );
    }

    #[test]
    fn structure_encoded_by_a_client_means_what_it_means_unencoded() {
        same(
            "%28category=home%7Ccategory=garden%29",
            "(category=home|category=garden)",
        );
        same("price=gt%3D499", "price=gt=499");
        same(
            "%28category%3Dhome%7Ccategory%3Dgarden%29%26select%28name%29",
            "(category=home|category=garden)&select(name)",
        );
        same("%5Ba=1%7Cb=2%5D", "[a=1|b=2]");
    }

    #[test]
    fn encoded_characters_inside_values_stay_literal() {
        same("name=a%26b", "name=a%26b");
        same("name=a%7Cb&x=1", "name=a%7Cb&x=1");
        same("name=string:gt%3D5", "name=string:gt%3D5");
        let q = parse_from_client("%28a=100%25%7Ca=2%29").unwrap();
        assert_eq!(
            q,
            parse("(a=100%25|a=2)").unwrap(),
            "a decoded % stays literal"
        );
    }

    #[test]
    fn an_encoded_structure_that_does_not_parse_is_an_error_that_says_so() {
        let e = parse_from_client("%28a=1%7C").unwrap_err();
        assert!(e.message.contains("percent-encoded"), "{e}");
    }
}
