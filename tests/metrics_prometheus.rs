//! `/metrics`, read with an independent parser (`prometheus-parse`) and checked for the text
//! format's structure: request counters and latency histograms move by exactly the requests
//! made, writes reach the writer counters, MQTT publishes (rumqttc) count as messages in and a
//! subscription shows; once users exist `/metrics` needs credentials, and any user may scrape.

mod common;
use common::auth::*;
use common::mqtt::Client;
use common::*;
use prometheus_parse::{Scrape, Value};
use std::collections::HashSet;

/// Scrapes `/metrics` (with `authorization`, if given), checks its structure, and parses it.
fn scrape(a: &ureq::Agent, s: &Server, authorization: Option<&str>) -> Scrape {
    let r = call(a, "GET", &s.url("/metrics"), None, authorization);
    assert_eq!(r.status, 200, "{}", r.body);
    let ct = r.content_type.unwrap_or_default();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    check_families(&r.body);
    Scrape::parse(r.body.lines().map(|l| Ok(l.to_string()))).expect("parses")
}

/// Every sample belongs to the family the last `# TYPE` declared (histograms: its `_bucket`,
/// `_sum` and `_count`), and no family is declared twice.
fn check_families(text: &str) {
    let mut declared = HashSet::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(declared.insert(name.to_string()), "{name} declared twice");
            current = Some((name.to_string(), kind.to_string()));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap();
        let (family, kind) = current.as_ref().expect("a sample before any TYPE");
        let ok = match kind.as_str() {
            "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .any(|sfx| name.strip_suffix(sfx) == Some(family)),
            _ => name == family,
        };
        assert!(ok, "sample {name} outside its family {family}");
    }
}

/// The sum of a counter or gauge over the samples whose labels include `labels`.
fn sum(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    matching(s, metric, labels)
        .map(|v| match v {
            Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => *x,
            other => panic!("{metric} is not a number: {other:?}"),
        })
        .sum()
}

/// The total count of a histogram over the samples whose labels include `labels` (its `+Inf`
/// bucket).
fn histogram_count(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    matching(s, metric, labels)
        .map(|v| match v {
            Value::Histogram(b) => {
                let inf = b.iter().find(|c| c.less_than.is_infinite()).expect("+Inf");
                assert!(b.windows(2).all(|w| w[0].count <= w[1].count), "cumulative");
                inf.count
            }
            other => panic!("{metric} is not a histogram: {other:?}"),
        })
        .sum()
}

fn matching<'a>(
    s: &'a Scrape,
    metric: &'a str,
    labels: &'a [(&str, &str)],
) -> impl Iterator<Item = &'a Value> + 'a {
    s.samples
        .iter()
        .filter(move |x| x.metric == metric)
        .filter(move |x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| &x.value)
}

const RECORD_2XX: &[(&str, &str)] = &[("class", "record"), ("status", "2xx")];

