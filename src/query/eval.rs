//! Evaluation of parsed queries against JSON documents: condition matching (with Harper's
//! type coercion of untyped literals and any-element semantics for arrays), the total order
//! used for sorting, and `select()` projection.
//!
//! Owns: [`Expr::matches`], [`Condition::matches`], [`value_at`], [`compare_values`],
//! [`compare_docs`], [`project`]. Matching does not allocate.

use super::parse::{Condition, Expr, Literal, Op, Select, SortKey};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// The top-level attribute `attr` of `doc` (None if absent or `doc` is not an object).
pub fn value_at<'a>(doc: &'a Value, attr: &str) -> Option<&'a Value> {
    doc.as_object()?.get(attr)
}

impl Expr {
    /// Whether `doc` satisfies the expression (`And([])` is true, `Or([])` false).
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|e| e.matches(doc)),
            Expr::Or(items) => items.iter().any(|e| e.matches(doc)),
            Expr::Cond(c) => c.matches(doc),
        }
    }
}

impl Condition {
    /// Whether `doc`'s attribute satisfies the condition. Missing and null values satisfy only
    /// `attr=null`; `attr=ne=null` matches any present non-null value. Arrays match when any
    /// element does (`ne`: when no element equals; `ct`: when some element equals).
    pub fn matches(&self, doc: &Value) -> bool {
        let v = value_at(doc, &self.attr).filter(|v| !v.is_null());
        match (self.op, &self.value) {
            (Op::Eq, Literal::Null) => return v.is_none(),
            (Op::Ne, Literal::Null) => return v.is_some(),
            (_, Literal::Null) => return false,
            _ => {}
        }
        let Some(v) = v else { return false };
        let lit = &self.value;
        match (self.op, v) {
            (Op::Ne, Value::Array(items)) => !items.iter().any(|e| scalar_op(Op::Eq, e, lit)),
            (Op::Ne, v) => !scalar_op(Op::Eq, v, lit),
            (Op::Contains, Value::Array(items)) => items.iter().any(|e| scalar_op(Op::Eq, e, lit)),
            (op, Value::Array(items)) => items.iter().any(|e| scalar_op(op, e, lit)),
            (op, v) => scalar_op(op, v, lit),
        }
    }
}

/// The text of a literal usable for string operators (`Str` and `Auto`).
fn text_of(lit: &Literal) -> Option<&str> {
    match lit {
        Literal::Str(s) | Literal::Auto(s) => Some(s),
        _ => None,
    }
}

