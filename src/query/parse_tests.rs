//! Unit and property tests of the query-string parser (`parse.rs`), kept in their own file
//! so that both stay short.

use super::*;
use proptest::prelude::*;

fn c(attr: &str, op: Op, value: Literal) -> Expr {
    Expr::Cond(Condition {
        attr: attr.into(),
        op,
        value,
    })
}
fn auto(s: &str) -> Literal {
    Literal::Auto(s.into())
}
fn filter(q: &str) -> Expr {
    parse(q).unwrap().filter.unwrap()
}
fn fails(q: &str) -> QueryError {
    parse(q).expect_err(q)
}

#[test]
fn structure() {
    assert_eq!(parse("").unwrap(), Query::default());
    assert_eq!(parse("&&").unwrap(), Query::default());
    assert_eq!(
        filter("a=1|b=2&c=3"),
        Expr::Or(vec![
            c("a", Op::Eq, auto("1")),
            Expr::And(vec![c("b", Op::Eq, auto("2")), c("c", Op::Eq, auto("3"))]),
        ])
    );
    assert_eq!(
        filter("price=lt=100|[rating=5&[tag=a|tag=b]]"),
        Expr::Or(vec![
            c("price", Op::Lt, auto("100")),
            Expr::And(vec![
                c("rating", Op::Eq, auto("5")),
                Expr::Or(vec![
                    c("tag", Op::Eq, auto("a")),
                    c("tag", Op::Eq, auto("b"))
                ]),
            ]),
        ])
    );
    // Groups of the same kind are flattened; empty `&` terms are skipped.
    assert_eq!(filter("(a=1&b=2)&c=3&"), filter("a=1&b=2&c=3"));
    assert_eq!(filter("&(a=1|b=2)|c=3"), filter("a=1|b=2|c=3"));
}

#[test]
fn operators_and_chains() {
    assert_eq!(
        filter("price=gt=100&lt=200"),
        Expr::And(vec![
            c("price", Op::Gt, auto("100")),
            c("price", Op::Lt, auto("200"))
        ])
    );
    assert_eq!(filter("p=ge=1&=le=2&ne=3"), filter("p=ge=1&p=le=2&p=ne=3"));
    assert_eq!(filter("lt=5"), c("lt", Op::Eq, auto("5")));
    assert_eq!(filter("a!=x"), c("a", Op::Ne, auto("x")));
    assert_eq!(filter("a==x*"), c("a", Op::StartsWith, auto("x")));
    assert_eq!(filter("a==x%2A"), c("a", Op::Eq, auto("x*")));
    assert_eq!(filter("a=x*"), c("a", Op::Eq, auto("x*")));
    assert_eq!(filter("a=starts_with=x"), c("a", Op::StartsWith, auto("x")));
    for (op, want) in [
        ("sw", Op::StartsWith),
        ("ew", Op::EndsWith),
        ("ct", Op::Contains),
        ("ge", Op::Ge),
        ("le", Op::Le),
    ] {
        assert_eq!(filter(&format!("a={op}=v")), c("a", want, auto("v")));
    }
    assert_eq!(
        filter("u=http://h/p?x"),
        c("u", Op::Eq, auto("http://h/p?x"))
    );
    assert_eq!(filter("a="), c("a", Op::Eq, auto("")));
}

#[test]
fn decoding_and_literals() {
    assert_eq!(filter("a%20b=x%26y+z"), c("a b", Op::Eq, auto("x&y+z")));
    assert_eq!(filter("a=null"), c("a", Op::Eq, Literal::Null));
    assert_eq!(
        filter("a=string:null"),
        c("a", Op::Eq, Literal::Str("null".into()))
    );
    assert_eq!(
        filter("a=number:-1.5e2"),
        c("a", Op::Eq, Literal::Number(-150.0))
    );
    assert_eq!(
        filter("a=boolean:true"),
        c("a", Op::Eq, Literal::Bool(true))
    );
    assert_eq!(filter("a=%C3%A9"), c("a", Op::Eq, auto("é")));
    for (q, pos) in [
        ("a=number:abc", 2),
        ("a=number:inf", 2),
        ("a=boolean:1", 2),
        ("a=%zz", 2),
        ("ab=x%C3", 3),
        ("a=%4", 2),
    ] {
        assert_eq!(fails(q).position, pos, "{q}");
    }
}

