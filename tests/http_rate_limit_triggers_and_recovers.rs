//! The HTTP request rate per client address: past its burst an address gets 429 with
//! `Retry-After` and a problem document, other addresses are served meanwhile, and the address
//! is served again once the bucket has a token. When the shard tracks as many addresses as
//! `limits.max_tracked`, a new address shares one overflow bucket with the other newcomers
//! while the known ones keep their own.

mod common;
use common::raw_http::{Answer, Http};
use common::*;
use std::time::{Duration, Instant};

/// Requests from 127.0.0.9 are exempt: the test reads `/status` from there.
const LIMITS: &str = "[shards]\ncount = 1\n[limits]\nexempt = [\"127.0.0.9\"]\n";

fn limits_status(s: &Server) -> serde_json::Value {
    Http::connect_from("127.0.0.9", &s.addr)
        .get("/status")
        .unwrap()
        .json()["limits"]
        .clone()
}

fn get_from(c: &mut Http) -> Answer {
    c.get("/Product/1").expect("an answer")
}

#[test]
fn http_requests_past_the_rate_get_429_with_retry_after_then_recover() {
    let s = Server::start(&format!(
        "{PRODUCT_TABLE}\n{LIMITS}http_requests_per_sec = 1\nhttp_burst = 3\n"
    ));
    let mut c = Http::connect_from("127.0.0.1", &s.addr);
    for i in 0..3 {
        assert_eq!(
            get_from(&mut c).status,
            404,
            "request {i} is within the burst"
        );
    }
    let a = get_from(&mut c);
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    assert_eq!(a.json()["status"], 429);
    assert!(a.body.contains("http_requests_per_sec"), "{}", a.body);
    // Another address has its own bucket.
    let mut other = Http::connect_from("127.0.0.2", &s.addr);
    assert_eq!(get_from(&mut other).status, 404);
    // A new connection from the same address does not start over.
    assert_eq!(
        get_from(&mut Http::connect_from("127.0.0.1", &s.addr)).status,
        429
    );
    // After Retry-After the address is served again (bounded wait for the event).
    std::thread::sleep(Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = get_from(&mut c);
        if a.status == 404 {
            break;
        }
        assert_eq!(a.status, 429);
        assert!(
            Instant::now() < deadline,
            "not served again after the window"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = limits_status(&s);
    assert!(st["http_requests_refused"].as_u64().unwrap() >= 2, "{st}");
    assert_eq!(st["tracked_ips"], serde_json::json!([2]), "{st}");
}

#[test]
fn a_full_address_map_makes_new_addresses_share_the_overflow_bucket() {
    // One tracked address per shard; buckets of 10 that refill in 10 s, so nothing refills
    // during the test and the map stays full.
    let s = Server::start(&format!(
        "{PRODUCT_TABLE}\n{LIMITS}http_requests_per_sec = 1\nhttp_burst = 10\nmax_tracked = 1\n"
    ));
    let mut known = Http::connect_from("127.0.0.1", &s.addr);
    for _ in 0..5 {
        assert_eq!(get_from(&mut known).status, 404);
    }
    // The map is full: 127.0.0.2 and 127.0.0.3 share one bucket of 10.
    let mut a = Http::connect_from("127.0.0.2", &s.addr);
    let mut b = Http::connect_from("127.0.0.3", &s.addr);
    let mut served = 0;
    loop {
        let c = if served % 2 == 0 { &mut a } else { &mut b };
        match get_from(c).status {
            404 => served += 1,
            429 => break,
            other => panic!("status {other}"),
        }
        assert!(served <= 20, "the newcomers are not limited together");
    }
    assert!(served >= 10, "the shared bucket held its burst: {served}");
    let other = if served % 2 == 0 { &mut b } else { &mut a };
    assert_eq!(
        get_from(other).status,
        429,
        "the other newcomer finds it empty too"
    );
    // The known address still has its own bucket.
    assert_eq!(get_from(&mut known).status, 404);
    let st = limits_status(&s);
    assert!(st["overflow_requests"].as_u64().unwrap() >= 12, "{st}");
    assert!(st["http_requests_refused"].as_u64().unwrap() >= 2, "{st}");
    assert_eq!(
        st["tracked_ips"],
        serde_json::json!([1]),
        "the map never grows: {st}"
    );
}