/// Parses `Auto` text as a number the way matching and planning both do.
pub(crate) fn auto_number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Parses `Auto` text as a boolean.
pub(crate) fn auto_bool(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Orders a non-array value against a literal, after coercing `Auto` text to the value's type;
/// None when they are not comparable.
fn cmp_literal(v: &Value, lit: &Literal) -> Option<Ordering> {
    match (v, lit) {
        (Value::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        (Value::Bool(b), Literal::Auto(t)) => Some(b.cmp(&auto_bool(t)?)),
        (Value::Number(n), Literal::Number(l)) => n.as_f64()?.partial_cmp(l),
        (Value::Number(n), Literal::Auto(t)) => n.as_f64()?.partial_cmp(&auto_number(t)?),
        (Value::String(s), Literal::Str(l) | Literal::Auto(l)) => Some(s.as_str().cmp(l.as_str())),
        _ => None,
    }
}

/// Applies a (non-`Ne`) operator to one non-null value; arrays/objects never match here.
fn scalar_op(op: Op, v: &Value, lit: &Literal) -> bool {
    match op {
        Op::StartsWith | Op::EndsWith | Op::Contains => {
            let (Value::String(s), Some(t)) = (v, text_of(lit)) else {
                return false;
            };
            match op {
                Op::StartsWith => s.starts_with(t),
                Op::EndsWith => s.ends_with(t),
                _ => s.contains(t),
            }
        }
        _ => {
            let Some(ord) = cmp_literal(v, lit) else {
                return false;
            };
            match op {
                Op::Eq => ord == Ordering::Equal,
                Op::Ne => ord != Ordering::Equal,
                Op::Gt => ord == Ordering::Greater,
                Op::Ge => ord != Ordering::Less,
                Op::Lt => ord == Ordering::Less,
                _ => ord != Ordering::Greater,
            }
        }
    }
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Bool(false) => 0,
        Value::Bool(true) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
        Value::Null => 6,
    }
}

fn number(n: &serde_json::Number) -> f64 {
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f == 0.0 {
        0.0 // -0.0 == 0.0, as in the index encoding
    } else {
        f
    }
}

/// Total order over optional JSON values: false < true < numbers (numeric) < strings
/// (byte-wise) < arrays < objects (by serialized text); missing and null are last (and equal).
/// For non-null scalars this is the order of the index encoding (`storage::index_key`).
pub fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.unwrap_or(&Value::Null);
    let b = b.unwrap_or(&Value::Null);
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number(x).total_cmp(&number(y)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
            a.to_string().cmp(&b.to_string())
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Orders documents by `keys` (descending reverses present values only: missing and null
/// stay last in both directions), then by the `primary_key` attribute ascending.
pub fn compare_docs(a: &Value, b: &Value, keys: &[SortKey], primary_key: &str) -> Ordering {
    for key in keys {
        let va = value_at(a, &key.attr).filter(|v| !v.is_null());
        let vb = value_at(b, &key.attr).filter(|v| !v.is_null());
        let ord = match (va, vb) {
            (Some(_), Some(_)) if key.descending => compare_values(vb, va),
            (Some(_), Some(_)) => compare_values(va, vb),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    record_id(value_at(a, primary_key)).cmp(&record_id(value_at(b, primary_key)))
}

/// A record's id as it appears in URLs and storage keys (`storage::record_id`); a value that
/// names no record orders as the empty id. Ties (and queries without `sort()`) are ordered by
/// its bytes, which is the order index entries hold ids in, so an equality index scan can stop
/// early.
pub fn record_id(pk: Option<&Value>) -> std::borrow::Cow<'_, str> {
    pk.and_then(crate::storage::record_id::id_text)
        .unwrap_or(std::borrow::Cow::Borrowed(""))
}

/// Applies `select()`: `Fields` gives an object of the listed attributes that exist (in the
/// listed order), `Bare` gives the attribute's value or null.
pub fn project(doc: &Value, select: &Select) -> Value {
    match select {
        Select::Bare(attr) => value_at(doc, attr).cloned().unwrap_or(Value::Null),
        Select::Fields(attrs) => {
            let mut out = Map::new();
            for attr in attrs {
                if let Some(v) = value_at(doc, attr) {
                    if !out.contains_key(attr) {
                        out.insert(attr.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse;
    use proptest::prelude::*;
    use serde_json::json;

    fn filter(q: &str) -> Expr {
        parse(q).expect("parses").filter.expect("has a filter")
    }

    fn m(q: &str, doc: Value) -> bool {
        filter(q).matches(&doc)
    }

    #[test]
    fn auto_coercion() {
        for v in [json!(50), json!(50.0), json!("50"), json!([1, 50])] {
            assert!(m("stock=50", json!({ "stock": v })), "{v}");
        }
        assert!(!m("stock=50", json!({"stock": "050"})));
        assert!(m("stock=050", json!({"stock": 50})));
        assert!(!m("stock=abc", json!({"stock": 50})));
        assert!(m("f=true", json!({"f": true})));
        assert!(m("f=true", json!({"f": "true"})));
        assert!(!m("f=1", json!({"f": true})));
        assert!(!m("stock=NaN", json!({"stock": 1})));
        assert!(m("stock=number:50", json!({"stock": 50})));
        assert!(!m("stock=number:50", json!({"stock": "50"})));
        assert!(!m("stock=string:50", json!({"stock": 50})));
        assert!(m("f=boolean:false", json!({"f": false})));
        assert!(!m("f=boolean:false", json!({"f": "false"})));
    }

    #[test]
    fn null_and_missing() {
        assert!(m("a=null", json!({})));
        assert!(m("a=null", json!({"a": null})));
        assert!(!m("a=null", json!({"a": 0})));
        assert!(m("a=ne=null", json!({"a": 0})));
        assert!(!m("a=ne=null", json!({"a": null})));
        assert!(!m("a=ne=null", json!({})));
        for q in [
            "a=ne=1",
            "a=lt=1",
            "a=gt=1",
            "a=ct=1",
            "a=sw=",
            "a=gt=null",
            "a=ct=null",
        ] {
            assert!(!m(q, json!({})), "{q}");
            assert!(!m(q, json!({"a": null})), "{q}");
        }
        assert!(!m("a=1", json!([1])));
    }

    #[test]
    fn comparisons() {
        let d = json!({"p": 100, "s": "abc", "t": ["x", "yz"], "n": -3.5});
        assert!(m("p=gt=99.5&p=le=100", d.clone()));
        assert!(!m("p=gt=100", d.clone()));
        assert!(m("p=ge=100&lt=101", d.clone()));
        assert!(m("n=lt=-3", d.clone()));
        assert!(m("s=gt=ab&s=lt=abd", d.clone()));
        assert!(m("s=sw=ab&s=ew=bc&s=ct=b", d.clone()));
        assert!(m("s==ab*", d.clone()));
        assert!(!m("s=sw=number:1", d.clone()));
        assert!(m("t=ct=yz", d.clone()));
        assert!(!m("t=ct=y", d.clone()));
        assert!(m("t=sw=y", d.clone()));
        assert!(m("t=gt=xa", d.clone()));
        assert!(m("t=ne=q", d.clone()));
        assert!(!m("t=ne=x", d.clone()));
        assert!(m("s=ne=abd", d.clone()));
        assert!(m("p=ne=abc", d.clone()));
        assert!(!m("p=ne=100", d.clone()));
        assert!(m("p=1|s=abc", d.clone()));
        assert!(!m("p=1|(s=abc&p=2)", d.clone()));
        assert!(m("p=ct=1|p=100", d));
        assert!(!m("o=1", json!({"o": {"a": 1}})));
    }

    #[test]
    fn ordering() {
        let order = [
            json!(false),
            json!(true),
            json!(-1),
            json!(2.5),
            json!(3),
            json!(""),
            json!("B"),
            json!("a"),
            json!([1]), // arrays and objects order by serialized text: "[1]" < "[]"
            json!([]),
            json!({"a": 1}),
            json!({}),
            json!(null),
        ];
        for (i, a) in order.iter().enumerate() {
            for (j, b) in order.iter().enumerate() {
                assert_eq!(compare_values(Some(a), Some(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(compare_values(None, Some(&json!(null))), Ordering::Equal);
        assert_eq!(compare_values(None, Some(&json!({}))), Ordering::Greater);
        assert_eq!(
            compare_values(Some(&json!(0.0)), Some(&json!(-0.0))),
            Ordering::Equal
        );
    }

    #[test]
    fn doc_sorting() {
        let mut docs = vec![
            json!({"id": 1, "a": 2}),
            json!({"id": 2}),
            json!({"id": 3, "a": 5}),
            json!({"id": 4, "a": null}),
            json!({"id": 5, "a": 5}),
            json!({"id": 0, "a": 2}),
        ];
        let ids = |docs: &[Value]| {
            docs.iter()
                .map(|d| d["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        };
        let keys = parse("sort(-a)").unwrap().sort;
        docs.sort_by(|x, y| compare_docs(x, y, &keys, "id"));
        assert_eq!(ids(&docs), vec![3, 5, 0, 1, 2, 4]);
        let keys = parse("sort(+a)").unwrap().sort;
        docs.sort_by(|x, y| compare_docs(x, y, &keys, "id"));
        assert_eq!(ids(&docs), vec![0, 1, 3, 5, 2, 4]);
    }

    #[test]
    fn projection() {
        let d = json!({"a": 1, "b": null, "c": [2]});
        let fields = Select::Fields(vec!["c".into(), "x".into(), "b".into(), "c".into()]);
        assert_eq!(project(&d, &fields).to_string(), r#"{"c":[2],"b":null}"#);
        assert_eq!(project(&d, &Select::Bare("c".into())), json!([2]));
        assert_eq!(project(&d, &Select::Bare("x".into())), json!(null));
        assert_eq!(project(&json!(3), &fields), json!({}));
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-c]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(("[a-c]", inner), 0..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn compare_values_is_a_total_order(a in any_value(), b in any_value(), c in any_value()) {
            let ab = compare_values(Some(&a), Some(&b));
            prop_assert_eq!(ab, compare_values(Some(&b), Some(&a)).reverse());
            if ab != Ordering::Greater && compare_values(Some(&b), Some(&c)) != Ordering::Greater {
                prop_assert_ne!(compare_values(Some(&a), Some(&c)), Ordering::Greater);
            }
        }

        #[test]
        fn matching_never_panics(q in "[a-c=!&|()gtlenswc0-9.*:-]{0,24}", v in any_value()) {
            if let Ok(Some(f)) = parse(&q).map(|q| q.filter) {
                let doc = json!({"a": v.clone(), "b": v});
                let _ = f.matches(&doc);
            }
        }
    }
}
