//! Order-preserving, self-delimiting byte encoding of scalar JSON values for secondary indexes.
//!
//! Owns: the index key format (type tag + payload), its inverse, the list of index terms of
//! an attribute value (array elements are indexed one by one), and the small byte-range helpers
//! the query planner (`crate::query::plan`) builds its scans from.
//!
//! Format (one type tag byte, then the payload):
//! - null `0x01` (indexed, but the planner never scans for null)
//! - false `0x02`, true `0x03`
//! - number `0x04` + 8 bytes: the f64 (`-0.0` normalized to `0.0`) as big-endian bits with the
//!   sign bit flipped for positives and all bits flipped for negatives
//! - string `0x05` + UTF-8 bytes with `0x00` escaped as `0x00 0xFF`, terminated by `0x00 0x00`
//!
//! The encoding is prefix-free (the storage layer appends the record id after it) and, for all
//! non-null scalars, `memcmp` order equals [`crate::query::compare_values`] order. Null is the one
//! exception: it sorts first here but last in `compare_values`.

use serde_json::{Number, Value};

/// Type tag of `null`.
pub const TAG_NULL: u8 = 0x01;
/// Type tag of `false`.
pub const TAG_FALSE: u8 = 0x02;
/// Type tag of `true`.
pub const TAG_TRUE: u8 = 0x03;
/// Type tag of numbers.
pub const TAG_NUMBER: u8 = 0x04;
/// Type tag of strings.
pub const TAG_STRING: u8 = 0x05;

const SIGN: u64 = 1 << 63;

/// Appends the index encoding of `v` to `out`. Returns false (and writes nothing) for values
/// that are not indexed: objects and arrays (the caller indexes array elements, see
/// [`index_terms`]). Null is indexed.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) -> bool {
    match v {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Number(n) => match n.as_f64() {
            Some(f) => encode_f64(f, out),
            None => return false,
        },
        Value::String(s) => encode_str(s, out),
        Value::Array(_) | Value::Object(_) => return false,
    }
    true
}

/// Appends the encoding of a number (tag included).
pub fn encode_f64(f: f64, out: &mut Vec<u8>) {
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    let ordered = if bits & SIGN == 0 { bits ^ SIGN } else { !bits };
    out.push(TAG_NUMBER);
    out.extend_from_slice(&ordered.to_be_bytes());
}

/// Appends the encoding of a string (tag and terminator included).
pub fn encode_str(s: &str, out: &mut Vec<u8>) {
    encode_str_prefix(s, out);
    out.extend_from_slice(&[0x00, 0x00]);
}

/// Appends the tag and escaped bytes of `prefix` without the terminator: every string that
/// starts with `prefix` has an encoding that starts with these bytes, and no other does.
pub fn encode_str_prefix(prefix: &str, out: &mut Vec<u8>) {
    out.push(TAG_STRING);
    for &b in prefix.as_bytes() {
        out.push(b);
        if b == 0x00 {
            out.push(0xFF);
        }
    }
}

/// The values of an attribute that go into its index: each scalar element of an array, a
/// scalar itself, nothing for objects (nested arrays and objects inside arrays are skipped).
pub fn index_terms(v: &Value) -> impl Iterator<Item = &Value> + '_ {
    let items: &[Value] = match v {
        Value::Array(items) => items,
        Value::Object(_) => &[],
        _ => std::slice::from_ref(v),
    };
    items
        .iter()
        .filter(|e| !matches!(e, Value::Array(_) | Value::Object(_)))
}

/// Decodes one encoded value from the start of `bytes`; returns it and the number of bytes it
/// used, or None if `bytes` does not start with a valid encoding. Integral numbers within
/// ±2^53 decode as JSON integers, other numbers as floats.
pub fn decode_value(bytes: &[u8]) -> Option<(Value, usize)> {
    let (&tag, rest) = bytes.split_first()?;
    match tag {
        TAG_NULL => Some((Value::Null, 1)),
        TAG_FALSE => Some((Value::Bool(false), 1)),
        TAG_TRUE => Some((Value::Bool(true), 1)),
        TAG_NUMBER => {
            let raw: [u8; 8] = rest.get(..8)?.try_into().ok()?;
            let ordered = u64::from_be_bytes(raw);
            let bits = if ordered & SIGN != 0 {
                ordered ^ SIGN
            } else {
                !ordered
            };
            let f = f64::from_bits(bits);
            const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
            let n = if f.fract() == 0.0 && f.abs() <= EXACT {
                Number::from(f as i64)
            } else {
                Number::from_f64(f)?
            };
            Some((Value::Number(n), 9))
        }
        TAG_STRING => {
            let mut s = Vec::new();
            let mut i = 0;
            loop {
                let b = *rest.get(i)?;
                if b != 0x00 {
                    s.push(b);
                    i += 1;
                    continue;
                }
                match *rest.get(i + 1)? {
                    0x00 => break,
                    0xFF => s.push(0x00),
                    _ => return None,
                }
                i += 2;
            }
            let s = String::from_utf8(s).ok()?;
            Some((Value::String(s), 1 + i + 2))
        }
        _ => None,
    }
}