#[test]
fn calls() {
    let q = parse("a=1&select(x,y)&sort(+x,-y,z)&limit(5,10)").unwrap();
    assert_eq!(q.filter, Some(c("a", Op::Eq, auto("1"))));
    assert_eq!(q.select, Some(Select::Fields(vec!["x".into(), "y".into()])));
    let keys: Vec<_> = q
        .sort
        .iter()
        .map(|k| (k.attr.as_str(), k.descending))
        .collect();
    assert_eq!(keys, vec![("x", false), ("y", true), ("z", false)]);
    assert_eq!(
        q.limit,
        Some(Limit {
            start: 5,
            end: Some(10)
        })
    );
    assert_eq!(
        parse("select(x)").unwrap().select,
        Some(Select::Bare("x".into()))
    );
    assert_eq!(
        parse("select(x,)").unwrap().select,
        Some(Select::Fields(vec!["x".into()]))
    );
    assert_eq!(
        parse("select(%2Bx)").unwrap().select,
        Some(Select::Bare("+x".into()))
    );
    assert_eq!(
        parse("limit(7)").unwrap().limit,
        Some(Limit {
            start: 0,
            end: Some(7)
        })
    );
    assert_eq!(
        parse("limit(7,)").unwrap().limit,
        Some(Limit {
            start: 7,
            end: None
        })
    );
    assert_eq!(
        parse("(a=1|b=2)&limit(1)").unwrap().filter,
        Some(filter("a=1|b=2"))
    );
}

