//! Components' resources through real HTTP: path parameters, every table call, atomic
//! writes and the cross-partition refusal, a wrapped table, a stream, and the node's
//! protection (a panicking handler, one past the deadline, one past its concurrency bound).
//! Each test runs a node in this process (`app::testing::TestNode`) with a component of its
//! own and talks to it with ureq.

mod common;
use common::{agent, call_json};
use microlith::app::testing::TestNode;
use microlith::app::{Component, Ctx, Doc, Error, Method, Request, Response, Setup, TableWrapper};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

struct Shop;

fn doc(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

async fn product_page(ctx: Ctx, req: Request) -> Result<Response, Error> {
    let id = req.required("id")?;
    let product = ctx
        .table("Product")?
        .get(id)?
        .ok_or_else(|| Error::not_found(format!("no product {id}")))?
        .doc()?;
    let price = ctx.table("Price")?.get(id)?.map(|r| r.doc()).transpose()?;
    let stock = ctx.table("Stock")?.get(id)?.map(|r| r.doc()).transpose()?;
    Response::json(
        200,
        &json!({ "product": product, "price": price, "stock": stock }),
    )
}

async fn calls(ctx: Ctx, _req: Request) -> Result<Response, Error> {
    let t = ctx.table("Stock")?;
    t.put("s1", doc(json!({ "qty": 5 }))).await?;
    let created = t.create(doc(json!({ "qty": 1 }))).await?;
    let patched = t.patch("s1", doc(json!({ "note": "x" }))).await?;
    let added = t.add_to("s1", doc(json!({ "qty": 3 }))).await?;
    let found = t.search("qty=8").await?;
    let deleted = t.delete(&created).await?;
    let missing = t.delete(&created).await?;
    Response::json(
        200,
        &json!({
            "created": created, "patched": patched, "added": added,
            "found": found.len(), "deleted": deleted, "deleted_again": missing,
        }),
    )
}

async fn atomic(ctx: Ctx, req: Request) -> Result<Response, Error> {
    let t = ctx.table("Stock")?;
    let id = req.required("id")?;
    // Two writes of one record share its partition: both or neither.
    let written = ctx
        .batch()
        .put(&t, id, doc(json!({ "qty": 10 })))
        .add_to(&t, id, doc(json!({ "qty": -3 })))
        .commit()
        .await?;
    Response::json(200, &json!({ "writes": written.len() }))
}

async fn across(ctx: Ctx, _req: Request) -> Result<Response, Error> {
    let t = ctx.table("Stock")?;
    // Many ids: some pair is in two partitions.
    let mut b = ctx.batch();
    for i in 0..64 {
        b = b.put(&t, &format!("x{i}"), doc(json!({ "qty": i })));
    }
    b.commit().await?;
    Response::json(200, &json!("committed"))
}

async fn boom(_ctx: Ctx, _req: Request) -> Result<Response, Error> {
    panic!("a bug in a handler");
}

async fn slow(_ctx: Ctx, _req: Request) -> Result<Response, Error> {
    glommio::timer::sleep(Duration::from_secs(30)).await;
    Ok(Response::status(204))
}

async fn wait_a_bit(_ctx: Ctx, _req: Request) -> Result<Response, Error> {
    glommio::timer::sleep(Duration::from_millis(300)).await;
    Ok(Response::status(204))
}

async fn follow(_ctx: Ctx, req: Request) -> Result<Response, Error> {
    Ok(Response::stream("Stock", Some(req.required("id")?)))
}

async fn subscribe_then_write(ctx: Ctx, req: Request) -> Result<Response, Error> {
    let id = req.required("id")?;
    let t = ctx.table("Stock")?;
    let mut sub = t.subscribe(Some(id)).await;
    t.put(id, doc(json!({ "qty": 42 }))).await?;
    t.delete(id).await?;
    let put = sub.next().await.ok_or_else(|| Error::new(500, "cut"))?;
    let del = sub.next().await.ok_or_else(|| Error::new(500, "cut"))?;
    sub.end().await;
    Response::json(
        200,
        &json!({ "put": put.doc, "put_id": put.id, "deleted": del.doc.is_none() }),
    )
}

struct HidePrivate;

impl TableWrapper for HidePrivate {
    fn on_read(&self, _ctx: &Ctx, doc: &mut Doc) {
        doc.remove("secret");
        doc.insert("wrapped".into(), json!(true));
    }

    fn before_write(
        &self,
        _ctx: &Ctx,
        _m: Method,
        _id: Option<&str>,
        doc: &mut Doc,
    ) -> Result<(), Error> {
        if doc
            .get("price")
            .and_then(Value::as_f64)
            .is_some_and(|p| p < 0.0)
        {
            return Err(Error::new(422, "a price cannot be negative"));
        }
        doc.insert("checked".into(), json!(true));
        Ok(())
    }
}

impl Component for Shop {
    fn name(&self) -> &'static str {
        "shop"
    }

    fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Config {
            #[serde(default = "max")]
            max_concurrent: usize,
        }
        fn max() -> usize {
            2
        }
        let config: Config = s.config()?;
        s.table("Product", "id", &["category"]);
        s.table("Price", "id", &[]);
        s.table("Stock", "id", &["qty"]);
        s.get("/page/:id", product_page)?;
        s.post("/calls", calls)?;
        s.post("/atomic/:id", atomic)?;
        s.post("/across", across)?;
        s.get("/boom", boom)?;
        s.get("/slow", slow)?;
        s.get("/wait", wait_a_bit)?;
        s.get("/follow/:id", follow)?;
        s.post("/sub/:id", subscribe_then_write)?;
        s.wrap_table("Product", HidePrivate)?;
        s.max_concurrent(config.max_concurrent);
        Ok(())
    }
}