/// The smallest byte string greater than every string that starts with `prefix`, or None if
/// there is none (prefix empty or all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last != 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::compare_values;
    use proptest::prelude::*;
    use serde_json::json;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode_value(v, &mut out));
        out
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![Just(Value::Null), non_null_scalar()]
    }

    fn non_null_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            prop::sample::select(vec![0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e300, -1e-300])
                .prop_map(Value::from),
            ".{0,6}".prop_map(Value::String),
            "[a\\x00\\xff]{0,4}".prop_map(Value::String),
        ]
    }

    #[test]
    fn examples() {
        assert_eq!(enc(&json!(null)), vec![0x01]);
        assert_eq!(enc(&json!(false)), vec![0x02]);
        assert_eq!(enc(&json!(true)), vec![0x03]);
        assert_eq!(enc(&json!("a\u{0}b")), vec![5, b'a', 0, 0xFF, b'b', 0, 0]);
        assert_eq!(enc(&json!(0.0)), enc(&json!(-0.0)));
        assert_eq!(enc(&json!(50)), enc(&json!(50.0)));
        let mut out = vec![9];
        assert!(!encode_value(&json!([1]), &mut out));
        assert!(!encode_value(&json!({"a": 1}), &mut out));
        assert_eq!(out, vec![9]);
        let ordered = [
            json!(false),
            json!(true),
            json!(-1e300),
            json!(-1),
            json!(-0.5),
            json!(0),
            json!(0.5),
            json!(1),
            json!(1e300),
            json!(""),
            json!("\u{0}"),
            json!("\u{1}"),
            json!("a"),
            json!("a\u{0}"),
            json!("ab"),
            json!("é"),
        ];
        for w in ordered.windows(2) {
            assert!(enc(&w[0]) < enc(&w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn terms() {
        let v = json!([1, "a", null, [2], {"b": 3}]);
        let t: Vec<&Value> = index_terms(&v).collect();
        assert_eq!(t, vec![&json!(1), &json!("a"), &json!(null)]);
        assert_eq!(index_terms(&json!({"a": 1})).count(), 0);
        assert_eq!(
            index_terms(&json!("x")).collect::<Vec<_>>(),
            vec![&json!("x")]
        );
    }

    #[test]
    fn decode_rejects_garbage() {
        for bad in [
            &[][..],
            &[0x00],
            &[0x06],
            &[0x04, 1, 2],
            &[0x05, b'a'],
            &[0x05, b'a', 0x00],
            &[0x05, 0x00, 0x01],
            &[0x05, 0xC3, 0x00, 0x00],
            &[0x04, 0xFF, 0xF8, 0, 0, 0, 0, 0, 0], // a NaN
        ] {
            assert_eq!(decode_value(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn successor() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    proptest! {
        #[test]
        fn order_matches_compare_values(a in non_null_scalar(), b in non_null_scalar(), ida: Vec<u8>, idb: Vec<u8>) {
            let (ea, eb) = (enc(&a), enc(&b));
            prop_assert_eq!(ea.cmp(&eb), compare_values(Some(&a), Some(&b)), "{} vs {}", a, b);
            // Prefix-free: an appended record id never changes the order of distinct values.
            if ea != eb {
                let (mut ka, mut kb) = (ea.clone(), eb.clone());
                ka.extend_from_slice(&ida);
                kb.extend_from_slice(&idb);
                prop_assert_eq!(ka.cmp(&kb), ea.cmp(&eb));
                prop_assert!(!eb.starts_with(&ea) && !ea.starts_with(&eb));
            }
        }

        #[test]
        fn decode_inverts_encode(v in scalar(), suffix: Vec<u8>) {
            let mut bytes = enc(&v);
            let len = bytes.len();
            bytes.extend_from_slice(&suffix);
            let (back, used) = decode_value(&bytes).expect("decodes");
            prop_assert_eq!(used, len);
            prop_assert_eq!(compare_values(Some(&back), Some(&v)), std::cmp::Ordering::Equal);
            prop_assert_eq!(enc(&back), enc(&v));
        }

        #[test]
        fn decode_never_panics(bytes: Vec<u8>) {
            if let Some((v, used)) = decode_value(&bytes) {
                prop_assert!(used <= bytes.len());
                let again = enc(&v);
                prop_assert_eq!(decode_value(&again), Some((v, again.len())));
            }
        }
    }
}
