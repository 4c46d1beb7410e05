//! The brute-force oracle of `query_matches_oracle.rs`: the query model the test generates and
//! its evaluation, written from the query language's spec, independently of the server's code.
#![allow(dead_code)]

use serde_json::{Map, Value};
use std::cmp::Ordering;

// ---------------------------------------------------------------------------------------------
// The query model the tests generate and the oracle evaluates.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Sw,
    Ew,
    Ct,
}

#[derive(Clone, Debug)]
pub enum Lit {
    Null,
    Auto(String),
    Str(String),
    Num(f64, String),
    Bool(bool),
}

#[derive(Clone, Debug)]
pub enum Filter {
    Cond(String, Op, Lit),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

#[derive(Default, Debug)]
pub struct Query {
    pub filter: Option<Filter>,
    /// (attribute, descending)
    pub sort: Vec<(String, bool)>,
    pub limit: Option<(usize, usize)>,
    pub select: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// The oracle.

/// Compares a present, non-null value with a non-null literal; `None` when they do not compare
/// (different types, or an auto literal that cannot be coerced to the value's type).
pub fn compare_lit(v: &Value, lit: &Lit) -> Option<Ordering> {
    match (lit, v) {
        (Lit::Auto(t), Value::Number(n)) => {
            let x: f64 = t.parse().ok().filter(|x: &f64| x.is_finite())?;
            n.as_f64()?.partial_cmp(&x)
        }
        (Lit::Auto(t), Value::String(s)) => Some(s.as_bytes().cmp(t.as_bytes())),
        (Lit::Auto(t), Value::Bool(b)) => match t.as_str() {
            "true" => Some(b.cmp(&true)),
            "false" => Some(b.cmp(&false)),
            _ => None,
        },
        (Lit::Str(t), Value::String(s)) => Some(s.as_bytes().cmp(t.as_bytes())),
        (Lit::Num(x, _), Value::Number(n)) => n.as_f64()?.partial_cmp(x),
        (Lit::Bool(x), Value::Bool(b)) => Some(b.cmp(x)),
        _ => None,
    }
}

/// The literal's text for the string operators (sw/ew/ct), which apply to strings only.
pub fn string_text(lit: &Lit) -> Option<&str> {
    match lit {
        Lit::Auto(t) | Lit::Str(t) => Some(t),
        _ => None,
    }
}

pub fn cond_matches(doc: &Value, attr: &str, op: Op, lit: &Lit) -> bool {
    let v = doc.get(attr).filter(|v| !v.is_null());
    if let Lit::Null = lit {
        return match op {
            Op::Eq => v.is_none(),
            Op::Ne => v.is_some(),
            _ => unreachable!("only =null and =ne=null are generated"),
        };
    }
    let Some(v) = v else { return false };
    let c = compare_lit(v, lit);
    match op {
        Op::Eq => c == Some(Ordering::Equal),
        Op::Ne => c != Some(Ordering::Equal),
        Op::Gt => c == Some(Ordering::Greater),
        Op::Ge => matches!(c, Some(Ordering::Greater | Ordering::Equal)),
        Op::Lt => c == Some(Ordering::Less),
        Op::Le => matches!(c, Some(Ordering::Less | Ordering::Equal)),
        Op::Sw | Op::Ew | Op::Ct => {
            let (Value::String(s), Some(t)) = (v, string_text(lit)) else {
                return false;
            };
            match op {
                Op::Sw => s.starts_with(t),
                Op::Ew => s.ends_with(t),
                _ => s.contains(t),
            }
        }
    }
}

pub fn filter_matches(doc: &Value, f: &Filter) -> bool {
    match f {
        Filter::Cond(a, op, lit) => cond_matches(doc, a, *op, lit),
        Filter::And(xs) => xs.iter().all(|x| filter_matches(doc, x)),
        Filter::Or(xs) => xs.iter().any(|x| filter_matches(doc, x)),
    }
}

/// Type rank for the value order: false < true < numbers < strings < arrays < objects.
pub fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 9,
        Value::Bool(_) => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
    }
}

/// Order of two present, non-null values.
pub fn value_order(x: &Value, y: &Value) -> Ordering {
    rank(x).cmp(&rank(y)).then_with(|| match (x, y) {
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .unwrap()
            .partial_cmp(&b.as_f64().unwrap())
            .unwrap(),
        (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
        _ => Ordering::Equal,
    })
}

/// One sort key: missing/null last in both directions; descending reverses present values only.
pub fn key_order(x: Option<&Value>, y: Option<&Value>, desc: bool) -> Ordering {
    let x = x.filter(|v| !v.is_null());
    let y = y.filter(|v| !v.is_null());
    match (x, y) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => {
            let o = value_order(a, b);
            if desc {
                o.reverse()
            } else {
                o
            }
        }
    }
}

pub fn oracle(records: &[Value], q: &Query) -> Vec<Value> {
    let mut rows: Vec<&Value> = records
        .iter()
        .filter(|d| q.filter.as_ref().is_none_or(|f| filter_matches(d, f)))
        .collect();
    rows.sort_by(|x, y| {
        q.sort
            .iter()
            .map(|(attr, desc)| key_order(x.get(attr), y.get(attr), *desc))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| key_order(x.get("id"), y.get("id"), false))
    });
    if let Some((start, end)) = q.limit {
        let end = end.min(rows.len());
        rows = if start < end {
            rows[start..end].to_vec()
        } else {
            Vec::new()
        };
    }
    rows.into_iter()
        .map(|d| match &q.select {
            None => d.clone(),
            Some(names) if names.len() == 1 => d.get(&names[0]).cloned().unwrap_or(Value::Null),
            Some(names) => {
                let mut m = Map::new();
                for n in names {
                    if let Some(v) = d.get(n) {
                        m.insert(n.clone(), v.clone());
                    }
                }
                Value::Object(m)
            }
        })
        .collect()
}