fn node(extra: &str) -> TestNode {
    let components: Vec<Arc<dyn Component>> = vec![Arc::new(Shop)];
    TestNode::start(components, &format!("[components.shop]\n{extra}")).expect("node starts")
}

#[test]
fn a_resource_with_a_path_parameter_reads_three_tables() {
    let n = node("");
    let a = agent();
    for (t, body) in [
        ("Product", json!({"name": "lamp", "category": "home"})),
        ("Price", json!({"amount": 25})),
        ("Stock", json!({"qty": 4})),
    ] {
        let (s, _) = call_json(&a, "PUT", &n.url(&format!("/{t}/p1")), Some(body));
        assert_eq!(s, 201, "{t}");
    }
    let (s, page) = call_json(&a, "GET", &n.url("/page/p1"), None);
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["product"]["name"], "lamp");
    assert_eq!(page["price"]["amount"], 25);
    assert_eq!(page["stock"]["qty"], 4);
    let (s, e) = call_json(&a, "GET", &n.url("/page/nope"), None);
    assert_eq!(s, 404, "{e}");
    // A path the component does not serve with this method.
    let (s, _) = call_json(&a, "DELETE", &n.url("/page/p1"), None);
    assert_eq!(s, 405);
}

#[test]
fn every_table_call_works_from_a_handler() {
    let n = node("");
    let (s, r) = call_json(&agent(), "POST", &n.url("/calls"), Some(json!({})));
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["patched"], json!({"qty": 5, "id": "s1", "note": "x"}));
    assert_eq!(r["added"]["qty"], 8);
    assert_eq!(r["found"], 1);
    assert_eq!(r["deleted"], true);
    assert_eq!(r["deleted_again"], false);
    assert_eq!(r["created"].as_str().map(str::len), Some(36), "a UUID");
}

#[test]
fn a_subscription_sees_a_records_changes_in_order() {
    let n = node("");
    let (s, r) = call_json(&agent(), "POST", &n.url("/sub/z1"), Some(json!({})));
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r,
        json!({"put": {"qty": 42, "id": "z1"}, "put_id": "z1", "deleted": true})
    );
}

#[test]
fn atomic_writes_commit_together_and_span_no_partitions() {
    let n = node("");
    let a = agent();
    let (s, r) = call_json(&a, "POST", &n.url("/atomic/a1"), Some(json!({})));
    assert_eq!((s, r["writes"].clone()), (200, json!(2)));
    let (_, stock) = call_json(&a, "GET", &n.url("/Stock/a1"), None);
    assert_eq!(stock["qty"], 7);
    let (s, e) = call_json(&a, "POST", &n.url("/across"), Some(json!({})));
    assert_eq!(s, 400, "{e}");
    assert!(e["detail"].as_str().unwrap().contains("partition"), "{e}");
    // Nothing of the refused batch was stored.
    let (_, rows) = call_json(&a, "GET", &n.url("/Stock/?qty=ge=0&limit(100)"), None);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
}

