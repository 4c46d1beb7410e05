//! Index access planning: picks one condition of a filter that a secondary index can serve and
//! turns it into byte ranges over index keys (`storage::index_key` encoding + record id).
//!
//! Owns: [`plan_index`] and [`IndexScan`]. The ranges are a candidate generator: they cover the
//! index key of every array element / scalar that could satisfy the chosen condition, may
//! over-cover, and the caller re-checks the full filter on each candidate document.
//!
//! Only one condition is used, never an intersection of two: with any-element semantics a doc
//! `{"x": [5, 200]}` matches `x=gt=100&x=lt=10` through two different elements, so a single
//! combined range would miss it.

use super::eval::{auto_bool, auto_number};
use super::parse::{Condition, Expr, Literal, Op};
use crate::storage::index_key::{self, TAG_FALSE, TAG_NUMBER, TAG_STRING, TAG_TRUE};
use std::ops::Bound;

/// A range of full index keys: `(Included(lo), Excluded(hi))`.
pub type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// A scan of the index on `attr`: the union of `ranges` over full index keys (encoded value
/// followed by the record id). Ranges are ascending and disjoint, lower bounds are always
/// `Included` and upper bounds `Excluded`. Empty `ranges` means nothing can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexScan {
    pub attr: String,
    pub ranges: Vec<KeyRange>,
    /// Each range holds one encoded value (an `Eq` condition), so its keys, and the ids they
    /// end with, come in id order.
    pub exact: bool,
}

impl IndexScan {
    /// Whether an index key lies in one of the ranges.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.ranges.iter().any(|(lo, hi)| {
            let above = match lo {
                Bound::Included(l) => key >= l.as_slice(),
                Bound::Excluded(l) => key > l.as_slice(),
                Bound::Unbounded => true,
            };
            let below = match hi {
                Bound::Included(h) => key <= h.as_slice(),
                Bound::Excluded(h) => key < h.as_slice(),
                Bound::Unbounded => true,
            };
            above && below
        })
    }
}

/// Plans an index scan for `filter`: the filter itself if it is a condition, or one child
/// condition of a top-level `And` (nested `And`s included), on an attribute for which
/// `is_indexed` is true, with op `Eq` (non-null literal), `StartsWith`, `Gt`, `Ge`, `Lt` or
/// `Le`. Preference: `Eq`, then `StartsWith`, then ranges; the first one wins a tie. Returns
/// None when no condition qualifies (`Or`, `Ne`, `EndsWith`, `Contains`, null literals).
pub fn plan_index(filter: &Expr, is_indexed: &dyn Fn(&str) -> bool) -> Option<IndexScan> {
    let mut best: Option<(u8, &Condition)> = None;
    visit(filter, &mut |c| {
        if let Some(rank) = rank(c) {
            if best.is_none_or(|(r, _)| rank > r) && is_indexed(&c.attr) {
                best = Some((rank, c));
            }
        }
    });
    let (_, cond) = best?;
    Some(IndexScan {
        attr: cond.attr.clone(),
        ranges: ranges(cond),
        exact: cond.op == Op::Eq,
    })
}

fn visit<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Condition)) {
    match e {
        Expr::Cond(c) => f(c),
        Expr::And(items) => items.iter().for_each(|i| visit(i, f)),
        Expr::Or(_) => {}
    }
}

/// How selective an index scan for `c` is likely to be; None if the index cannot serve it.
fn rank(c: &Condition) -> Option<u8> {
    match (c.op, &c.value) {
        (_, Literal::Null) => None,
        (Op::Eq, _) => Some(3),
        (Op::StartsWith, Literal::Str(_) | Literal::Auto(_)) => Some(2),
        (Op::Gt | Op::Ge | Op::Lt | Op::Le, _) => Some(1),
        _ => None,
    }
}

