//! Typed attributes: a table may declare the type of some attributes (`[[tables]]
//! attributes = { price = "Float", name = "String!" }`, or `"attributes"` in
//! `POST /admin/tables`), with Harper's types: `String`, `Int` (32-bit), `Long` (64-bit),
//! `Float`, `Boolean`, `Date`, `ID` (a string or a number), `Any`. A trailing `!` makes the
//! attribute required and not null. Owns the check of a written document against them and
//! Harper's coercion of dates (epoch milliseconds or an RFC 3339 text, stored as RFC 3339
//! UTC text); a value of the wrong type is refused with a message that names the attribute.
//! Attributes not declared take any value.

use serde_json::{Map, Value};

/// The declared type of one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AttrType {
    pub kind: Kind,
    /// `!`: must be present and not null.
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Int,
    Long,
    Float,
    Boolean,
    Date,
    Id,
    Any,
}

/// The most attributes a table may declare.
pub const MAX_ATTRIBUTES: usize = 256;

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "String",
            Kind::Int => "Int",
            Kind::Long => "Long",
            Kind::Float => "Float",
            Kind::Boolean => "Boolean",
            Kind::Date => "Date",
            Kind::Id => "ID",
            Kind::Any => "Any",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        let k = match s {
            "String" => Kind::String,
            "Int" => Kind::Int,
            "Long" => Kind::Long,
            "Float" => Kind::Float,
            "Boolean" => Kind::Boolean,
            "Date" => Kind::Date,
            "ID" => Kind::Id,
            "Any" => Kind::Any,
            _ => return None,
        };
        Some(k)
    }
}

impl TryFrom<String> for AttrType {
    type Error = String;

    fn try_from(s: String) -> Result<AttrType, String> {
        let (name, required) = match s.strip_suffix('!') {
            Some(n) => (n, true),
            None => (s.as_str(), false),
        };
        Kind::parse(name)
            .map(|kind| AttrType { kind, required })
            .ok_or_else(|| {
                format!("unknown type {s:?}: use String, Int, Long, Float, Boolean, Date, ID or Any (with ! for required)")
            })
    }
}

impl From<AttrType> for String {
    fn from(t: AttrType) -> String {
        format!("{}{}", t.kind.name(), if t.required { "!" } else { "" })
    }
}

/// The declared attributes of a table, by name.
pub type Attributes = std::collections::BTreeMap<String, AttrType>;

/// Checks a whole document (PUT, POST): every declared attribute it holds has its type
/// (dates coerced in place), every required one is there.
pub fn check_document(attrs: &Attributes, doc: &mut Map<String, Value>) -> Result<(), String> {
    for (name, t) in attrs {
        match doc.get_mut(name) {
            Some(v) => check_value(name, *t, v)?,
            None if t.required => return Err(format!("attribute {name:?} is required")),
            None => {}
        }
    }
    Ok(())
}

/// Checks the fields of a PATCH (the attributes it does not name keep their values).
pub fn check_fields(attrs: &Attributes, fields: &mut Map<String, Value>) -> Result<(), String> {
    for (name, v) in fields.iter_mut() {
        if let Some(t) = attrs.get(name) {
            check_value(name, *t, v)?;
        }
    }
    Ok(())
}

/// Checks that numbers may be added to these attributes.
pub fn check_numeric(attrs: &Attributes, deltas: &Map<String, Value>) -> Result<(), String> {
    for name in deltas.keys() {
        match attrs.get(name).map(|t| t.kind) {
            None | Some(Kind::Any | Kind::Int | Kind::Long | Kind::Float) => {}
            Some(k) => {
                return Err(format!(
                    "attribute {name:?} is a {}: numbers cannot be added to it",
                    k.name()
                ))
            }
        }
    }
    Ok(())
}

/// Checks (and for dates, coerces) one value.
fn check_value(name: &str, t: AttrType, v: &mut Value) -> Result<(), String> {
    if v.is_null() {
        return match t.required {
            true => Err(format!("attribute {name:?} is required and cannot be null")),
            false => Ok(()),
        };
    }
    let ok = match t.kind {
        Kind::Any => true,
        Kind::String => v.is_string(),
        Kind::Boolean => v.is_boolean(),
        Kind::Float => v.is_number(),
        Kind::Int => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        Kind::Long => v.is_i64() || v.is_u64() && v.as_i64().is_some(),
        Kind::Id => v.is_string() || v.is_number(),
        Kind::Date => return coerce_date(name, v),
    };
    match ok {
        true => Ok(()),
        false => Err(format!(
            "attribute {name:?} must be {}, not {}",
            describe(t.kind),
            shown(v)
        )),
    }
}

