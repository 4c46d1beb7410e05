//! Caching tables through real HTTP: a node in this process (`app::testing::TestNode`) with a
//! component that declares caching tables on a test origin, a small HTTP server started by
//! each test on a loopback port that counts its calls and can be told to fail, to wait, to
//! hold every answer until released, or to change what it answers.

mod common;
use common::origin::Origin;
use microlith::app::testing::TestNode;
use microlith::app::{
    CacheControl, CacheSpec, Component, Ctx, Doc, Error, Request, Response, Setup,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The component under test: caching tables as its config section lists them.

struct Caches;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CachesConfig {
    table: Vec<TableConfig>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TableConfig {
    name: String,
    /// The origin's URL template; absent: the component's own function is the source.
    origin: Option<String>,
    expiration_ms: u64,
    /// Absent: records are never evicted.
    eviction_ms: Option<u64>,
    #[serde(default)]
    swr: bool,
    #[serde(default)]
    sie: bool,
    timeout_ms: Option<u64>,
    max_fetches: Option<usize>,
    negative_ttl_ms: Option<u64>,
}

static FN_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A function source: counts its calls; `none` has no record, `boom` fails.
async fn made_here(_ctx: Ctx, id: String) -> Result<Option<Doc>, Error> {
    let n = FN_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    match id.as_str() {
        "none" => Ok(None),
        "boom" => Err(Error::new(500, "the source failed")),
        _ => Ok(Some(doc(json!({ "made": id, "n": n })))),
    }
}

/// A component reading a caching table with `get_cached`.
async fn via_ctx(ctx: Ctx, req: Request) -> Result<Response, Error> {
    let table = ctx.table(req.required("table")?)?;
    let cc = CacheControl::parse(req.header("cache-control").unwrap_or(""));
    match table.get_cached_with(req.required("id")?, &cc).await? {
        Some(rec) => Response::json(200, &json!({ "doc": rec.doc()?, "stale": rec.is_stale() })),
        None => Err(Error::not_found("the source has no such record")),
    }
}

fn spec(t: &TableConfig) -> CacheSpec {
    let exp = Duration::from_millis(t.expiration_ms);
    let mut s = match &t.origin {
        Some(url) => CacheSpec::http(&t.name, url, exp),
        None => CacheSpec::function(&t.name, made_here, exp),
    };
    s = match t.eviction_ms {
        Some(ms) => s.eviction(Duration::from_millis(ms)),
        None => s.no_eviction(),
    };
    s = s.stale_while_revalidate(t.swr).stale_if_error(t.sie);
    if let Some(ms) = t.timeout_ms {
        s = s.timeout(Duration::from_millis(ms));
    }
    if let Some(n) = t.max_fetches {
        s = s.max_concurrent_fetches(n);
    }
    if let Some(ms) = t.negative_ttl_ms {
        s = s.negative_ttl(Duration::from_millis(ms));
    }
    s
}

impl Component for Caches {
    fn name(&self) -> &'static str {
        "caches"
    }

    fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
        let config: CachesConfig = s.config()?;
        for t in &config.table {
            s.caching_table(spec(t))?;
        }
        s.table("Plain", "id", &[]);
        s.get("/via-ctx/:table/:id", via_ctx)
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn doc(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// A node of `shards` shards with caching tables given as TOML lines each.
fn node(shards: usize, tables: &[String]) -> TestNode {
    let mut toml = format!("[shards]\ncount = {shards}\n[components.caches]\n");
    for t in tables {
        toml.push_str(&format!("[[components.caches.table]]\n{t}\n"));
    }
    TestNode::start(vec![Arc::new(Caches)], &toml).expect("node starts")
}

/// A caching table `name` on `origin` with more TOML lines.
fn table(name: &str, origin: &Origin, more: &str) -> String {
    format!("name = \"{name}\"\norigin = \"{}\"\n{more}", origin.url())
}

struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

fn request(method: &str, url: &str, cache_control: Option<&str>, body: Option<Value>) -> Answer {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let mut req = agent.request(method, url);
    if let Some(cc) = cache_control {
        req = req.set("Cache-Control", cc);
    }
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
    let retry_after = resp.header("retry-after").map(str::to_string);
    let text = resp.into_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        body,
        retry_after,
    }
}

fn get(n: &TestNode, path: &str) -> Answer {
    request("GET", &n.url(path), None, None)
}

fn get_with(n: &TestNode, path: &str, cache_control: &str) -> Answer {
    request("GET", &n.url(path), Some(cache_control), None)
}

/// The counters of caching table `table`.
fn stats(n: &TestNode, table: &str) -> Value {
    get(n, "/status").body["caches"][table].clone()
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn a_miss_is_fetched_from_the_origin_and_stored() {
    let origin = Origin::start();
    let n = node(2, &[table("Device", &origin, "expiration_ms = 60000")]);
    let a = get(&n, "/Device/d%201");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, json!({ "name": "d 1", "v": 0, "id": "d 1" }));
    assert_eq!(origin.calls(), 1);
    // Stored: a query (which never fetches) finds it.
    let rows = get(&n, "/Device/?name=d%201").body;
    assert_eq!(rows, json!([{ "name": "d 1", "v": 0, "id": "d 1" }]));
    assert_eq!(stats(&n, "Device")["misses"], 1);
}

#[test]
fn a_fresh_record_is_served_without_calling_the_origin() {
    let origin = Origin::start();
    let n = node(2, &[table("Device", &origin, "expiration_ms = 60000")]);
    assert_eq!(get(&n, "/Device/h1").status, 200);
    origin.generation(1);
    for _ in 0..5 {
        let a = get(&n, "/Device/h1");
        assert_eq!((a.status, a.body["v"].clone()), (200, json!(0)));
    }
    assert_eq!(origin.calls(), 1);
    assert_eq!(stats(&n, "Device")["hits"], 5);
}

#[test]
fn an_expired_record_is_fetched_again() {
    let origin = Origin::start();
    let n = node(2, &[table("Device", &origin, "expiration_ms = 300")]);
    assert_eq!(get(&n, "/Device/e1").body["v"], 0);
    origin.generation(1);
    sleep_ms(400);
    let a = get(&n, "/Device/e1");
    assert_eq!((a.status, a.body["v"].clone()), (200, json!(1)));
    assert_eq!(origin.calls(), 2);
}

#[test]
fn stale_while_revalidate_serves_stale_at_once_then_fresh_after_one_origin_call() {
    let origin = Origin::start();
    let n = node(
        2,
        &[table("Device", &origin, "expiration_ms = 300\nswr = true")],
    );
    assert_eq!(get(&n, "/Device/s1").body["v"], 0);
    origin.generation(1);
    sleep_ms(400);
    // The origin holds every answer: the stale record still comes back at once.
    origin.hold();
    for _ in 0..5 {
        let a = get(&n, "/Device/s1");
        assert_eq!((a.status, a.body["v"].clone()), (200, json!(0)));
    }
    origin.wait_calls(2);
    origin.release();
    let until = Instant::now() + Duration::from_secs(10);
    while get(&n, "/Device/s1").body["v"] != 1 {
        assert!(Instant::now() < until, "the refresh never landed");
        sleep_ms(20);
    }
    assert_eq!(
        origin.calls(),
        2,
        "one background refresh for every stale read"
    );
    assert!(stats(&n, "Device")["stale_served"].as_u64() >= Some(5));
}

#[test]
fn stale_if_error_serves_the_stale_record_while_the_origin_fails() {
    let origin = Origin::start();
    let n = node(
        2,
        &[
            table("Sie", &origin, "expiration_ms = 300\nsie = true"),
            table("Strict", &origin, "expiration_ms = 300"),
        ],
    );
    assert_eq!(get(&n, "/Sie/x").status, 200);
    assert_eq!(get(&n, "/Strict/x").status, 200);
    origin.fail(500);
    sleep_ms(400);
    let a = get(&n, "/Sie/x");
    assert_eq!(
        (a.status, a.body["name"].clone()),
        (200, json!("x")),
        "{}",
        a.body
    );
    let a = get(&n, "/Strict/x");
    assert_eq!(a.status, 502, "{}", a.body);
    // Nothing stale to serve: the error.
    assert_eq!(get(&n, "/Sie/y").status, 502);
    assert_eq!(stats(&n, "Sie")["stale_served"], 1);
    assert!(stats(&n, "Sie")["origin_errors"].as_u64() >= Some(1));
}

/// `count` threads read `path` at once; their answers.
fn stampede(n: &TestNode, path: &str, count: usize) -> Vec<Answer> {
    let barrier = Arc::new(Barrier::new(count));
    let url = n.url(path);
    let threads: Vec<_> = (0..count)
        .map(|_| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::spawn(move || {
                barrier.wait();
                request("GET", &url, None, None)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn a_hundred_concurrent_misses_of_one_key_make_one_origin_call() {
    let origin = Origin::start();
    origin.delay(300);
    let n = node(2, &[table("Device", &origin, "expiration_ms = 60000")]);
    let answers = stampede(&n, "/Device/hot", 100);
    for a in &answers {
        assert_eq!(
            (a.status, a.body["name"].clone()),
            (200, json!("hot")),
            "{}",
            a.body
        );
    }
    assert_eq!(origin.calls(), 1);
}

#[test]
fn a_hundred_concurrent_misses_of_a_failing_origin_make_one_call_and_share_its_error() {
    let origin = Origin::start();
    origin.fail(500);
    origin.delay(300);
    let n = node(
        2,
        &[table(
            "Device",
            &origin,
            "expiration_ms = 60000\nnegative_ttl_ms = 5000",
        )],
    );
    let answers = stampede(&n, "/Device/down", 100);
    for a in &answers {
        assert_eq!(a.status, 502, "{}", a.body);
    }
    assert_eq!(origin.calls(), 1);
    assert_eq!(stats(&n, "Device")["origin_errors"], 1);
}

#[test]
fn a_failure_is_remembered_for_the_negative_ttl_then_the_origin_is_asked_again() {
    let origin = Origin::start();
    origin.fail(503);
    let n = node(
        2,
        &[table(
            "Device",
            &origin,
            "expiration_ms = 60000\nnegative_ttl_ms = 1000",
        )],
    );
    assert_eq!(get(&n, "/Device/f1").status, 502);
    assert_eq!(get(&n, "/Device/f1").status, 502);
    assert_eq!(origin.calls(), 1, "the second read is answered from memory");
    origin.fail(0);
    sleep_ms(1200);
    assert_eq!(get(&n, "/Device/f1").status, 200);
    assert_eq!(origin.calls(), 2);
}

#[test]
fn an_origin_past_its_timeout_is_answered_504() {
    let origin = Origin::start();
    origin.hold();
    let n = node(
        2,
        &[table(
            "Device",
            &origin,
            "expiration_ms = 60000\ntimeout_ms = 300",
        )],
    );
    let started = Instant::now();
    let a = get(&n, "/Device/slow");
    assert_eq!(a.status, 504, "{}", a.body);
    // The origin holds the call for a minute; the timeout is 300 ms.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at the timeout, not when the origin let go"
    );
    assert_eq!(stats(&n, "Device")["timeouts"], 1);
}

#[test]
fn a_refill_of_a_stale_record_racing_a_newer_write_keeps_the_newer_write() {
    let origin = Origin::start();
    let n = node(2, &[table("Device", &origin, "expiration_ms = 300")]);
    assert_eq!(get(&n, "/Device/r1").body["v"], 0);
    sleep_ms(400);
    origin.hold();
    let url = n.url("/Device/r1");
    let reader = std::thread::spawn(move || request("GET", &url, None, None));
    origin.wait_calls(2);
    let put = request(
        "PUT",
        &n.url("/Device/r1"),
        None,
        Some(json!({ "name": "newer" })),
    );
    assert_eq!(put.status, 204, "{}", put.body);
    origin.release();
    let a = reader.join().unwrap();
    assert_eq!(
        (a.status, a.body["name"].clone()),
        (200, json!("newer")),
        "{}",
        a.body
    );
    assert_eq!(get(&n, "/Device/r1").body["name"], "newer");
    assert_eq!(stats(&n, "Device")["fills_discarded"], 1);
    assert_eq!(origin.calls(), 2);
}

#[test]
fn a_fill_of_a_missing_record_racing_a_newer_write_keeps_the_newer_write() {
    let origin = Origin::start();
    origin.hold();
    let n = node(2, &[table("Device", &origin, "expiration_ms = 60000")]);
    let url = n.url("/Device/r2");
    let reader = std::thread::spawn(move || request("GET", &url, None, None));
    origin.wait_calls(1);
    let put = request(
        "PUT",
        &n.url("/Device/r2"),
        None,
        Some(json!({ "name": "newer" })),
    );
    assert_eq!(put.status, 201, "{}", put.body);
    origin.release();
    let a = reader.join().unwrap();
    assert_eq!(
        (a.status, a.body["name"].clone()),
        (200, json!("newer")),
        "{}",
        a.body
    );
    assert_eq!(get(&n, "/Device/r2").body["name"], "newer");
}

#[test]
fn only_if_cached_serves_what_is_stored_and_answers_a_miss_504() {
    let origin = Origin::start();
    let n = node(2, &[table("Device", &origin, "expiration_ms = 300")]);
    let a = get_with(&n, "/Device/o1", "only-if-cached");
    assert_eq!(a.status, 504, "{}", a.body);
    assert_eq!(origin.calls(), 0);
    assert_eq!(get(&n, "/Device/o1").status, 200);
    sleep_ms(400);
    let a = get_with(&n, "/Device/o1", "only-if-cached");
    assert_eq!(
        (a.status, a.body["name"].clone()),
        (200, json!("o1")),
        "stale is served"
    );
    assert_eq!(origin.calls(), 1);
}

#[test]
fn no_cache_and_max_age_ask_the_origin_for_a_fresher_record() {
    let origin = Origin::start();
    let n = node(2, &[table("Device", &origin, "expiration_ms = 60000")]);
    assert_eq!(get(&n, "/Device/c1").body["v"], 0);
    origin.generation(1);
    assert_eq!(get(&n, "/Device/c1").body["v"], 0);
    assert_eq!(get_with(&n, "/Device/c1", "no-cache").body["v"], 1);
    assert_eq!(origin.calls(), 2);
    origin.generation(2);
    assert_eq!(get_with(&n, "/Device/c1", "max-age=3600").body["v"], 1);
    sleep_ms(1100);
    assert_eq!(get_with(&n, "/Device/c1", "max-age=1").body["v"], 2);
    assert_eq!(origin.calls(), 3);
}

#[test]
fn eviction_removes_a_record_after_expiration_and_eviction() {
    let origin = Origin::start();
    let n = node(
        2,
        &[table(
            "Device",
            &origin,
            "expiration_ms = 200\neviction_ms = 1500",
        )],
    );
    assert_eq!(get(&n, "/Device/v1").status, 200);
    sleep_ms(400);
    assert_eq!(
        get_with(&n, "/Device/v1", "only-if-cached").status,
        200,
        "stale, kept"
    );
    let until = Instant::now() + Duration::from_secs(15);
    while get_with(&n, "/Device/v1", "only-if-cached").status != 504 {
        assert!(Instant::now() < until, "never evicted");
        sleep_ms(50);
    }
    assert_eq!(stats(&n, "Device")["evicted"], 1);
    assert_eq!(origin.calls(), 1);
}

#[test]
fn origin_calls_past_the_shards_bound_are_answered_503_with_retry_after() {
    let origin = Origin::start();
    origin.hold();
    let n = node(
        1,
        &[table(
            "Device",
            &origin,
            "expiration_ms = 60000\nmax_fetches = 2",
        )],
    );
    let readers: Vec<_> = ["b1", "b2"]
        .into_iter()
        .map(|id| {
            let url = n.url(&format!("/Device/{id}"));
            std::thread::spawn(move || request("GET", &url, None, None))
        })
        .collect();
    origin.wait_calls(2);
    let a = get(&n, "/Device/b3");
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    origin.release();
    for r in readers {
        assert_eq!(r.join().unwrap().status, 200);
    }
    assert_eq!(origin.calls(), 2);
    assert_eq!(get(&n, "/Device/b3").status, 200, "room again");
}

#[test]
fn the_origins_404_is_answered_404_and_nothing_is_stored() {
    let origin = Origin::start();
    let n = node(2, &[table("Device", &origin, "expiration_ms = 60000")]);
    let a = get(&n, "/Device/missing-1");
    assert_eq!(a.status, 404, "{}", a.body);
    assert_eq!(
        get_with(&n, "/Device/missing-1", "only-if-cached").status,
        504
    );
    assert_eq!(origin.calls(), 1);
}

#[test]
fn a_function_source_fills_a_cache_that_a_component_reads_with_get_cached() {
    let n = node(2, &["name = \"Made\"\nexpiration_ms = 60000".to_string()]);
    let a = get(&n, "/via-ctx/Made/a");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["doc"]["made"], "a");
    assert_eq!(a.body["stale"], false);
    let first = a.body["doc"]["n"].clone();
    // A hit, through a component and through REST.
    assert_eq!(get(&n, "/via-ctx/Made/a").body["doc"]["n"], first);
    assert_eq!(get(&n, "/Made/a").body["n"], first);
    assert_eq!(get(&n, "/via-ctx/Made/none").status, 404);
    assert_eq!(get(&n, "/via-ctx/Made/boom").status, 502);
    // On a plain table, get_cached is get.
    request("PUT", &n.url("/Plain/p"), None, Some(json!({ "k": 1 })));
    assert_eq!(get(&n, "/via-ctx/Plain/p").body["doc"]["k"], 1);
}

#[test]
fn a_caching_table_without_a_usable_origin_is_refused_at_start() {
    let toml = "[components.caches]\n[[components.caches.table]]\nname = \"Bad\"\norigin = \"ftp://x/{id}\"\nexpiration_ms = 1000\n";
    let e = TestNode::start(vec![Arc::new(Caches)], toml).err().unwrap();
    assert!(
        e.contains("caching table \"Bad\"") && e.contains("http://"),
        "{e}"
    );
}