/// The key ranges covering every value that could satisfy `c` (see [`rank`]).
fn ranges(c: &Condition) -> Vec<KeyRange> {
    let mut out = Vec::new();
    let mut push = |lo: Vec<u8>, hi: Vec<u8>| {
        if lo < hi {
            out.push((Bound::Included(lo), Bound::Excluded(hi)));
        }
    };
    if c.op == Op::StartsWith {
        if let Literal::Str(t) | Literal::Auto(t) = &c.value {
            let mut lo = Vec::new();
            index_key::encode_str_prefix(t, &mut lo);
            if let Some(hi) = index_key::prefix_successor(&lo) {
                push(lo, hi);
            }
        }
        return out;
    }
    // Each type the literal can be compared with, in index (tag) order.
    let (b, n, s) = match &c.value {
        Literal::Null => return out,
        Literal::Bool(b) => (Some(*b), None, None),
        Literal::Number(n) => (None, Some(*n), None),
        Literal::Str(s) => (None, None, Some(s.as_str())),
        Literal::Auto(t) => (auto_bool(t), auto_number(t), Some(t.as_str())),
    };
    let targets = [
        b.map(|b| {
            (
                vec![if b { TAG_TRUE } else { TAG_FALSE }],
                TAG_FALSE,
                TAG_NUMBER,
            )
        }),
        n.map(|n| {
            let mut e = Vec::with_capacity(9);
            index_key::encode_f64(n, &mut e);
            (e, TAG_NUMBER, TAG_STRING)
        }),
        s.map(|s| {
            let mut e = Vec::with_capacity(s.len() + 3);
            index_key::encode_str(s, &mut e);
            (e, TAG_STRING, TAG_STRING + 1)
        }),
    ];
    for (enc, type_lo, type_hi) in targets.into_iter().flatten() {
        let Some(after) = index_key::prefix_successor(&enc) else {
            continue;
        };
        let (type_lo, type_hi) = (vec![type_lo], vec![type_hi]);
        match c.op {
            Op::Eq => push(enc, after),
            Op::Gt => push(after, type_hi),
            Op::Ge => push(enc, type_hi),
            Op::Lt => push(type_lo, enc),
            Op::Le => push(type_lo, after),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{parse, value_at};
    use crate::storage::index_key::{encode_value, index_terms};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn plan(q: &str, indexed: &[&str]) -> Option<IndexScan> {
        let f = parse(q).unwrap().filter.unwrap();
        plan_index(&f, &|a| indexed.contains(&a))
    }

    fn key(v: &Value, id: &[u8]) -> Vec<u8> {
        let mut k = Vec::new();
        assert!(encode_value(v, &mut k));
        k.extend_from_slice(id);
        k
    }

    #[test]
    fn choice() {
        assert_eq!(plan("a=1", &[]), None);
        assert_eq!(plan("a=1|a=2", &["a"]), None);
        assert_eq!(plan("a=null", &["a"]), None);
        assert_eq!(plan("a=ne=1&a=ew=x&a=ct=1", &["a"]), None);
        assert_eq!(plan("a=sw=number:1", &["a"]), None);
        assert_eq!(plan("a=gt=1&b=2", &["a", "b"]).unwrap().attr, "b");
        assert_eq!(
            plan("a=gt=1&b=sw=x&c=lt=3", &["a", "b", "c"]).unwrap().attr,
            "b"
        );
        assert_eq!(plan("a=gt=1&b=2", &["a"]).unwrap().attr, "a");
        assert_eq!(
            plan("(a=gt=1&(c=1|d=2))&b=2", &["a", "b"]).unwrap().attr,
            "b"
        );
        assert_eq!(plan("a=gt=boolean:true", &["a"]).unwrap().ranges, vec![]);
    }

    #[test]
    fn auto_literal_covers_each_type() {
        let s = plan("stock=50", &["stock"]).unwrap();
        assert_eq!(s.ranges.len(), 2);
        for (v, hit) in [
            (json!(50), true),
            (json!(50.0), true),
            (json!("50"), true),
            (json!(49.999), false),
            (json!("500"), false),
            (json!("5"), false),
        ] {
            for id in [&[][..], &[0], &[0xFF, 0xFF]] {
                assert_eq!(s.contains(&key(&v, id)), hit, "{v} {id:?}");
            }
        }
        let gt = plan("p=gt=100", &["p"]).unwrap();
        for (v, hit) in [
            (json!(100), false),
            (json!(100.5), true),
            (json!(1e300), true),
            (json!("100"), false),
            (json!("100a"), true),
            (json!("2"), true),
            (json!(true), false),
            (json!(null), false),
        ] {
            assert_eq!(gt.contains(&key(&v, &[7])), hit, "{v}");
        }
        let sw = plan("n=sw=ab", &["n"]).unwrap();
        for (v, hit) in [
            (json!("ab"), true),
            (json!("abc"), true),
            (json!("b"), false),
        ] {
            assert_eq!(sw.contains(&key(&v, &[0])), hit, "{v}");
        }
        let b = plan("f=le=false", &["f"]).unwrap();
        assert!(b.contains(&key(&json!(false), &[1])));
        assert!(!b.contains(&key(&json!(true), &[1])));
        assert!(b.contains(&key(&json!("a"), &[1]))); // "a" <= "false" as strings
    }

    /// Index terms (scalars) used by the brute-force checks.
    fn terms() -> Vec<Value> {
        let mut v = vec![json!(null), json!(false), json!(true)];
        for n in [
            -3.0, -2.5, -1.0, -0.0, 0.0, 0.5, 5.0, 49.0, 50.0, 51.0, 100.0, 1e20,
        ] {
            v.push(json!(n));
        }
        v.extend([json!(-1), json!(50), json!(i64::MAX), json!(u64::MAX)]);
        for s in [
            "", "a", "ab", "abc", "b", "5", "50", "500", "true", "false", "-1", "\0",
        ] {
            v.push(json!(s));
        }
        v.extend([json!("a\0b"), json!("a\0"), json!("é")]);
        v
    }

    /// Literal texts (percent-encoded, possibly typed) used by the brute-force checks.
    const LITS: &[&str] = &[
        "",
        "a",
        "ab",
        "b",
        "5",
        "50",
        "50.0",
        "-1",
        "0",
        "-0",
        "1e20",
        "true",
        "false",
        "null",
        "number:50",
        "number:-2.5",
        "string:50",
        "string:a",
        "boolean:true",
        "boolean:false",
        "a%00",
        "%00",
        "abc",
        "%C3%A9",
        "9223372036854775807",
        "-2.5",
    ];

    const OPS: &[&str] = &[
        "=", "=ne=", "=gt=", "=ge=", "=lt=", "=le=", "=sw=", "=ew=", "=ct=",
    ];

    fn covered(scan: &IndexScan, v: &Value, id: &[u8]) -> bool {
        index_terms(v).any(|t| scan.contains(&key(t, id)))
    }

    /// Exhaustive: every (op, literal) against every term, alone and inside arrays.
    #[test]
    fn scan_covers_every_match_exhaustively() {
        let terms = terms();
        let mut planned = 0;
        let mut checked = 0;
        for op in OPS {
            for lit in LITS {
                let q = format!("x{op}{lit}");
                let Some(scan) = plan(&q, &["x"]) else {
                    continue;
                };
                planned += 1;
                let cond = parse(&q).unwrap().filter.unwrap();
                for a in &terms {
                    let mut values = vec![a.clone(), json!([a])];
                    values.extend(terms.iter().map(|b| json!([b, a])));
                    for v in values {
                        if cond.matches(&json!({ "x": v })) {
                            checked += 1;
                            for id in [&[][..], &[0], &[0xFF, 0xFF, 0xFF]] {
                                assert!(
                                    covered(&scan, &v, id),
                                    "{q} matches {v} but {scan:?} misses it"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(
            planned > 100 && checked > 10_000,
            "{planned} plans, {checked} matches"
        );
    }

    fn attr_value() -> impl Strategy<Value = Option<Value>> {
        let term = prop::sample::select(terms());
        prop_oneof![
            3 => term.clone().prop_map(Some),
            2 => prop::collection::vec(term, 0..4).prop_map(|v| Some(Value::Array(v))),
            1 => Just(Some(json!({"a": 1}))),
            1 => Just(None),
        ]
    }

    fn cond_text() -> impl Strategy<Value = String> {
        let attr = prop::sample::select(vec!["x", "y"]);
        (attr, prop::sample::select(OPS), prop::sample::select(LITS))
            .prop_map(|(a, o, l)| format!("{a}{o}{l}"))
    }

    proptest! {
        /// Brute force: every matching doc has an index term whose key lies in the scan.
        #[test]
        fn scan_never_misses_a_match(
            x in attr_value(),
            y in attr_value(),
            conds in prop::collection::vec(cond_text(), 1..4),
            index_y: bool,
            id in prop::collection::vec(any::<u8>(), 0..3),
        ) {
            let mut doc = serde_json::Map::new();
            if let Some(x) = x { doc.insert("x".into(), x); }
            if let Some(y) = y { doc.insert("y".into(), y); }
            let doc = Value::Object(doc);
            let q = conds.join("&");
            let filter = parse(&q).unwrap().filter.unwrap();
            let Some(scan) = plan_index(&filter, &|a| a == "x" || index_y) else {
                return Ok(());
            };
            if !filter.matches(&doc) {
                return Ok(());
            }
            let hit = value_at(&doc, &scan.attr).is_some_and(|v| covered(&scan, v, &id));
            prop_assert!(hit, "{} matches {} but scan {:?} misses it", doc, q, scan);
            // Ranges are ascending and disjoint.
            for w in scan.ranges.windows(2) {
                if let (Bound::Excluded(hi), Bound::Included(lo)) = (&w[0].1, &w[1].0) {
                    prop_assert!(hi <= lo);
                }
            }
        }
    }
}