#[test]
fn request_counters_and_histograms_move_by_the_requests_made() {
    let s = Server::start(&format!("[shards]\ncount = 2\n\n{PRODUCT_TABLE}"));
    let a = agent();
    let before = scrape(&a, &s, None);
    let n = 25;
    for i in 0..n {
        let r = put(
            &a,
            &s.url(&format!("/Product/p{i}")),
            r#"{"name":"x","price":1}"#,
        );
        assert!(r.status < 300, "{}", r.status);
    }
    for i in 0..n {
        assert_eq!(get(&a, &s.url(&format!("/Product/p{i}"))).status, 200);
    }
    assert_eq!(get(&a, &s.url("/Product/missing")).status, 404);
    let after = scrape(&a, &s, None);
    let moved = |m: &str, l: &[(&str, &str)]| sum(&after, m, l) - sum(&before, m, l);
    assert_eq!(
        moved("microlith_http_requests_total", RECORD_2XX),
        2.0 * n as f64
    );
    let not_found = [("class", "record"), ("status", "4xx")];
    assert_eq!(moved("microlith_http_requests_total", &not_found), 1.0);
    let record = [("class", "record")];
    let count = |s: &Scrape| histogram_count(s, "microlith_http_request_duration_seconds", &record);
    assert_eq!(count(&after) - count(&before), 2.0 * n as f64 + 1.0);
    assert_eq!(moved("microlith_writer_writes_total", &[]), n as f64);
    assert_eq!(sum(&after, "microlith_records", &[]), n as f64);
    assert!(histogram_count(&after, "microlith_writer_commit_seconds", &[]) >= 1.0);
    // Storage sizes per shard and keyspace (writes sit in the journal until a flush).
    for shard in ["0", "1"] {
        for keyspace in ["records", "index", "changelog", "mqtt", "journal"] {
            let labels = [("shard", shard), ("keyspace", keyspace)];
            assert_eq!(
                matching(&after, "microlith_storage_bytes", &labels).count(),
                1
            );
        }
    }
    assert!(
        sum(
            &after,
            "microlith_storage_bytes",
            &[("keyspace", "journal")]
        ) > 0.0
    );
    assert_eq!(sum(&after, "microlith_shards", &[]), 2.0);
    // The first scrape is counted too, as a status request.
    assert!(moved("microlith_http_requests_total", &[("class", "status")]) >= 1.0);
}

#[test]
fn mqtt_publishes_and_subscriptions_show() {
    let s = Server::start("[shards]\ncount = 2\n");
    let a = agent();
    let before = scrape(&a, &s, None);
    let mut sub = Client::v4(&s.mqtt_addr, "watcher", true);
    sub.sub("sensors/#", 1);
    let mut publisher = Client::v4(&s.mqtt_addr, "publisher", true);
    let k = 7;
    for i in 0..k {
        publisher.publish(&format!("sensors/{i}"), 1, false, b"21.5");
    }
    for _ in 0..k {
        sub.expect();
    }
    let after = scrape(&a, &s, None);
    let moved = |m: &str| sum(&after, m, &[]) - sum(&before, m, &[]);
    assert_eq!(moved("microlith_mqtt_messages_in_total"), k as f64);
    assert_eq!(moved("microlith_mqtt_messages_out_total"), k as f64);
    assert_eq!(sum(&after, "microlith_mqtt_connections", &[]), 2.0);
    assert_eq!(sum(&after, "microlith_mqtt_sessions", &[]), 2.0);
    assert_eq!(sum(&after, "microlith_mqtt_subscriptions", &[]), 1.0);
    assert_eq!(
        sum(&after, "microlith_mqtt_messages_dropped_total", &[]),
        0.0
    );
}

#[test]
fn with_users_any_user_may_scrape_and_strangers_may_not() {
    let s = Server::start(PRODUCT_TABLE);
    let a = agent();
    create_admin(&a, &s);
    put_role(
        &a,
        &s,
        "reader",
        serde_json::json!({ "Product": { "read": true } }),
        serde_json::json!([]),
    );
    create_user(&a, &s, "monitor", "monitor-password", &["reader"]);
    let anonymous = call(&a, "GET", &s.url("/metrics"), None, None);
    assert_eq!(anonymous.status, 401);
    let wrong = basic("monitor", "not-the-password");
    assert_eq!(
        call(&a, "GET", &s.url("/metrics"), None, Some(&wrong)).status,
        401
    );
    let monitor = basic("monitor", "monitor-password");
    let scraped = scrape(&a, &s, Some(&monitor));
    // The refused scrapes were counted as 4xx status requests.
    let refused = [("class", "status"), ("status", "4xx")];
    assert_eq!(
        sum(&scraped, "microlith_http_requests_total", &refused),
        2.0
    );
    let token = login_token(&a, &s, "monitor", "monitor-password");
    scrape(&a, &s, Some(&format!("Bearer {token}")));
}

/// A bearer token for `user`.
fn login_token(a: &ureq::Agent, s: &Server, user: &str, password: &str) -> String {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    let r = send(
        a,
        "POST",
        &s.url("/auth/login"),
        Some(&body),
        &[("Content-Type", "application/json")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    v["access_token"].as_str().unwrap().to_string()
}
