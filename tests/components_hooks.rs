//! Components' hooks through real clients: validators that derive fields and refuse writes
//! (REST, MQTT 5.0, component calls, atomic batches), a panicking validator; change handlers
//! that count every committed change exactly once; MQTT publish handlers that transform,
//! drop, store and refuse messages. Each test runs a node in this process
//! (`app::testing::TestNode`) with a component of its own, and talks to it with ureq and a
//! raw MQTT client that shares nothing with the server's codec.

mod common;
use common::raw_mqtt::{pkt, Raw};
use common::{agent, call_json};
use microlith::app::testing::TestNode;
use microlith::app::{
    ChangeEvent, Check, Component, Ctx, Doc, Error, Publish, PublishAction, Request, Response,
    Setup,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Hooked;

fn doc(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// `Item`: `total` is derived from `price` and `qty`; a negative `qty` is refused.
fn check_item(c: &mut Check<'_>) -> Result<(), Error> {
    let Some(d) = c.doc_mut() else {
        return Ok(());
    };
    let qty = d.get("qty").and_then(Value::as_f64).unwrap_or(0.0);
    if qty < 0.0 {
        return Err(Error::new(422, "qty cannot be negative"));
    }
    let price = d.get("price").and_then(Value::as_f64).unwrap_or(0.0);
    d.insert("total".into(), json!(price * qty));
    Ok(())
}

/// Two writes of one record (one partition): a good put, then a patch the validator refuses.
async fn batch(ctx: Ctx, req: Request) -> Result<Response, Error> {
    let t = ctx.table("Item")?;
    let id = req.required("id")?;
    ctx.batch()
        .put(&t, id, doc(json!({ "price": 1, "qty": 1 })))
        .patch(&t, id, doc(json!({ "qty": -5 })))
        .commit()
        .await?;
    Ok(Response::status(204))
}

async fn call_put(ctx: Ctx, req: Request) -> Result<Response, Error> {
    let body: Doc = req.json()?;
    ctx.table("Item")?.put(req.required("id")?, body).await?;
    Ok(Response::status(204))
}

/// `sensors/{id}/raw` carrying a number becomes `sensors/{id}/clean` carrying JSON.
async fn clean_reading(_ctx: Ctx, p: Publish) -> Result<PublishAction, Error> {
    let id = p.topic.split('/').nth(1).unwrap_or("");
    let value: f64 = std::str::from_utf8(&p.payload)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::bad_request("not a number"))?;
    let payload = json!({ "celsius": value, "from": p.client_id });
    Ok(PublishAction::Replace {
        topic: format!("sensors/{id}/clean"),
        payload: serde_json::to_vec(&payload)?.into(),
    })
}

async fn drop_spam(_ctx: Ctx, _p: Publish) -> Result<PublishAction, Error> {
    Ok(PublishAction::Drop)
}

/// `store/{id}` is kept in table `Reading` and not delivered.
async fn store_reading(ctx: Ctx, p: Publish) -> Result<PublishAction, Error> {
    let id = p.topic.split('/').nth(1).unwrap_or("");
    let value: Value = serde_json::from_slice(&p.payload)?;
    ctx.table("Reading")?
        .put(id, doc(json!({ "value": value })))
        .await?;
    Ok(PublishAction::Drop)
}

async fn refuse(_ctx: Ctx, _p: Publish) -> Result<PublishAction, Error> {
    Err(Error::new(403, "not on this topic"))
}

async fn explode(_ctx: Ctx, _p: Publish) -> Result<PublishAction, Error> {
    panic!("a bug in a publish handler");
}

/// A component's own publish to a topic a handler would transform.
async fn emit(ctx: Ctx, _req: Request) -> Result<Response, Error> {
    ctx.publish("sensors/e1/raw", b"5", 1, false).await?;
    Ok(Response::status(204))
}

impl Component for Hooked {
    fn name(&self) -> &'static str {
        "hooked"
    }

    fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
        for t in ["Item", "Boom", "Order", "Totals", "Reading"] {
            s.table(t, "id", &[]);
        }
        s.validate("Item", check_item);
        // `Boom`: a document with `explode` makes the validator panic.
        s.validate("Boom", |c| {
            if c.doc().is_some_and(|d| d.contains_key("explode")) {
                panic!("a bug in a validator");
            }
            Ok(())
        });
        s.post("/batch/:id", batch)?;
        s.put("/call/:id", call_put)?;
        s.post("/emit", emit)?;
        // Counts every change of `Order` into `Totals/all`.
        s.on_change("Order", |ctx: Ctx, change: ChangeEvent| async move {
            let deltas = json!({
                "changes": 1,
                "local": i64::from(change.local),
                "deletes": i64::from(change.doc.is_none()),
            });
            ctx.table("Totals")?.add_to("all", doc(deltas)).await?;
            Ok(())
        });
        s.on_publish("sensors/+/raw", clean_reading)?;
        s.on_publish("spam/#", drop_spam)?;
        s.on_publish("store/+", store_reading)?;
        s.on_publish("refused/#", refuse)?;
        s.on_publish("explode/#", explode)?;
        Ok(())
    }
}

