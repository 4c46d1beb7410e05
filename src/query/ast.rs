//! The query AST ([`Query`], [`Expr`], [`Condition`], [`Literal`], ...), [`QueryError`], and
//! their canonical text form: `Display` prints a raw (percent-encoded) query string that
//! [`parse`](super::parse::parse) reads back to the same AST (used for logging, cache keys and
//! the round-trip property test).
//!
//! Conditions print as `attr=value` or `attr=op=value`; typed literals keep their prefix
//! (`number:`, `string:`, `boolean:`); everything but `A-Z a-z 0-9 - _ . ~` is
//! percent-encoded, and an attribute spelled like an operator keyword (`lt`) gets its first
//! byte encoded so it is not read as a same-attribute chain term.

use super::parse::op_keyword;
#[cfg(test)]
use super::parse::parse;
use std::fmt::{self, Write};

/// A parsed query string.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub filter: Option<Expr>,
    pub select: Option<Select>,
    pub sort: Vec<SortKey>,
    pub limit: Option<Limit>,
}

/// What `select()` asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// `select(a,b)` or `select(a,)`: objects holding these attributes.
    Fields(Vec<String>),
    /// `select(a)`: the bare value of one attribute.
    Bare(String),
}

/// A boolean filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cond(Condition),
}

/// `attr <op> value` on a top-level attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub attr: String,
    pub op: Op,
    pub value: Literal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    StartsWith,
    EndsWith,
    Contains,
}

/// A condition's value. `Auto` is untyped text, coerced to the type of the attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    Auto(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub attr: String,
    pub descending: bool,
}

/// Rows `[start, end)`; `end: None` means no upper limit (`limit(start,)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub start: usize,
    pub end: Option<usize>,
}

/// A syntax error: byte offset in the raw query string, the offending token, and what was
/// expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub position: usize,
    pub token: String,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)?;
        if !self.token.is_empty() {
            write!(f, " (near `{}`)", self.token)?;
        }
        Ok(())
    }
}

impl std::error::Error for QueryError {}

