//! Typed attributes: a table declared with attribute types (in the config or through
//! `/admin/tables`) refuses a write of the wrong type with 400 naming the attribute, over
//! PUT, POST and PATCH; required attributes must be there; dates are coerced; ids keep one
//! type; the description lists the types.

mod common;
use common::*;
use serde_json::json;

const TYPED: &str = "[[tables]]\nname = \"Item\"\nindexes = [\"price\"]\n\
    attributes = { name = \"String!\", price = \"Float\", qty = \"Int\", added = \"Date\" }\n";

#[test]
fn writes_of_the_wrong_type_are_refused_naming_the_attribute() {
    let s = Server::start(TYPED);
    let a = agent();
    let ok = put(
        &a,
        &s.url("/Item/1"),
        r#"{"name":"lamp","price":25.5,"qty":3}"#,
    );
    assert_eq!(ok.status, 201, "{}", ok.body);
    for (body, attr) in [
        (r#"{"name":"lamp","price":"not a number"}"#, "price"),
        (r#"{"name":"lamp","qty":1.5}"#, "qty"),
        (r#"{"name":7}"#, "name"),
        (r#"{"price":1}"#, "name"),
        (r#"{"name":null}"#, "name"),
    ] {
        let r = put(&a, &s.url("/Item/1"), body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("\"{attr}\"")),
            "{}",
            r.body
        );
    }
    let post = send(
        &a,
        "POST",
        &s.url("/Item/"),
        Some(r#"{"price":"x","name":"a"}"#),
        &[],
    );
    assert_eq!(post.status, 400, "{}", post.body);
    let patch = send(
        &a,
        "PATCH",
        &s.url("/Item/1"),
        Some(r#"{"qty":"many"}"#),
        &[],
    );
    assert_eq!(patch.status, 400, "{}", patch.body);
    // A patch need not name the required attribute.
    let patch = send(&a, "PATCH", &s.url("/Item/1"), Some(r#"{"qty":4}"#), &[]);
    assert_eq!(patch.status, 204, "{}", patch.body);
    // Nothing refused was stored.
    assert_eq!(
        get(&a, &s.url("/Item/1")).json(),
        json!({"name":"lamp","price":25.5,"qty":4,"id":"1"})
    );
}

#[test]
fn dates_are_coerced_and_ids_keep_one_type() {
    let s = Server::start(TYPED);
    let a = agent();
    put(&a, &s.url("/Item/5"), r#"{"id":5,"name":"a","added":0}"#);
    let got = get(&a, &s.url("/Item/5")).json();
    assert_eq!(
        got["id"], "5",
        "a numeric id in the body is stored as the id's text"
    );
    assert_eq!(got["added"], "1970-01-01T00:00:00Z");
    put(
        &a,
        &s.url("/Item/6"),
        r#"{"name":"b","added":"2024-02-29T12:00:00+02:00"}"#,
    );
    assert_eq!(
        get(&a, &s.url("/Item/6")).json()["added"],
        "2024-02-29T10:00:00Z"
    );
    let posted = send(
        &a,
        "POST",
        &s.url("/Item/"),
        Some(r#"{"id":77,"name":"c"}"#),
        &[],
    );
    assert_eq!(posted.json(), json!("77"));
    assert_eq!(get(&a, &s.url("/Item/77")).json()["id"], "77");
    let bad = put(&a, &s.url("/Item/7"), r#"{"name":"c","added":"yesterday"}"#);
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[test]
fn tables_created_at_run_time_take_types_and_describe_them() {
    let s = Server::start("");
    let a = agent();
    let def =
        json!({"name": "Reading", "indexes": ["at"], "attributes": {"at": "Date!", "v": "Float"}});
    let r = send(
        &a,
        "POST",
        &s.url("/admin/tables"),
        Some(&def.to_string()),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["attributes"], json!({"at": "Date!", "v": "Float"}));
    let refused = put(&a, &s.url("/Reading/r1"), r#"{"v":1}"#);
    assert_eq!(refused.status, 400, "{}", refused.body);
    let d = get(&a, &s.url("/Reading")).json();
    let attrs = d["attributes"].as_array().unwrap();
    let at = attrs.iter().find(|x| x["name"] == "at").unwrap();
    assert_eq!(
        (at["type"].as_str(), at["nullable"].as_bool()),
        (Some("Date"), Some(false))
    );
    assert_eq!(at["indexed"], json!({}));
    let id = attrs.iter().find(|x| x["name"] == "id").unwrap();
    assert_eq!(id["isPrimaryKey"], true);

    let bad = json!({"name": "Bad", "attributes": {"x": "Decimal"}});
    let r = send(
        &a,
        "POST",
        &s.url("/admin/tables"),
        Some(&bad.to_string()),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("Decimal"), "{}", r.body);
}

#[test]
fn a_config_with_an_unknown_type_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[tables]]\nname = \"T\"\nattributes = { price = \"Money\" }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_microlith"))
        .args(["check-config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Money"), "{err}");
}