fn node() -> TestNode {
    let components: Vec<Arc<dyn Component>> = vec![Arc::new(Hooked)];
    TestNode::start(components, "[components.hooked]\n").expect("node starts")
}

fn counters(a: &ureq::Agent, n: &TestNode) -> Value {
    let (_, status) = call_json(a, "GET", &n.url("/status"), None);
    status["components"]["hooked"].clone()
}

const WAIT: Duration = Duration::from_secs(10);

/// A raw MQTT client, connected (CONNACK read).
fn mqtt(n: &TestNode, level: u8, id: &str) -> Raw {
    let mut c = Raw::connect(&n.mqtt.to_string());
    c.send(&pkt::connect(level, id, true, 30, None));
    let ack = c.packet_of(2, WAIT).expect("CONNACK");
    assert_eq!(ack[3], 0, "connection accepted: {ack:?}");
    c
}

/// Publishes at QoS 1 and returns the PUBACK's reason code (0 when it has none).
fn publish1(c: &mut Raw, level: u8, topic: &str, pkid: u16, payload: &[u8], retain: bool) -> u8 {
    c.send(&pkt::publish(level, topic, 1, pkid, payload, retain, false));
    let ack = c.packet_of(pkt::PUBACK, WAIT).expect("PUBACK");
    assert_eq!(u16::from_be_bytes([ack[2], ack[3]]), pkid);
    ack.get(4).copied().unwrap_or(0)
}

