//! CRUD through every verb, with keys spread over every shard, and the same answers whichever
//! shard's connection receives the request.

mod common;
use common::*;

#[test]
fn crud_on_every_verb_spreads_keys_over_shards() {
    let s = Server::start(&format!("[shards]\ncount = 2\n\n{PRODUCT_TABLE}"));
    let a = agent();

    // PUT creates (201 + Location + ETag), PUT again replaces (204).
    let r = put(
        &a,
        &s.url("/Product/1"),
        r#"{"name":"lamp","price":20,"category":"home"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/Product/1"));
    let first_etag = r.etag.clone().expect("etag");
    let r = put(
        &a,
        &s.url("/Product/1"),
        r#"{"id":"1","name":"lamp","price":25,"category":"home"}"#,
    );
    assert_eq!(r.status, 204);
    assert_ne!(
        r.etag.as_deref(),
        Some(first_etag.as_str()),
        "a write makes a new version"
    );

    // GET returns the stored document with the primary key.
    let r = get(&a, &s.url("/Product/1"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"id":"1","name":"lamp","price":25,"category":"home"})
    );
    assert!(r.content_type.unwrap().starts_with("application/json"));

    // HEAD: same headers, no body.
    let h = send(&a, "HEAD", &s.url("/Product/1"), None, &[]);
    assert_eq!(
        (h.status, h.body.as_str(), h.etag.as_deref()),
        (200, "", r.etag.as_deref())
    );

    // PATCH merges top-level fields.
    let p = send(
        &a,
        "PATCH",
        &s.url("/Product/1"),
        Some(r#"{"price":30,"stock":4}"#),
        &[],
    );
    assert_eq!(p.status, 204, "{}", p.body);
    assert_eq!(
        get(&a, &s.url("/Product/1")).json(),
        serde_json::json!({"id":"1","name":"lamp","price":30,"category":"home","stock":4})
    );
    assert_eq!(
        send(&a, "PATCH", &s.url("/Product/nope"), Some("{}"), &[]).status,
        404
    );

    // POST generates an id, answered (a JSON string, as Harper does) and in Location.
    let r = send(
        &a,
        "POST",
        &s.url("/Product/"),
        Some(r#"{"name":"chair","category":"home","price":50}"#),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let loc = r.location.clone().unwrap();
    assert_eq!(format!("/Product/{}", r.json().as_str().unwrap()), loc);
    let got = get(&a, &s.url(&loc));
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["name"], "chair");
    assert_eq!(
        format!("/Product/{}", got.json()["id"].as_str().unwrap()),
        loc
    );
    // POST with an existing id is a conflict.
    let dup = send(
        &a,
        "POST",
        &s.url("/Product/"),
        Some(r#"{"id":"1","name":"x"}"#),
        &[],
    );
    assert_eq!(dup.status, 409);

    // DELETE answers `true` (Harper's answer), then the record is gone; deleting it again
    // is done already: `true` again.
    let d = send(&a, "DELETE", &s.url(&loc), None, &[]);
    assert_eq!((d.status, d.json()), (200, serde_json::json!(true)));
    assert_eq!(get(&a, &s.url(&loc)).status, 404);
    let again = send(&a, "DELETE", &s.url(&loc), None, &[]);
    assert_eq!((again.status, again.json()), (200, serde_json::json!(true)));

    // Many keys: both shards own some.
    for i in 0..200 {
        let r = put(
            &a,
            &s.url(&format!("/Product/k{i}")),
            &format!(r#"{{"n":{i},"category":"c{}"}}"#, i % 5),
        );
        assert_eq!(r.status, 201);
    }
    let counts = shard_records(&a, &s);
    assert_eq!(counts.len(), 2);
    assert_eq!(counts.iter().sum::<i64>(), 201);
    assert!(
        counts.iter().all(|c| *c > 30),
        "keys should spread over shards: {counts:?}"
    );

    // The same answers on many fresh connections (they land on either shard).
    for conn in 0..20 {
        let fresh = agent();
        for i in (conn..200).step_by(37) {
            let r = get(&fresh, &s.url(&format!("/Product/k{i}")));
            assert_eq!(r.status, 200);
            assert_eq!(r.json()["n"], i);
        }
        let q = get(&fresh, &s.url("/Product/?category=c3&sort(+n)&select(n)"));
        let expected: Vec<i64> = (0..200).filter(|i| i % 5 == 3).collect();
        assert_eq!(q.json(), serde_json::json!(expected));
    }

    // DELETE by query.
    let d = send(&a, "DELETE", &s.url("/Product/?category=c1"), None, &[]);
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(d.json(), serde_json::json!(true));
    assert_eq!(d.header("x-records-deleted"), Some("40"));
    assert_eq!(
        get(&a, &s.url("/Product/?category=c1")).json(),
        serde_json::json!([])
    );
    assert_eq!(shard_records(&a, &s).iter().sum::<i64>(), 161);

    // Table description and health.
    assert_eq!(get(&a, &s.url("/Product")).json()["primary_key"], "id");
    assert_eq!(get(&a, &s.url("/health")).status, 200);
}

#[test]
fn conditional_requests_are_exact() {
    let s = Server::start(PRODUCT_TABLE);
    let a = agent();
    let v1 = put(&a, &s.url("/Product/c"), r#"{"n":0}"#).etag.unwrap();

    // If-None-Match with the current version: 304.
    let r = send(
        &a,
        "GET",
        &s.url("/Product/c"),
        None,
        &[("If-None-Match", &v1)],
    );
    assert_eq!(r.status, 304);
    // If-Match with a stale version: 412; with the current one: applies.
    let v2 = send(
        &a,
        "PUT",
        &s.url("/Product/c"),
        Some(r#"{"n":1}"#),
        &[("If-Match", &v1)],
    );
    assert_eq!(v2.status, 204);
    let stale = send(
        &a,
        "PUT",
        &s.url("/Product/c"),
        Some(r#"{"n":2}"#),
        &[("If-Match", &v1)],
    );
    assert_eq!(stale.status, 412);
    assert_eq!(
        send(
            &a,
            "DELETE",
            &s.url("/Product/c"),
            None,
            &[("If-Match", &v1)]
        )
        .status,
        412
    );
    assert_eq!(
        send(
            &a,
            "PATCH",
            &s.url("/Product/c"),
            Some(r#"{"n":9}"#),
            &[("If-Match", &v1)]
        )
        .status,
        412
    );
    // If-None-Match: * creates only.
    assert_eq!(
        send(
            &a,
            "PUT",
            &s.url("/Product/c"),
            Some("{}"),
            &[("If-None-Match", "*")]
        )
        .status,
        412
    );
    assert_eq!(
        send(
            &a,
            "PUT",
            &s.url("/Product/new"),
            Some("{}"),
            &[("If-None-Match", "*")]
        )
        .status,
        201
    );

    // Compare-and-set increments from many threads: no update is lost.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = s.url("/Product/c");
            std::thread::spawn(move || {
                let a = agent();
                let mut done = 0;
                while done < 25 {
                    let cur = get(&a, &url);
                    let n = cur.json()["n"].as_i64().unwrap();
                    let r = send(
                        &a,
                        "PUT",
                        &url,
                        Some(&format!(r#"{{"n":{}}}"#, n + 1)),
                        &[("If-Match", cur.etag.as_deref().unwrap())],
                    );
                    match r.status {
                        204 => done += 1,
                        412 => {}
                        other => panic!("unexpected {other}: {}", r.body),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(get(&a, &s.url("/Product/c")).json()["n"], 101);
}
