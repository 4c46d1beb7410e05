//! Fuzz target of the REST query parser (`microlith::query::parse`, and
//! `parse_from_client`, which the REST routes call): the text after `?` in a request.
//!
//! Properties: no panic; an error points into the query, at its token; an accepted query
//! prints (its canonical `Display` form, used in logs and cache keys) to text that parses
//! back to the same query.

#![no_main]

use libfuzzer_sys::fuzz_target;
use microlith::query::{parse, parse_from_client, Query, QueryError};

fn check_error(raw: &str, e: &QueryError) {
    let at = raw.get(e.position..);
    assert!(
        at.is_some_and(|rest| rest.starts_with(&e.token)),
        "{raw:?}: error at {} names {:?}",
        e.position,
        e.token
    );
}

fn check_canonical(raw: &str, q: &Query) {
    let text = q.to_string();
    assert_eq!(
        parse(&text).as_ref(),
        Ok(q),
        "{raw:?} prints as {text:?}, which does not parse back"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    match parse(raw) {
        Ok(q) => check_canonical(raw, &q),
        Err(e) => check_error(raw, &e),
    }
    if let Ok(q) = parse_from_client(raw) {
        check_canonical(raw, &q);
    }
});