#[test]
fn errors() {
    for (q, pos, token, msg) in [
        ("a=foo=1", 1, "=foo=", "unknown operator =foo="),
        ("a=1)", 3, ")", "unbalanced ')'"),
        ("a=1&(b=2", 4, "(", "unbalanced '('"),
        ("(a=1]", 4, "]", "expected ')'"),
        ("()", 1, ")", "expected a condition"),
        ("a=1|", 4, "", "expected a condition"),
        ("a", 0, "a", "expected attr=value"),
        ("=1", 0, "=1", "missing attribute name"),
        (
            "limit()",
            6,
            "",
            "limit() needs 1 or 2 non-negative integers",
        ),
        ("limit(-1)", 6, "-1", "limit() needs 1 or 2"),
        ("limit(1,2,3)", 6, "1,2,3", "limit() needs 1 or 2"),
        ("limit(5,2)", 8, "2", "end before start"),
        (
            "limit(99999999999999999999999)",
            6,
            "99999999999999999999999",
            "limit() needs",
        ),
        ("select()", 7, "", "needs attribute names"),
        ("sort(a,-)", 8, "", "needs attribute names"),
        ("select(a)&select(b)", 10, "select", "duplicate select()"),
        ("(select(a))", 1, "select", "only allowed at the top level"),
        ("a=1|select(a)", 4, "select", "cannot be combined with '|'"),
        (
            "select(a)&b=1|c=2",
            0,
            "select",
            "cannot be combined with '|'",
        ),
        ("frob(a)", 0, "frob", "unknown function frob()"),
        ("select(a&b)", 8, "&", "unexpected '&'"),
        ("select(a", 6, "(", "unbalanced '('"),
        ("a=1(b)", 3, "(", "unexpected '('"),
        ("(a=1)b=2", 5, "b", "unexpected 'b'"),
        // Found by fuzzing: the token was the first byte of the character as a char ('Ã').
        ("select(a)é", 9, "é", "unexpected 'é'"),
        ("(a=1)ݓ", 5, "ݓ", "unexpected 'ݓ'"),
    ] {
        let e = fails(q);
        assert_eq!((e.position, e.token.as_str()), (pos, token), "{q}: {e}");
        assert!(e.message.contains(msg), "{q}: {e}");
        assert!(q[e.position..].starts_with(&e.token), "{q}: {e}");
    }
    let deep = format!("{}a=1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse(&deep).is_ok());
    let deeper = format!("{}a=1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(fails(&deeper).message.contains("nested too deeply"));
    assert_eq!(
        fails("a=1)").to_string(),
        "unbalanced ')' at position 3 (near `)`)"
    );
}

fn check_error(q: &str) -> Result<(), TestCaseError> {
    if let Err(e) = parse(q) {
        prop_assert!(e.position <= q.len());
        let rest = q.get(e.position..);
        prop_assert!(
            rest.is_some_and(|r| r.starts_with(&e.token)),
            "{:?}: {}",
            q,
            e
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn never_panics_on_anything(q in any::<String>()) {
        check_error(&q)?;
    }

    #[test]
    fn never_panics_on_query_like_text(q in "([a-c]|=|!|&|\\||\\(|\\)|\\[|\\]|,|%|%2|%41|%C3|é|\\*|gt|lt|sw|null|number:|select|sort|limit|\\+|-|[0-9])*") {
        check_error(&q)?;
    }
}

/// A Harper-style condition as a client writes it, and the operator it means.
fn condition_text() -> impl Strategy<Value = (String, Op)> {
    let attr = "[a-z][a-z0-9_]{2,7}";
    let value = "([a-zA-Z0-9._~-]|%20|%26|%C3%A9){0,8}";
    let op = prop::sample::select(vec![
        ("=", Op::Eq),
        ("!=", Op::Ne),
        ("=gt=", Op::Gt),
        ("=ge=", Op::Ge),
        ("=lt=", Op::Lt),
        ("=le=", Op::Le),
        ("=sw=", Op::StartsWith),
        ("=ew=", Op::EndsWith),
        ("=ct=", Op::Contains),
        ("=not_equal=", Op::Ne),
        ("=less_than_equal=", Op::Le),
    ]);
    (attr, op, value).prop_map(|(a, (o, op), v)| (format!("{a}{o}{v}"), op))
}

/// A filter: conditions joined by `&` and `|`, in `( )` or `[ ]` groups; with the operators
/// of its conditions in order.
fn filter_text() -> impl Strategy<Value = (String, Vec<Op>)> {
    let leaf = condition_text().prop_map(|(t, op)| (t, vec![op]));
    leaf.prop_recursive(3, 12, 3, |inner| {
        (vec(inner, 2..4), any::<bool>(), any::<bool>()).prop_map(|(items, and, square)| {
            let (open, close) = if square { ('[', ']') } else { ('(', ')') };
            let sep = if and { "&" } else { "|" };
            let texts: Vec<_> = items.iter().map(|(t, _)| t.as_str()).collect();
            let text = format!("{open}{}{close}", texts.join(sep));
            (text, items.into_iter().flat_map(|(_, ops)| ops).collect())
        })
    })
}

fn ops_of(e: &Expr, out: &mut Vec<Op>) {
    match e {
        Expr::Cond(c) => out.push(c.op),
        Expr::And(items) | Expr::Or(items) => items.iter().for_each(|i| ops_of(i, out)),
    }
}

use proptest::collection::vec;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn harper_style_queries_are_accepted_and_keep_their_conditions_and_calls(
        (filter, ops) in filter_text(),
        select in vec("[a-z]{1,6}", 2..4),
        limit in (0usize..50, 0usize..50),
    ) {
        let (start, end) = (limit.0.min(limit.1), limit.0.max(limit.1));
        let q = format!("{filter}&select({})&sort(-{})&limit({start},{end})", select.join(","), select[0]);
        let parsed = parse(&q).map_err(|e| TestCaseError::fail(format!("{q}: {e}")))?;
        let mut got = Vec::new();
        ops_of(parsed.filter.as_ref().unwrap(), &mut got);
        prop_assert_eq!(got, ops);
        prop_assert_eq!(parsed.select, Some(Select::Fields(select.clone())));
        prop_assert_eq!(parsed.sort.len(), 1);
        prop_assert_eq!(parsed.limit, Some(Limit { start, end: Some(end) }));
    }
}
