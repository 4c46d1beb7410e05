//! Components' hooks through real clients: validators that derive fields and refuse writes
//! (REST, MQTT 5.0, component calls, atomic batches), a panicking validator; change handlers
//! that count every committed change exactly once. Each test runs a node in this process
//! (`app::testing::TestNode`) with a component of its own, and talks to it with ureq and a
//! raw MQTT client that shares nothing with the server's codec.

#[allow(dead_code)]
#[path = "common/raw_mqtt.rs"]
mod raw_mqtt;

use microlith::app::testing::TestNode;
use microlith::app::{ChangeEvent, Check, Component, Ctx, Doc, Error, Request, Response, Setup};
use raw_mqtt::{pkt, Raw};
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

impl Component for Hooked {
    fn name(&self) -> &'static str {
        "hooked"
    }

    fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
        for t in ["Item", "Boom", "Order", "Totals"] {
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
        Ok(())
    }
}

fn node() -> TestNode {
    let components: Vec<Arc<dyn Component>> = vec![Arc::new(Hooked)];
    TestNode::start(components, "[components.hooked]\n").expect("node starts")
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build()
}

/// (status, JSON body) of a request, whatever the status.
fn call(a: &ureq::Agent, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let req = a.request(method, url);
    let resp = match body {
        Some(b) => req
            .set("content-type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match resp {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn counters(a: &ureq::Agent, n: &TestNode) -> Value {
    let (_, status) = call(a, "GET", &n.url("/status"), None);
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

#[test]
fn a_validator_derives_fields_on_every_local_write_path() {
    let n = node();
    let a = agent();
    let body = json!({"price": 2, "qty": 3});
    assert_eq!(call(&a, "PUT", &n.url("/Item/r1"), Some(body)).0, 201);
    assert_eq!(call(&a, "GET", &n.url("/Item/r1"), None).1["total"], 6.0);
    let (s, _) = call(&a, "PATCH", &n.url("/Item/r1"), Some(json!({"qty": 5})));
    assert!(s < 300, "{s}");
    assert_eq!(call(&a, "GET", &n.url("/Item/r1"), None).1["total"], 10.0);
    let body = json!({"price": 4, "qty": 2});
    assert_eq!(call(&a, "PUT", &n.url("/call/c1"), Some(body)).0, 204);
    assert_eq!(call(&a, "GET", &n.url("/Item/c1"), None).1["total"], 8.0);
    let mut c = mqtt(&n, 5, "writer");
    let reason = publish1(&mut c, 5, "Item/m1", 1, br#"{"price":1.5,"qty":2}"#, true);
    assert_eq!(reason, 0);
    assert_eq!(call(&a, "GET", &n.url("/Item/m1"), None).1["total"], 3.0);
    assert_eq!(counters(&a, &n)["validations"], 4);
}

#[test]
fn a_validator_refusal_reaches_rest_mqtt_and_refuses_a_whole_batch() {
    let n = node();
    let a = agent();
    let (s, e) = call(&a, "PUT", &n.url("/Item/x1"), Some(json!({"qty": -1})));
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["detail"], "qty cannot be negative", "{e}");
    assert_eq!(call(&a, "GET", &n.url("/Item/x1"), None).0, 404);
    let mut c = mqtt(&n, 5, "writer5");
    let reason = publish1(&mut c, 5, "Item/m2", 1, br#"{"qty":-2}"#, true);
    assert_eq!(reason, 0x83, "a 5.0 client hears the refusal");
    assert_eq!(call(&a, "GET", &n.url("/Item/m2"), None).0, 404);
    let (s, e) = call(&a, "POST", &n.url("/batch/b1"), Some(json!({})));
    assert_eq!(s, 422, "{e}");
    let detail = e["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("qty cannot be negative"), "{e}");
    assert_eq!(
        call(&a, "GET", &n.url("/Item/b1"), None).0,
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
        let (s, e) = call(&a, "PUT", &n.url("/Boom/p1"), Some(body));
        assert_eq!(s, 500, "{e}");
    }
    // The same record, so the same writer: it still writes.
    assert_eq!(call(&a, "PUT", &n.url("/Boom/p1"), Some(json!({}))).0, 201);
    assert_eq!(call(&a, "GET", &n.url("/Boom/p1"), None).0, 200);
    let stats = counters(&a, &n);
    assert_eq!(stats["validation_panics"], 3, "{stats}");
}

/// Waits until `Totals/all` counts `changes`; returns it then.
fn totals_when(a: &ureq::Agent, n: &TestNode, changes: u64) -> Value {
    let until = Instant::now() + WAIT;
    loop {
        let (_, t) = call(a, "GET", &n.url("/Totals/all"), None);
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
    assert_eq!(call(&a, "PUT", &n.url("/Totals/all"), Some(zero)).0, 201);
    const WRITES: u64 = 120;
    const DELETES: u64 = 30;
    for i in 0..WRITES {
        let url = n.url(&format!("/Order/o{}", i % 90));
        assert!(call(&a, "PUT", &url, Some(json!({"n": i}))).0 < 300);
    }
    for i in 0..DELETES {
        assert_eq!(
            call(&a, "DELETE", &n.url(&format!("/Order/o{i}")), None).0,
            204
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
