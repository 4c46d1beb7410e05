//! Conditional writes are exact under a race. Every write of a record goes through its owner
//! shard's single writer, so two requests that race on one record must see some serial order,
//! even when they arrive on other shards than the owner:
//!
//! - two `PUT` with `If-None-Match: *` for a new id: exactly one creates it (201), the other
//!   is refused (412), and the record holds the winner's body;
//! - a `DELETE` racing a `PUT` with `If-Match: *` on an existing record: either the delete goes
//!   first (the put is refused with 412) or the put replaces the record (204, never 201) and
//!   the delete removes it afterwards. Either way the record is gone at the end: an
//!   `If-Match: *` put never recreates a record that a delete removed.
//!
//! Each round opens fresh keep-alive connections (the kernel spreads them over the two shards)
//! and warms them up, then a barrier releases both writes together.

mod common;
use common::*;
use std::sync::{Arc, Barrier};

const ROUNDS: usize = 100;

fn server() -> Server {
    Server::start(&format!("[shards]\ncount = 2\n\n{PRODUCT_TABLE}"))
}

/// A new agent whose pooled connection is already open: the write that follows the barrier
/// goes out on it without a connect.
fn warm_agent(s: &Server) -> ureq::Agent {
    let a = agent();
    assert_eq!(get(&a, &s.url("/health")).status, 200);
    a
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The clock of an ETag such as `"1a20f636c6d0000.1"` (README: the ETag is the record's
/// version, a hybrid-logical-clock value in hex, then the node).
fn version_clock(etag: &str) -> u64 {
    let t = etag.trim().trim_matches('"');
    let (clock, _node) = t
        .split_once('.')
        .unwrap_or_else(|| panic!("ETag {etag:?} is not clock.node"));
    u64::from_str_radix(clock, 16).unwrap_or_else(|e| panic!("ETag {etag:?}: {e}"))
}

/// Runs `a` and `b` on two threads released together by a barrier; returns both results.
fn race<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send + 'static,
    B: FnOnce() -> RB + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let ba = barrier.clone();
    let ta = std::thread::spawn(move || {
        ba.wait();
        a()
    });
    let tb = std::thread::spawn(move || {
        barrier.wait();
        b()
    });
    (ta.join().unwrap(), tb.join().unwrap())
}

#[test]
fn if_none_match_star_creates_exactly_once() {
    let s = server();
    let checker = agent();
    let mut winners = [0usize; 2];
    for round in 0..ROUNDS {
        let id = format!("inm-{round}");
        let url = s.url(&format!("/Product/{id}"));
        let bodies = [0, 1].map(|w| format!(r#"{{"id":"{id}","writer":{w},"round":{round}}}"#));
        let (a0, a1) = (warm_agent(&s), warm_agent(&s));
        let (u0, u1) = (url.clone(), url.clone());
        let (b0, b1) = (bodies[0].clone(), bodies[1].clone());
        let (r0, r1) = race(
            move || send(&a0, "PUT", &u0, Some(&b0), &[("If-None-Match", "*")]),
            move || send(&a1, "PUT", &u1, Some(&b1), &[("If-None-Match", "*")]),
        );
        let statuses = [r0.status, r1.status];
        let winner = match statuses {
            [201, 412] => 0,
            [412, 201] => 1,
            _ => panic!(
                "round {round}: two If-None-Match: * creates answered {statuses:?}, want one 201 \
                 and one 412\n0: {r0:?}\n1: {r1:?}"
            ),
        };
        winners[winner] += 1;
        let won = if winner == 0 { &r0 } else { &r1 };
        let stored = get(&checker, &url);
        assert_eq!(stored.status, 200, "round {round}: {stored:?}");
        assert_eq!(
            json(&stored.body),
            json(&bodies[winner]),
            "round {round}: the record holds the body of the write that got 201"
        );
        assert_eq!(
            stored.etag, won.etag,
            "round {round}: the record's version is the one the 201 announced"
        );
    }
    eprintln!("winners by thread: {winners:?}");
}

#[test]
fn if_match_star_put_never_recreates_a_deleted_record() {
    let s = server();
    let checker = agent();
    let mut orders = [0usize; 2]; // [delete first, put first]
    for round in 0..ROUNDS {
        let id = format!("im-{round}");
        let url = s.url(&format!("/Product/{id}"));
        let original = put(
            &checker,
            &url,
            &format!(r#"{{"id":"{id}","v":"original"}}"#),
        );
        assert_eq!(original.status, 201, "round {round}: {original:?}");
        let original_clock = version_clock(original.etag.as_deref().expect("ETag on 201"));
        let replacement = format!(r#"{{"id":"{id}","v":"replacement"}}"#);
        let (ad, ap) = (warm_agent(&s), warm_agent(&s));
        let (ud, up) = (url.clone(), url.clone());
        let (del, put_r) = race(
            move || send(&ad, "DELETE", &ud, None, &[]),
            move || send(&ap, "PUT", &up, Some(&replacement), &[("If-Match", "*")]),
        );
        let context = format!("round {round}\ndelete: {del:?}\nput: {put_r:?}");
        // The record existed and nothing else deletes it: the delete succeeds in both orders.
        assert_eq!(del.status, 200, "{context}");
        // A delete's ETag (the tombstone's version) is optional here; when given, it orders.
        let delete_clock = del.etag.as_deref().map(version_clock);
        match put_r.status {
            // Delete, then put: the record was gone, so If-Match: * refused the put.
            412 => orders[0] += 1,
            // Put, then delete: the put replaced the live record (never a create), and the
            // delete came after it in the writer's order, so its version is newer.
            204 => {
                orders[1] += 1;
                let put_clock = version_clock(put_r.etag.as_deref().expect("ETag on PUT 204"));
                assert!(
                    original_clock < put_clock && delete_clock.is_none_or(|d| put_clock < d),
                    "versions must follow original < put < delete: {original_clock:x} \
                     {put_clock:x} {delete_clock:x?}\n{context}"
                );
            }
            _ => panic!(
                "an If-Match: * put racing a delete must answer 204 (it went first) or 412 \
                 (it went second); 201 would mean it recreated the deleted record\n{context}"
            ),
        }
        assert!(
            delete_clock.is_none_or(|d| original_clock < d),
            "the delete's version is newer than the record it removed\n{context}"
        );
        let after = get(&checker, &url);
        assert_eq!(
            after.status, 404,
            "in both serial orders the record ends deleted; found {after:?}\n{context}"
        );
    }
    eprintln!("orders observed [delete first, put first]: {orders:?}");
}
