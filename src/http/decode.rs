//! Request bodies in CBOR (ciborium) or MessagePack (rmp-serde) read into the JSON object the
//! JSON path produces. Values JSON cannot carry are refused by name (NaN and infinities, byte
//! strings, MessagePack extension types, map keys that are not text, integers beyond 64
//! bits); CBOR tags are dropped and their content kept. Nesting and the decoded size are
//! bounded like a JSON body's.

use super::negotiate::Format;
use serde::de::{self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Nesting deeper than this is refused (serde_json's own limit for JSON bodies).
const MAX_DEPTH: usize = 128;

/// Why a body could not be read: the status to answer and what was wrong.
pub type Refusal = (u16, String);

/// A CBOR or MessagePack `body` as a JSON object whose JSON text is at most `limit` bytes.
pub fn object(format: Format, body: &[u8], limit: usize) -> Result<Map<String, Value>, Refusal> {
    let name = match format {
        Format::Cbor => "CBOR",
        _ => "MessagePack",
    };
    let decoded = match format {
        Format::Cbor => {
            ciborium::de::from_reader_with_recursion_limit::<Strict, _>(body, MAX_DEPTH)
                .map_err(|e| e.to_string())
        }
        _ => {
            let mut de = rmp_serde::Deserializer::from_read_ref(body);
            de.set_max_depth(MAX_DEPTH);
            Strict::deserialize(&mut de).map_err(|e| e.to_string())
        }
    };
    let Strict(value) = decoded.map_err(|e| (400, format!("invalid {name} body: {e}")))?;
    let Value::Object(doc) = value else {
        return Err((400, format!("the {name} body must be a map (an object)")));
    };
    let size = json_size(&doc);
    if size > limit {
        return Err((
            413,
            format!(
                "the {name} body is {size} bytes as JSON, over {limit} (`http.max_body_bytes`)"
            ),
        ));
    }
    Ok(doc)
}

/// The length of `doc` as JSON text, counted without building it.
fn json_size(doc: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, doc) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

/// A JSON value read from any self-describing format, refusing what JSON cannot carry.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value JSON can carry")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_i128<E: de::Error>(self, n: i128) -> Result<Value, E> {
        match i64::try_from(n) {
            Ok(n) => Ok(Value::Number(n.into())),
            Err(_) => self.visit_u128(u128::try_from(n).map_err(|_| out_of_range(n))?),
        }
    }

    fn visit_u128<E: de::Error>(self, n: u128) -> Result<Value, E> {
        let n = u64::try_from(n).map_err(|_| out_of_range(n))?;
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{f} is not a number JSON can carry")))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Value, E> {
        Err(E::custom(format!(
            "a byte string ({} bytes) cannot be stored as JSON; send text",
            b.len()
        )))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    /// MessagePack extension types arrive as newtype structs.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, _: D) -> Result<Value, D::Error> {
        Err(de::Error::custom(
            "MessagePack extension types cannot be stored as JSON",
        ))
    }

    /// A CBOR tag: its number is dropped, its content kept.
    fn visit_enum<A: EnumAccess<'de>>(self, tagged: A) -> Result<Value, A::Error> {
        let (_tag, content) = tagged.variant::<de::IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<Strict>(content).map(|s| s.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(Key(k)) = map.next_key()? {
            let Strict(v) = map.next_value()?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

fn out_of_range<E: de::Error>(n: impl fmt::Display) -> E {
    E::custom(format!(
        "the integer {n} is beyond 64 bits, which JSON numbers here carry"
    ))
}

/// A map key: text only.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor).map(Key)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a text map key (JSON object keys are text)")
    }

    fn visit_str<E>(self, s: &str) -> Result<String, E> {
        Ok(s.to_owned())
    }

    fn visit_string<E>(self, s: String) -> Result<String, E> {
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cbor_of<T: serde::Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    fn refusal(format: Format, body: &[u8]) -> String {
        let (status, m) = object(format, body, 1 << 20).unwrap_err();
        assert_eq!(status, 400, "{m}");
        m
    }

    #[test]
    fn both_formats_read_the_json_object() {
        let v = json!({"id": "a", "n": -1, "big": u64::MAX, "f": 0.5, "l": [true, null], "o": {"x": "y"}});
        let from_cbor = object(Format::Cbor, &cbor_of(&v), 1 << 20).unwrap();
        let mp = rmp_serde::to_vec_named(&v).unwrap();
        let from_mp = object(Format::MsgPack, &mp, 1 << 20).unwrap();
        assert_eq!(Value::Object(from_cbor), v);
        assert_eq!(Value::Object(from_mp), v);
    }

    #[test]
    fn what_json_cannot_carry_is_refused_by_name() {
        let nan = cbor_of(&std::collections::BTreeMap::from([("x", f64::NAN)]));
        assert!(refusal(Format::Cbor, &nan).contains("NaN"));
        let inf =
            rmp_serde::to_vec_named(&std::collections::BTreeMap::from([("x", f64::INFINITY)]))
                .unwrap();
        assert!(refusal(Format::MsgPack, &inf).contains("inf"));
        let bytes = ciborium::Value::Map(vec![(
            ciborium::Value::Text("b".into()),
            ciborium::Value::Bytes(vec![1, 2]),
        )]);
        assert!(refusal(Format::Cbor, &cbor_of(&bytes)).contains("byte string"));
        let int_key = cbor_of(&std::collections::BTreeMap::from([(1, "x")]));
        assert!(refusal(Format::Cbor, &int_key).contains("text map key"));
        assert!(refusal(Format::Cbor, &cbor_of(&json!([1]))).contains("map"));
        assert!(refusal(Format::MsgPack, &[0xc1]).contains("MessagePack"));
        assert!(refusal(Format::Cbor, &[0xa1]).contains("CBOR"));
        // fixext1 (type 5): an extension type.
        assert!(refusal(Format::MsgPack, &[0x81, 0xa1, b'e', 0xd4, 5, 0]).contains("extension"));
    }

    #[test]
    fn tags_are_dropped_and_depth_and_size_bounded() {
        let tagged = ciborium::Value::Map(vec![(
            ciborium::Value::Text("at".into()),
            ciborium::Value::Tag(
                0,
                Box::new(ciborium::Value::Text("2024-01-01T00:00:00Z".into())),
            ),
        )]);
        let doc = object(Format::Cbor, &cbor_of(&tagged), 1 << 20).unwrap();
        assert_eq!(doc["at"], "2024-01-01T00:00:00Z");
        let mut deep = vec![0xa1, 0x61, b'k'];
        deep.extend(std::iter::repeat_n(0x81, 10_000));
        deep.push(0x01);
        assert_eq!(object(Format::Cbor, &deep, 1 << 20).unwrap_err().0, 400);
        let mut deep_mp = vec![0x81, 0xa1, b'k'];
        deep_mp.extend(std::iter::repeat_n(0x91, 10_000));
        deep_mp.push(0x01);
        assert_eq!(
            object(Format::MsgPack, &deep_mp, 1 << 20).unwrap_err().0,
            400
        );
        // Lengths that claim more than the body holds allocate nothing.
        let huge = [
            0xa1, 0x61, b'k', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(object(Format::Cbor, &huge, 1 << 20).unwrap_err().0, 400);
        let huge_mp = [0x81, 0xa1, b'k', 0xdd, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            object(Format::MsgPack, &huge_mp, 1 << 20).unwrap_err().0,
            400
        );
        let list = cbor_of(&json!({"l": vec![1; 100]}));
        assert_eq!(object(Format::Cbor, &list, 100).unwrap_err().0, 413);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_or_refused(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            for format in [Format::Cbor, Format::MsgPack] {
                if let Err((status, m)) = object(format, &body, 1 << 20) {
                    proptest::prop_assert!(status == 400 && !m.is_empty());
                }
            }
        }
    }
}