#[test]
fn a_wrapped_table_hides_adds_and_checks_fields_on_rest() {
    let n = node("");
    let a = agent();
    let (s, e) = call_json(&a, "PUT", &n.url("/Product/w1"), Some(json!({"price": -1})));
    assert_eq!(s, 422, "{e}");
    let (s, _) = call_json(
        &a,
        "PUT",
        &n.url("/Product/w1"),
        Some(json!({"price": 3, "secret": "s"})),
    );
    assert_eq!(s, 201);
    let (_, p) = call_json(&a, "GET", &n.url("/Product/w1"), None);
    assert_eq!(
        p,
        json!({"price": 3, "id": "w1", "checked": true, "wrapped": true})
    );
    let (_, rows) = call_json(&a, "GET", &n.url("/Product/?price=3"), None);
    assert_eq!(rows[0].get("secret"), None, "{rows}");
    assert_eq!(rows[0]["wrapped"], true);
}

#[test]
fn a_panicking_handler_answers_500_and_the_shard_keeps_serving() {
    let n = node("");
    let a = agent();
    for _ in 0..4 {
        let (s, e) = call_json(&a, "GET", &n.url("/boom"), None);
        assert_eq!(s, 500, "{e}");
    }
    let (s, _) = call_json(&a, "GET", &n.url("/health"), None);
    assert_eq!(s, 200);
    let (_, status) = call_json(&a, "GET", &n.url("/status"), None);
    assert_eq!(status["components"]["shop"]["panics"], 4, "{status}");
}

#[test]
fn a_handler_past_the_request_deadline_is_cut_with_504() {
    let n = TestNode::start(
        vec![Arc::new(Shop)],
        "[components.shop]\n[http]\nrequest_timeout_ms = 300\n",
    )
    .expect("node starts");
    let a = agent();
    let started = std::time::Instant::now();
    let (s, e) = call_json(&a, "GET", &n.url("/slow"), None);
    assert_eq!(s, 504, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cut at 300 ms, not at 30 s"
    );
    let (_, status) = call_json(&a, "GET", &n.url("/status"), None);
    assert_eq!(status["components"]["shop"]["timeouts"], 1, "{status}");
}

#[test]
fn calls_past_the_components_bound_get_503_at_once() {
    let n = TestNode::start(
        vec![Arc::new(Shop)],
        "[components.shop]\n[shards]\ncount = 1\n",
    )
    .expect("node starts");
    let url = n.url("/wait");
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || call_json(&agent(), "GET", &url, None).0)
        })
        .collect();
    let codes: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        codes.iter().filter(|c| **c == 204).count() >= 2,
        "{codes:?}"
    );
    assert!(codes.contains(&503), "{codes:?}");
}

#[test]
fn a_resource_can_answer_with_a_stream_of_a_record() {
    let n = node("");
    let a = agent();
    call_json(&a, "PUT", &n.url("/Stock/f1"), Some(json!({"qty": 1})));
    let mut s = std::net::TcpStream::connect(n.http).unwrap();
    use std::io::{Read, Write};
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /follow/f1 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    call_json(&a, "PUT", &n.url("/Stock/f1"), Some(json!({"qty": 2})));
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !got.contains("\"qty\":2") && std::time::Instant::now() < until {
        let n = s.read(&mut buf).unwrap_or(0);
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("text/event-stream"), "{got}");
    assert!(got.contains("\"qty\":2"), "{got}");
}

#[test]
fn an_unknown_component_section_or_key_is_refused_with_its_name() {
    let e = TestNode::start(vec![Arc::new(Shop)], "[components.nope]\n")
        .err()
        .unwrap();
    assert!(e.contains("components.nope"), "{e}");
    let e = TestNode::start(
        vec![Arc::new(Shop)],
        "[components.shop]\nmax_concurent = 1\n",
    )
    .err()
    .unwrap();
    assert!(
        e.contains("components.shop") && e.contains("max_concurent"),
        "{e}"
    );
}