/// Writes `s` percent-encoded; with `force_first`, the first byte is encoded too.
fn encode(f: &mut fmt::Formatter<'_>, s: &str, force_first: bool) -> fmt::Result {
    for (i, b) in s.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if plain && !(force_first && i == 0) {
            f.write_char(b as char)?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Eq => "eq",
        Op::Ne => "ne",
        Op::Gt => "gt",
        Op::Ge => "ge",
        Op::Lt => "lt",
        Op::Le => "le",
        Op::StartsWith => "sw",
        Op::EndsWith => "ew",
        Op::Contains => "ct",
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "boolean:{b}"),
            Literal::Number(n) => write!(f, "number:{n}"),
            Literal::Str(s) => {
                f.write_str("string:")?;
                encode(f, s, false)
            }
            Literal::Auto(s) => encode(f, s, false),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        encode(f, &self.attr, op_keyword(&self.attr, false).is_some())?;
        match self.op {
            Op::Eq => f.write_char('=')?,
            op => write!(f, "={}=", op_name(op))?,
        }
        write!(f, "{}", self.value)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (items, sep) = match self {
            Expr::Cond(c) => return write!(f, "{c}"),
            Expr::And(items) => (items, '&'),
            Expr::Or(items) => (items, '|'),
        };
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                f.write_char(sep)?;
            }
            // `&` binds tighter than `|`: only an Or inside an And needs parentheses; nested
            // groups of the same kind are kept as written.
            let paren = matches!((self, e), (Expr::And(_), Expr::Or(_) | Expr::And(_)))
                || matches!((self, e), (Expr::Or(_), Expr::Or(_)));
            if paren {
                write!(f, "({e})")?;
            } else {
                write!(f, "{e}")?;
            }
        }
        Ok(())
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, names: &[String]) -> fmt::Result {
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        encode(f, n, false)?;
    }
    Ok(())
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let calls = self.select.is_some() || !self.sort.is_empty() || self.limit.is_some();
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let was_first = std::mem::replace(&mut first, false);
            if was_first {
                Ok(())
            } else {
                f.write_char('&')
            }
        };
        if let Some(filter) = &self.filter {
            sep(f)?;
            match filter {
                Expr::Or(_) if calls => write!(f, "({filter})")?,
                _ => write!(f, "{filter}")?,
            }
        }
        if let Some(select) = &self.select {
            sep(f)?;
            f.write_str("select(")?;
            match select {
                Select::Bare(a) => encode(f, a, false)?,
                Select::Fields(names) => {
                    write_list(f, names)?;
                    if names.len() == 1 {
                        f.write_char(',')?;
                    }
                }
            }
            f.write_char(')')?;
        }
        if !self.sort.is_empty() {
            sep(f)?;
            f.write_str("sort(")?;
            for (i, k) in self.sort.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                f.write_char(if k.descending { '-' } else { '+' })?;
                encode(f, &k.attr, false)?;
            }
            f.write_char(')')?;
        }
        if let Some(limit) = &self.limit {
            sep(f)?;
            match limit.end {
                Some(end) if limit.start == 0 => write!(f, "limit({end})")?,
                Some(end) => write!(f, "limit({},{end})", limit.start)?,
                None => write!(f, "limit({},)", limit.start)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Limit, SortKey};
    use proptest::prelude::*;

    #[test]
    fn canonical_forms() {
        for (q, canon) in [
            ("", ""),
            ("a=1", "a=1"),
            ("price=gt=100&lt=200", "price=gt=100&price=lt=200"),
            ("a!=x%20y+", "a=ne=x%20y%2B"),
            ("lt=1&lt=2", "%6Ct=1&%6Ct=lt=2"),
            (
                "(a=1|b=2)&sort(-a)&limit(5,10)",
                "(a=1|b=2)&sort(-a)&limit(5,10)",
            ),
            ("[a=1&b=2]|c=string:3&select(a,)", ""),
            ("a=1&select(a)&limit(0,3)", "a=1&select(a)&limit(3)"),
            (
                "n=number:1e3&b=boolean:false&z=null",
                "n=number:1000&b=boolean:false&z=null",
            ),
        ] {
            match parse(q) {
                Ok(parsed) => assert_eq!(parsed.to_string(), canon, "{q}"),
                Err(_) => assert_eq!(canon, "", "{q} should parse"),
            }
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{1,5}",
            prop::sample::select(vec!["lt", "eq", "ct", "a b", "x=y", "1", "-2", "+a", "50"])
                .prop_map(String::from),
        ]
    }

    fn literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            Just(Literal::Null),
            any::<bool>().prop_map(Literal::Bool),
            any::<f64>()
                .prop_filter("finite", |n| n.is_finite())
                .prop_map(Literal::Number),
            ".{0,5}".prop_map(Literal::Str),
            ".{0,5}"
                .prop_filter("not typed", |s| {
                    s != "null"
                        && !["string:", "number:", "boolean:"]
                            .iter()
                            .any(|p| s.starts_with(p))
                })
                .prop_map(Literal::Auto),
        ]
    }

    fn cond() -> impl Strategy<Value = Expr> {
        let op = prop::sample::select(vec![
            Op::Eq,
            Op::Ne,
            Op::Gt,
            Op::Ge,
            Op::Lt,
            Op::Le,
            Op::StartsWith,
            Op::EndsWith,
            Op::Contains,
        ]);
        (text(), op, literal())
            .prop_map(|(attr, op, value)| Expr::Cond(Condition { attr, op, value }))
    }

    /// Normalized trees as the parser builds them: no And directly in And, no Or in Or.
    fn expr() -> impl Strategy<Value = Expr> {
        cond().prop_recursive(3, 12, 3, |inner| {
            let items = prop::collection::vec(inner, 2..4);
            (items, any::<bool>()).prop_map(|(items, and)| {
                let mut flat = Vec::new();
                for e in items {
                    match e {
                        Expr::And(v) if and => flat.extend(v),
                        Expr::Or(v) if !and => flat.extend(v),
                        e => flat.push(e),
                    }
                }
                if and {
                    Expr::And(flat)
                } else {
                    Expr::Or(flat)
                }
            })
        })
    }

    fn query() -> impl Strategy<Value = Query> {
        let select = prop_oneof![
            text().prop_map(Select::Bare),
            prop::collection::vec(text(), 1..3).prop_map(Select::Fields),
        ];
        let sort = prop::collection::vec((text(), any::<bool>()), 0..3).prop_map(|v| {
            v.into_iter()
                .map(|(attr, descending)| SortKey { attr, descending })
                .collect()
        });
        let limit = (0usize..100, prop::option::of(0usize..100)).prop_map(|(a, b)| match b {
            Some(b) => Limit {
                start: a.min(b),
                end: Some(a.max(b)),
            },
            None => Limit {
                start: a,
                end: None,
            },
        });
        (
            prop::option::of(expr()),
            prop::option::of(select),
            sort,
            prop::option::of(limit),
        )
            .prop_map(|(filter, select, sort, limit)| Query {
                filter,
                select,
                sort,
                limit,
            })
    }

    proptest! {
        #[test]
        fn display_round_trips(q in query()) {
            let text = q.to_string();
            prop_assert_eq!(parse(&text), Ok(q), "{}", text);
        }
    }
}
