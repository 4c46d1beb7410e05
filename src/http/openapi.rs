//! `GET /openapi`: an OpenAPI 3.0 document of the node's tables as the catalog holds them
//! now (built per request): for each table `/{Table}` (its description), `/{Table}/` (query,
//! create, delete by query) and `/{Table}/{id}` (read, replace, merge, delete), its primary
//! key, its indexed attributes as query parameters, and the content types served and read.
//! A user sees the tables they may read.

use super::negotiate::{ANSWER_TYPES, BODY_TYPES};
use super::request::{Method, Request};
use super::response::Response;
use super::router::not_allowed;
use super::shard::HttpShard;
use crate::security::TableOp;
use crate::storage::catalog::TableDef;
use serde_json::{json, Map, Value};

/// The document for the tables `req`'s user may read.
pub fn document(shard: &HttpShard, req: &Request<'_>) -> Response {
    if !matches!(req.method, Method::Get | Method::Head) {
        return not_allowed(req.method, "GET, HEAD");
    }
    let readable = |t: &TableDef| {
        req.user
            .as_ref()
            .is_none_or(|u| u.can(&t.name, TableOp::Read))
    };
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let catalog = shard.catalog.borrow();
    for def in catalog.tables.values().filter(|t| readable(t)) {
        paths.extend(table_paths(def));
        schemas.insert(def.name.clone(), record_schema(def));
    }
    drop(catalog);
    schemas.insert("Problem".into(), problem_schema());
    let doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "microlith",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Records as JSON, CBOR, MessagePack or CSV (Accept: {ANSWER_TYPES}); bodies as {BODY_TYPES}. Answers are compressed (br, gzip) as Accept-Encoding allows."),
        },
        "paths": paths,
        "components": { "schemas": schemas },
    });
    super::encode::value(200, super::negotiate::Format::Json, &doc)
}

/// The three paths of one table.
fn table_paths(def: &TableDef) -> Map<String, Value> {
    let name = &def.name;
    let record = format!("#/components/schemas/{name}");
    let id = json!({
        "name": "id", "in": "path", "required": true,
        "description": format!("the record's primary key ({})", def.primary_key),
        "schema": { "type": "string" },
    });
    let mut paths = Map::new();
    paths.insert(format!("/{name}"), json!({
        "get": op(&format!("The definition of {name}"), json!([]), None, json_answer("200", "the table's name, primary key and indexes", json!({"type": "object"}))),
    }));
    paths.insert(format!("/{name}/"), json!({
        "get": op(&format!("Query {name}"), query_params(def), None, answers("200", "the matching records", json!({"type": "array", "items": {"$ref": record}}))),
        "post": op(&format!("Create a record in {name} (the id is generated unless the body has {})", def.primary_key), json!([]), Some(&record), json_answer("201", "the stored record; Location names it", json!({"$ref": record}))),
        "delete": op(&format!("Delete the records of {name} a query matches"), query_params(def), None, json_answer("200", "how many were deleted", json!({"type": "object", "properties": {"deleted": {"type": "integer"}}}))),
    }));
    paths.insert(format!("/{name}/{{id}}"), json!({
        "parameters": [id],
        "get": op(&format!("Read a record of {name}"), json!([]), None, answers("200", "the record; ETag is its version", json!({"$ref": record}))),
        "put": op(&format!("Create or replace a record of {name}"), json!([]), Some(&record), no_content("201 when created, 204 when replaced")),
        "patch": op(&format!("Merge top-level attributes into a record of {name}"), json!([]), Some(&record), no_content("merged")),
        "delete": op(&format!("Delete a record of {name}"), json!([]), None, no_content("deleted")),
    }));
    paths
}

/// One operation: summary, parameters, an optional request body of schema `body`, answers.
fn op(summary: &str, parameters: Value, body: Option<&str>, mut responses: Value) -> Value {
    responses["default"] = json!({
        "description": "a problem (RFC 9457)",
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } },
    });
    let mut op = json!({ "summary": summary, "parameters": parameters, "responses": responses });
    if let Some(schema) = body {
        let content: Map<String, Value> = BODY_TYPES
            .split(", ")
            .map(|t| (t.to_string(), json!({ "schema": { "$ref": schema } })))
            .collect();
        op["requestBody"] = json!({ "required": true, "content": content });
    }
    op
}

/// A success answer in every answer type (CSV: a header row and a row per record).
fn answers(status: &str, description: &str, schema: Value) -> Value {
    let content: Map<String, Value> = ANSWER_TYPES
        .split(", ")
        .map(|t| {
            let s = if t == "text/csv" {
                json!({ "type": "string" })
            } else {
                schema.clone()
            };
            (t.to_string(), json!({ "schema": s }))
        })
        .collect();
    json!({ status: { "description": description, "content": content } })
}

/// A success answer in JSON only.
fn json_answer(status: &str, description: &str, schema: Value) -> Value {
    json!({ status: { "description": description, "content": { "application/json": { "schema": schema } } } })
}

fn no_content(description: &str) -> Value {
    json!({
        "201": { "description": "created" },
        "204": { "description": description },
    })
}

/// The indexed attributes (and the primary key) as query parameters: `attr=value` matches
/// equal values; the rest of the query syntax (`=gt=`, `|`, `sort()`, `limit()`,
/// `select()`) is in the description.
fn query_params(def: &TableDef) -> Value {
    let attrs = std::iter::once(&def.primary_key).chain(&def.indexes);
    Value::Array(
        attrs
            .map(|a| {
                json!({
                    "name": a, "in": "query", "required": false,
                    "description": format!("{a}=value (indexed); also {a}=gt=value, =ge=, =lt=, =le=, =ne=, =sw=, =ew=, =ct=, and with sort(), limit(), select()"),
                    "schema": { "type": "string" },
                })
            })
            .collect(),
    )
}

/// A record: an object with its primary key; any other attributes.
fn record_schema(def: &TableDef) -> Value {
    let indexed: Map<String, Value> = def
        .indexes
        .iter()
        .map(|a| (a.clone(), json!({ "description": "indexed" })))
        .collect();
    let mut properties = indexed;
    properties.insert(
        def.primary_key.clone(),
        json!({ "oneOf": [{ "type": "string" }, { "type": "number" }], "description": "primary key" }),
    );
    json!({ "type": "object", "properties": properties, "additionalProperties": true })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> TableDef {
        let t = json!({"name": "Product", "primary_key": "sku", "indexes": ["category"]});
        serde_json::from_value(t).unwrap()
    }

    #[test]
    fn a_table_has_three_paths_with_its_key_and_indexes() {
        let paths = table_paths(&def());
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        assert_eq!(keys, ["/Product", "/Product/", "/Product/{id}"]);
        let q = &paths["/Product/"]["get"]["parameters"];
        assert_eq!(q[0]["name"], "sku");
        assert_eq!(q[1]["name"], "category");
        let put = &paths["/Product/{id}"]["put"]["requestBody"]["content"];
        assert!(put.get("application/cbor").is_some());
        let get = &paths["/Product/{id}"]["get"]["responses"]["200"]["content"];
        assert!(get.get("text/csv").is_some());
        assert_eq!(
            record_schema(&def())["properties"]["sku"]["description"],
            "primary key"
        );
    }
}