fn describe(k: Kind) -> &'static str {
    match k {
        Kind::String => "a string",
        Kind::Int => "an integer from -2147483648 to 2147483647",
        Kind::Long => "an integer from -9223372036854775808 to 9223372036854775807",
        Kind::Float => "a number",
        Kind::Boolean => "true or false",
        Kind::Date => "a date",
        Kind::Id => "a string or a number",
        Kind::Any => "anything",
    }
}

/// A value as a message shows it (long texts cut).
fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A date: epoch milliseconds or an RFC 3339 text (a bare `YYYY-MM-DD` is midnight UTC),
/// stored as RFC 3339 text in UTC with milliseconds.
fn coerce_date(name: &str, v: &mut Value) -> Result<(), String> {
    use time::format_description::well_known::Rfc3339;
    let bad = || {
        format!(
            "attribute {name:?} must be a date (RFC 3339 text or epoch milliseconds), not {}",
            shown(v)
        )
    };
    let at = match &*v {
        Value::Number(n) => {
            let ms = n.as_f64().filter(|m| m.is_finite()).ok_or_else(bad)?;
            let nanos = (ms * 1e6).round() as i128;
            time::OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad())?
        }
        Value::String(s) => match time::OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => t,
            Err(_) => {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                time::Date::parse(s, &format)
                    .map_err(|_| bad())?
                    .midnight()
                    .assume_utc()
            }
        },
        _ => return Err(bad()),
    };
    let utc = at.to_offset(time::UtcOffset::UTC);
    let utc = utc
        .replace_nanosecond(utc.millisecond() as u32 * 1_000_000)
        .map_err(|_| bad())?;
    *v = Value::String(utc.format(&Rfc3339).map_err(|_| bad())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(n, t)| (n.to_string(), AttrType::try_from(t.to_string()).unwrap()))
            .collect()
    }

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn values_of_the_declared_type_pass_and_others_name_the_attribute() {
        let a = attrs(&[
            ("price", "Float"),
            ("qty", "Int"),
            ("name", "String"),
            ("on", "Boolean"),
        ]);
        let mut ok = doc(json!({"price": 1.5, "qty": 3, "name": "x", "on": true, "other": [1]}));
        check_document(&a, &mut ok).unwrap();
        for (bad, attr) in [
            (json!({"price": "not a number"}), "price"),
            (json!({"qty": 1.5}), "qty"),
            (json!({"qty": 3_000_000_000u64}), "qty"),
            (json!({"name": 5}), "name"),
            (json!({"on": "true"}), "on"),
        ] {
            let e = check_document(&a, &mut doc(bad.clone())).unwrap_err();
            assert!(e.contains(&format!("{attr:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn required_attributes_must_be_there_and_not_null() {
        let a = attrs(&[("name", "String!"), ("note", "String")]);
        assert!(check_document(&a, &mut doc(json!({"note": null}))).is_err());
        assert!(check_document(&a, &mut doc(json!({"name": null}))).is_err());
        check_document(&a, &mut doc(json!({"name": "x", "note": null}))).unwrap();
        // A patch need not name it, but cannot null it.
        check_fields(&a, &mut doc(json!({"note": "y"}))).unwrap();
        assert!(check_fields(&a, &mut doc(json!({"name": null}))).is_err());
    }

    #[test]
    fn dates_are_coerced_to_utc_rfc3339() {
        let a = attrs(&[("at", "Date")]);
        for (given, stored) in [
            (json!(0), "1970-01-01T00:00:00Z"),
            (json!(1700000000123u64), "2023-11-14T22:13:20.123Z"),
            (json!("2024-02-29T12:00:00+02:00"), "2024-02-29T10:00:00Z"),
            (json!("2024-02-29"), "2024-02-29T00:00:00Z"),
        ] {
            let mut d = doc(json!({ "at": given }));
            check_document(&a, &mut d).unwrap();
            assert_eq!(d["at"], stored, "{given}");
        }
        for bad in [json!("yesterday"), json!(true), json!("2024-02-30")] {
            assert!(
                check_document(&a, &mut doc(json!({ "at": bad }))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn type_names_round_trip_and_unknown_ones_are_refused() {
        for t in [
            "String", "Int!", "Long", "Float", "Boolean", "Date", "ID", "Any!",
        ] {
            assert_eq!(String::from(AttrType::try_from(t.to_string()).unwrap()), t);
        }
        assert!(AttrType::try_from("int".to_string()).is_err());
        assert!(AttrType::try_from("Decimal".to_string()).is_err());
    }

    #[test]
    fn numbers_are_added_only_to_numeric_attributes() {
        let a = attrs(&[("n", "Int"), ("s", "String")]);
        check_numeric(&a, &doc(json!({"n": 1, "free": 2}))).unwrap();
        assert!(check_numeric(&a, &doc(json!({"s": 1}))).is_err());
    }
}