/// The next PUBLISH a 3.1.1 client receives: (topic, payload).
fn next_message(c: &mut Raw) -> (String, Value) {
    let p = c.packet_of(3, WAIT).expect("a message");
    let (topic, payload, ..) = pkt::parse_publish(&p, 4);
    let text = String::from_utf8_lossy(&payload).to_string();
    (
        topic,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn a_validator_derives_fields_on_every_local_write_path() {
    let n = node();
    let a = agent();
    let body = json!({"price": 2, "qty": 3});
    assert_eq!(call_json(&a, "PUT", &n.url("/Item/r1"), Some(body)).0, 201);
    assert_eq!(
        call_json(&a, "GET", &n.url("/Item/r1"), None).1["total"],
        6.0
    );
    let (s, _) = call_json(&a, "PATCH", &n.url("/Item/r1"), Some(json!({"qty": 5})));
    assert!(s < 300, "{s}");
    assert_eq!(
        call_json(&a, "GET", &n.url("/Item/r1"), None).1["total"],
        10.0
    );
    let body = json!({"price": 4, "qty": 2});
    assert_eq!(call_json(&a, "PUT", &n.url("/call/c1"), Some(body)).0, 204);
    assert_eq!(
        call_json(&a, "GET", &n.url("/Item/c1"), None).1["total"],
        8.0
    );
    let mut c = mqtt(&n, 5, "writer");
    let reason = publish1(&mut c, 5, "Item/m1", 1, br#"{"price":1.5,"qty":2}"#, true);
    assert_eq!(reason, 0);
    assert_eq!(
        call_json(&a, "GET", &n.url("/Item/m1"), None).1["total"],
        3.0
    );
    assert_eq!(counters(&a, &n)["validations"], 4);
}

#[test]
fn a_validator_refusal_reaches_rest_mqtt_and_refuses_a_whole_batch() {
    let n = node();
    let a = agent();
    let (s, e) = call_json(&a, "PUT", &n.url("/Item/x1"), Some(json!({"qty": -1})));
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["detail"], "qty cannot be negative", "{e}");
    assert_eq!(call_json(&a, "GET", &n.url("/Item/x1"), None).0, 404);
    let mut c = mqtt(&n, 5, "writer5");
    let reason = publish1(&mut c, 5, "Item/m2", 1, br#"{"qty":-2}"#, true);
    assert_eq!(reason, 0x83, "a 5.0 client hears the refusal");
    assert_eq!(call_json(&a, "GET", &n.url("/Item/m2"), None).0, 404);
    let (s, e) = call_json(&a, "POST", &n.url("/batch/b1"), Some(json!({})));
    assert_eq!(s, 422, "{e}");
    let detail = e["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("qty cannot be negative"), "{e}");
    assert_eq!(
        call_json(&a, "GET", &n.url("/Item/b1"), None).0,
        404,
        "nothing of it"
    );
    assert_eq!(counters(&a, &n)["validations_refused"], 3);
}

#[test]
fn a_panicking_validator_answers_500_and_the_writer_keeps_working() {
    let n = node();
    let a = agent();
    for _ in 0..3 {
        let body = json!({"explode": true});
        let (s, e) = call_json(&a, "PUT", &n.url("/Boom/p1"), Some(body));
        assert_eq!(s, 500, "{e}");
    }
    // The same record, so the same writer: it still writes.
    assert_eq!(
        call_json(&a, "PUT", &n.url("/Boom/p1"), Some(json!({}))).0,
        201
    );
    assert_eq!(call_json(&a, "GET", &n.url("/Boom/p1"), None).0, 200);
    let stats = counters(&a, &n);
    assert_eq!(stats["validation_panics"], 3, "{stats}");
}

/// Waits until `Totals/all` counts `changes`; returns it then.
fn totals_when(a: &ureq::Agent, n: &TestNode, changes: u64) -> Value {
    let until = Instant::now() + WAIT;
    loop {
        let (_, t) = call_json(a, "GET", &n.url("/Totals/all"), None);
        if t["changes"].as_u64() >= Some(changes) || Instant::now() > until {
            return t;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn change_handlers_run_once_per_committed_change_on_its_owner() {
    let n = node();
    let a = agent();
    let zero = json!({"changes": 0, "local": 0, "deletes": 0});
    assert_eq!(
        call_json(&a, "PUT", &n.url("/Totals/all"), Some(zero)).0,
        201
    );
    const WRITES: u64 = 120;
    const DELETES: u64 = 30;
    for i in 0..WRITES {
        let url = n.url(&format!("/Order/o{}", i % 90));
        assert!(call_json(&a, "PUT", &url, Some(json!({"n": i}))).0 < 300);
    }
    for i in 0..DELETES {
        assert_eq!(
            call_json(&a, "DELETE", &n.url(&format!("/Order/o{i}")), None).0,
            200
        );
    }
    let all = WRITES + DELETES;
    totals_when(&a, &n, all);
    // Nothing more arrives later: each change ran the handler exactly once.
    std::thread::sleep(Duration::from_millis(300));
    let t = totals_when(&a, &n, all);
    assert_eq!(t["changes"], all, "{t}");
    assert_eq!(t["local"], all, "{t}");
    assert_eq!(t["deletes"], DELETES, "{t}");
    let stats = counters(&a, &n);
    assert_eq!(stats["changes_handled"], all, "{stats}");
    assert_eq!(stats["changes_dropped"], 0, "{stats}");
}

#[test]
fn publish_handlers_transform_drop_store_and_refuse_messages() {
    let n = node();
    let a = agent();
    let mut sub = mqtt(&n, 4, "listener");
    for (i, f) in ["sensors/#", "spam/#", "store/#", "refused/#", "explode/#"]
        .iter()
        .enumerate()
    {
        sub.send(&pkt::subscribe(4, i as u16 + 1, f, 0));
        sub.packet_of(9, WAIT).expect("SUBACK");
    }
    let mut p5 = mqtt(&n, 5, "pub5");
    assert_eq!(publish1(&mut p5, 5, "sensors/s1/raw", 1, b"21.5", false), 0);
    let (topic, msg) = next_message(&mut sub);
    assert_eq!(topic, "sensors/s1/clean");
    assert_eq!(msg, json!({"celsius": 21.5, "from": "pub5"}));
    // Dropped, stored, refused (5.0: 0x83), panicked: none reaches the subscriber, which
    // gets the next message of the same publisher (one publisher's messages keep their order).
    assert_eq!(publish1(&mut p5, 5, "spam/x", 2, b"buy", false), 0);
    assert_eq!(publish1(&mut p5, 5, "store/r1", 3, b"7", false), 0);
    assert_eq!(publish1(&mut p5, 5, "refused/x", 4, b"no", false), 0x83);
    assert_eq!(publish1(&mut p5, 5, "explode/x", 5, b"no", false), 0x83);
    assert_eq!(publish1(&mut p5, 5, "sensors/s2/raw", 6, b"3", false), 0);
    let (topic, msg) = next_message(&mut sub);
    assert_eq!(topic, "sensors/s2/clean", "nothing in between: {msg}");
    // A 3.1.1 client cannot be told: acknowledged, not delivered, still connected.
    let mut p4 = mqtt(&n, 4, "pub4");
    assert_eq!(publish1(&mut p4, 4, "refused/y", 1, b"no", false), 0);
    assert_eq!(publish1(&mut p4, 4, "sensors/s3/raw", 2, b"4", false), 0);
    let (topic, msg) = next_message(&mut sub);
    assert_eq!(topic, "sensors/s3/clean", "nothing in between: {msg}");
    let (s, r) = call_json(&a, "GET", &n.url("/Reading/r1"), None);
    assert_eq!((s, r["value"].clone()), (200, json!(7)), "{r}");
    // A component's own publish runs no handler.
    assert_eq!(
        call_json(&a, "POST", &n.url("/emit"), Some(json!({}))).0,
        204
    );
    let (topic, msg) = next_message(&mut sub);
    assert_eq!((topic.as_str(), msg), ("sensors/e1/raw", json!(5)));
    let stats = counters(&a, &n);
    assert_eq!(stats["publishes_replaced"], 3, "{stats}");
    assert_eq!(stats["publishes_dropped"], 2, "{stats}");
    assert_eq!(stats["publish_errors"], 2, "{stats}");
    assert_eq!(stats["publish_panics"], 1, "{stats}");
}
