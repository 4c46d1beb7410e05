//! What a record id is, in one place: the primary key's value as text (a string as is, a
//! number as its JSON text; nothing else names a record), 1 to `MAX_ID_BYTES` bytes. REST
//! URLs, MQTT topics, WebSocket messages, queries and replication all apply these rules.

use serde_json::Value;
use std::borrow::Cow;

/// Longest record id, in bytes.
pub const MAX_ID_BYTES: usize = 1024;

/// The id a primary-key value stands for: a string as is, a number as its JSON text; `None`
/// for any other JSON value (booleans, null, arrays and objects name no record).
pub fn id_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// Checks an id's length; the message says what is wrong.
pub fn check(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("a record id cannot be empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "record id of {} bytes; at most {MAX_ID_BYTES}",
            id.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_numbers_name_records_other_values_do_not() {
        assert_eq!(id_text(&json!("p1")).as_deref(), Some("p1"));
        assert_eq!(id_text(&json!(42)).as_deref(), Some("42"));
        assert_eq!(id_text(&json!(1.5)).as_deref(), Some("1.5"));
        for v in [json!(true), json!(null), json!([1]), json!({"a": 1})] {
            assert_eq!(id_text(&v), None, "{v}");
        }
    }

    #[test]
    fn ids_must_be_one_to_max_bytes() {
        assert!(check("").is_err());
        assert!(check("a").is_ok());
        assert!(check(&"x".repeat(MAX_ID_BYTES)).is_ok());
        assert!(check(&"x".repeat(MAX_ID_BYTES + 1)).is_err());
    }
}
