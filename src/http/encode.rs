//! Answers in the format a client asked for (`negotiate::Format`): JSON as it is, CBOR
//! (ciborium), MessagePack (rmp-serde) and CSV (csv: a header row of every attribute in the
//! order first seen, one row per record, nested values as JSON text). Records are stored as
//! JSON; they are transcoded only when another format was asked for.

use super::negotiate::{Format, ANSWER_TYPES};
use super::problem::problem;
use super::response::Response;
use serde_json::{Map, Value};

/// At most this many CSV cells (rows × columns) per answer: rows with many distinct
/// attributes would otherwise make a table far larger than the records.
const MAX_CSV_CELLS: usize = 16 << 20;

/// A 406 naming the types this server answers in.
pub fn not_acceptable(accept: &str) -> Response {
    problem(
        406,
        &format!("Accept {accept:?} names none of the types answered here: {ANSWER_TYPES}"),
    )
}

/// An answer of `status` carrying JSON bytes (a stored record, or an encoded value): sent as
/// they are for JSON, transcoded otherwise. Says that it varies with `Accept`.
pub fn json_bytes(status: u16, format: Format, json: Vec<u8>) -> Response {
    let mut r = if format == Format::Json {
        Response::json(status, json)
    } else {
        match serde_json::from_slice::<Value>(&json) {
            Ok(v) => value_response(status, format, &v),
            Err(e) => problem(500, &format!("a stored record is not JSON: {e}")),
        }
    };
    r.vary("Accept");
    r
}

/// An answer of `status` carrying `v` in `format`. Says that it varies with `Accept`.
pub fn value(status: u16, format: Format, v: &Value) -> Response {
    let mut r = value_response(status, format, v);
    r.vary("Accept");
    r
}

fn value_response(status: u16, format: Format, v: &Value) -> Response {
    let encoded = match format {
        Format::Json => serde_json::to_vec(v).map_err(|e| (500, e.to_string())),
        Format::Cbor => cbor(v).map_err(|e| (500, e)),
        Format::MsgPack => rmp_serde::to_vec_named(v).map_err(|e| (500, e.to_string())),
        Format::Csv => csv(v).map_err(|e| (406, e)),
    };
    match encoded {
        Ok(body) => {
            let mut r = Response::json(status, body);
            r.content_type = format.media_type().into();
            r
        }
        Err((status, detail)) => {
            if status == 500 {
                tracing::error!("cannot encode an answer as {format:?}: {detail}");
            }
            problem(status, &detail)
        }
    }
}

fn cbor(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// `v` as a CSV table: an object is one record, an array of objects many.
fn csv(v: &Value) -> Result<Vec<u8>, String> {
    let rows: Vec<&Map<String, Value>> = match v {
        Value::Object(m) => vec![m],
        Value::Array(items) => items
            .iter()
            .map(Value::as_object)
            .collect::<Option<_>>()
            .ok_or("text/csv carries records (objects); this answer holds other values: ask for JSON, or select() whole attributes")?,
        _ => return Err("text/csv carries records (objects); this answer is a bare value".into()),
    };
    let columns = columns(&rows)?;
    if columns.is_empty() {
        return Ok(Vec::new()); // no attributes: no table (csv would write a row of `""`)
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&columns).map_err(|e| e.to_string())?;
    for row in rows {
        let cells = columns.iter().map(|c| cell(row.get(*c)));
        w.write_record(cells).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// Every attribute of `rows`, in the order first seen, within `MAX_CSV_CELLS`.
fn columns<'a>(rows: &[&'a Map<String, Value>]) -> Result<Vec<&'a str>, String> {
    let mut seen = std::collections::HashSet::new();
    let mut columns = Vec::new();
    for key in rows.iter().flat_map(|r| r.keys()) {
        if seen.insert(key.as_str()) {
            columns.push(key.as_str());
        }
    }
    if columns.len().saturating_mul(rows.len()) > MAX_CSV_CELLS {
        return Err(format!(
            "{} rows with {} distinct attributes exceed {MAX_CSV_CELLS} CSV cells; select() fewer attributes or ask for JSON",
            rows.len(),
            columns.len()
        ));
    }
    Ok(columns)
}

/// One CSV field: text as it is, nothing for null or a missing attribute, other values as
/// JSON text.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csv_text(v: Value) -> String {
        String::from_utf8(csv(&v).unwrap()).unwrap()
    }

    #[test]
    fn csv_columns_are_the_union_in_first_seen_order() {
        let rows = json!([
            {"id": "a", "name": "lamp, tall", "price": 25},
            {"id": "b", "tags": ["x", "y"], "name": null, "extra": {"k": true}}
        ]);
        assert_eq!(
            csv_text(rows),
            "id,name,price,tags,extra\na,\"lamp, tall\",25,,\nb,,,\"[\"\"x\"\",\"\"y\"\"]\",\"{\"\"k\"\":true}\"\n"
        );
        assert_eq!(csv_text(json!({"id": 1, "ok": false})), "id,ok\n1,false\n");
        assert_eq!(csv_text(json!([])), "");
    }

    #[test]
    fn csv_refuses_what_is_not_records() {
        assert!(csv(&json!(["a", "b"])).is_err());
        assert!(csv(&json!(3)).is_err());
        assert_eq!(value(200, Format::Csv, &json!([1])).status, 406);
    }

    #[test]
    fn binary_formats_round_trip() {
        let v = json!({"id": "p1", "n": -3, "f": 1.5, "list": [1, "two", null], "o": {"b": true}});
        let from_cbor: Value = ciborium::from_reader(&cbor(&v).unwrap()[..]).unwrap();
        assert_eq!(from_cbor, v);
        let mp = value(200, Format::MsgPack, &v);
        assert_eq!(mp.content_type, "application/x-msgpack");
        assert_eq!(rmp_serde::from_slice::<Value>(&mp.body).unwrap(), v);
    }

    #[test]
    fn json_is_sent_as_stored() {
        let stored = br#"{"b":1,"a":2}"#.to_vec();
        let r = json_bytes(200, Format::Json, stored.clone());
        assert_eq!(r.body, stored);
        assert!(r.extra.iter().any(|h| h == "Vary: Accept"));
        assert_eq!(json_bytes(200, Format::Cbor, b"{".to_vec()).status, 500);
    }
}
