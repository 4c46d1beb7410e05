//! How a record's body carries its id: the primary-key attribute names the record (a string,
//! or a number as its JSON text), a body may omit it (the id is put in), and a body that
//! names another record than the write is refused. New ids are UUID v7.

use super::{Doc, RecordError};
use crate::storage::record_id;
use serde_json::Value;

/// The id a body names by its primary key: `None` when the body has no such attribute.
pub fn body_id(body: &Doc, primary_key: &str) -> Result<Option<String>, RecordError> {
    match body.get(primary_key) {
        None => Ok(None),
        Some(v) => match record_id::id_text(v) {
            Some(id) => {
                record_id::check(&id).map_err(RecordError::Invalid)?;
                Ok(Some(id.into_owned()))
            }
            None => Err(RecordError::Invalid(format!(
                "primary key {primary_key:?} must be a string or a number, not {v}"
            ))),
        },
    }
}

/// Checks that a body names record `id` or no record at all.
pub fn check_body_id(body: &Doc, primary_key: &str, id: &str) -> Result<(), RecordError> {
    match body.get(primary_key) {
        None => Ok(()),
        Some(v) if record_id::id_text(v).is_some_and(|t| t == id) => Ok(()),
        Some(other) => Err(RecordError::Invalid(format!(
            "the body's {primary_key:?} is {other} but the write names record {id:?}"
        ))),
    }
}

/// The document stored for `id`: the body with its primary key set to the id, as text, so
/// ids keep one type whether a body sent `"5"`, `5` or nothing (a body that names another
/// record is refused).
pub fn with_key(mut body: Doc, primary_key: &str, id: &str) -> Result<Doc, RecordError> {
    check_body_id(&body, primary_key, id)?;
    body.insert(primary_key.to_string(), Value::String(id.to_string()));
    Ok(body)
}

/// A new record id: a UUID v7 (time-ordered, OS randomness).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
