//! Shared subscriptions (`$share/{group}/{filter}`, MQTT 5.0 §4.8.2): each message goes to one
//! member of the group, across shards, in even shares, while plain subscribers still get every message; a
//! member that disconnects before acknowledging hands its messages to another member; record
//! changes of a table topic go to one member each too; the
//! rules for making one (no retained messages, No Local refused, a valid group name).

mod common;
use common::mqtt::{pkt, Client, Raw, WAIT};
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn server() -> Server {
    Server::start(&format!("[shards]\ncount = 2\n{PRODUCT_TABLE}"))
}

/// Publishes `n` numbered QoS 1 messages to `topic`.
fn publish_numbered(s: &Server, topic: &str, n: usize) {
    let mut p = Client::v5(&s.mqtt_addr, "shared-pub", true);
    for i in 0..n {
        p.publish(topic, 1, false, i.to_string().as_bytes());
    }
}

/// Everything a client receives until it has been quiet for a second.
fn drain(c: &mut Client) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(m) = c.recv(Duration::from_secs(1)) {
        got.push(m.text());
    }
    got
}

/// What the members got: how often each payload came, and how many each member got.
fn shares(members: &mut [Client]) -> (BTreeMap<String, usize>, Vec<usize>) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_member = Vec::new();
    for m in members {
        let got = drain(m);
        per_member.push(got.len());
        for g in got {
            *seen.entry(g).or_default() += 1;
        }
    }
    (seen, per_member)
}

#[test]
fn each_message_goes_to_one_member_of_the_group_and_to_every_plain_subscriber() {
    let s = server();
    // Four members (their sessions live on both shards) and one plain subscriber.
    let mut members: Vec<Client> = (0..4)
        .map(|i| Client::v5(&s.mqtt_addr, &format!("worker-{i}"), true))
        .collect();
    for m in &mut members {
        assert_eq!(m.sub("$share/workers/jobs/+", 1), vec![1]);
    }
    let mut plain = Client::v5(&s.mqtt_addr, "audit", true);
    plain.sub("jobs/#", 1);
    publish_numbered(&s, "jobs/a", 200);
    let (seen, per_member) = shares(&mut members);
    assert_eq!(seen.len(), 200, "every message reached the group");
    assert!(
        seen.values().all(|n| *n == 1),
        "no message reached two members"
    );
    assert!(
        per_member.iter().all(|n| *n > 0),
        "every member took a share: {per_member:?}"
    );
    assert_eq!(
        drain(&mut plain).len(),
        200,
        "the plain subscriber got everything"
    );
}

#[test]
fn each_record_change_goes_to_one_member_of_a_group_on_a_table_topic() {
    let s = server();
    let mut members: Vec<Client> = (0..3)
        .map(|i| Client::v5(&s.mqtt_addr, &format!("orders-{i}"), true))
        .collect();
    for m in &mut members {
        m.sub("$share/fulfil/Product/+", 1);
    }
    let a = agent();
    for i in 0..60 {
        let r = put(
            &a,
            &s.url(&format!("/Product/r{i}")),
            &format!(r#"{{"n":{i}}}"#),
        );
        assert_eq!(r.status / 100, 2);
    }
    let (seen, per_member) = shares(&mut members);
    assert_eq!(
        seen.len(),
        60,
        "every change reached the group: {per_member:?}"
    );
    assert!(
        seen.values().all(|n| *n == 1),
        "no change reached two members"
    );
    assert!(
        per_member.iter().filter(|n| **n > 0).count() >= 2,
        "{per_member:?}"
    );
}

#[test]
fn two_groups_on_one_filter_each_get_every_message_once() {
    let s = server();
    let mut a: Vec<Client> = (0..2)
        .map(|i| Client::v5(&s.mqtt_addr, &format!("a-{i}"), true))
        .collect();
    let mut b = Client::v5(&s.mqtt_addr, "b-0", true);
    for c in &mut a {
        c.sub("$share/a/t/#", 0);
    }
    b.sub("$share/b/t/#", 0);
    publish_numbered(&s, "t/x", 50);
    let a_total: usize = a.iter_mut().map(|c| drain(c).len()).sum();
    assert_eq!(a_total, 50);
    assert_eq!(drain(&mut b).len(), 50);
}

#[test]
fn a_member_that_disconnects_hands_its_unacknowledged_messages_to_another() {
    let s = server();
    // A raw member that reads its messages but never acknowledges them.
    let mut silent = Raw::connect(&s.mqtt_addr);
    silent.send(&pkt::connect5("silent", true, 30, &[], None));
    silent.packet(WAIT).expect("a CONNACK");
    silent.send(&pkt::subscribe(5, 1, "$share/g/work/#", 1));
    silent.packet_of(9, WAIT).expect("a SUBACK");
    let mut steady = Client::v5(&s.mqtt_addr, "steady", true);
    steady.sub("$share/g/work/#", 1);
    publish_numbered(&s, "work/1", 40);
    // The silent member got its share (some sent, some still queued behind them).
    let first = silent
        .packet_of(3, WAIT)
        .expect("the silent member got a message");
    let (_, payload, _, _, _) = pkt::parse_publish(&first, 5);
    let taken = String::from_utf8(payload).unwrap();
    drop(silent);
    let mut all: BTreeSet<String> = drain(&mut steady).into_iter().collect();
    // Whatever went to the silent member comes to the steady one once it is gone.
    for m in drain(&mut steady) {
        all.insert(m);
    }
    assert!(all.contains(&taken), "message {taken} was handed over");
    assert_eq!(
        all.len(),
        40,
        "every message was completed by a member: {all:?}"
    );
    let st = get(&agent(), &s.url("/status")).json();
    assert!(
        st["mqtt"]["shared_handed_over"].as_u64().unwrap() > 0,
        "{}",
        st["mqtt"]
    );
}

#[test]
fn a_shared_subscription_gets_no_retained_messages_when_made() {
    let s = server();
    let mut p = Client::v5(&s.mqtt_addr, "ret-pub", true);
    p.publish("ret/t", 1, true, b"kept");
    let mut plain = Client::v5(&s.mqtt_addr, "ret-plain", true);
    plain.sub("ret/t", 1);
    assert_eq!(plain.expect().text(), "kept");
    let mut member = Client::v5(&s.mqtt_addr, "ret-member", true);
    member.sub("$share/g/ret/t", 1);
    assert!(member.recv(Duration::from_millis(500)).is_none());
    p.publish("ret/t", 1, false, b"live");
    assert_eq!(member.expect().text(), "live");
}

#[test]
fn malformed_shared_subscriptions_are_refused() {
    let s = server();
    // No filter after the group, or a wildcard in the group name.
    let mut c = Raw::connect(&s.mqtt_addr);
    c.send(&pkt::connect5("bad-share", true, 30, &[], None));
    c.packet(WAIT).expect("a CONNACK");
    for (pkid, filter) in [(1, "$share/g"), (2, "$share/g+/t")] {
        c.send(&pkt::subscribe(5, pkid, filter, 1));
        let ack = c.packet_of(9, WAIT).expect("a SUBACK");
        assert_eq!(ack.last(), Some(&0x8F), "{filter}: {ack:?}");
    }
    // No Local on a shared subscription is a protocol error (§3.8.3.1).
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("nolocal-share", true, 30, &[], None));
    r.packet(WAIT).expect("a CONNACK");
    r.send(&pkt::subscribe5(1, "$share/g/t", 0b0000_0101, &[]));
    let got = r.until_closed(WAIT);
    assert_eq!(
        got.last().map(|p| (p[0], p[2])),
        Some((0xE0, 0x82)),
        "DISCONNECT 0x82"
    );
}

#[test]
fn connack_says_shared_subscriptions_are_available() {
    let s = server();
    let mut r = Raw::connect(&s.mqtt_addr);
    r.send(&pkt::connect5("ask", true, 30, &[], None));
    let ack = r.packet(WAIT).expect("a CONNACK");
    let props = pkt::connack_props(&ack);
    // Shared Subscription Available (0x2A) is absent (meaning 1) or 1.
    assert!(
        props.iter().all(|(id, v)| *id != 0x2A || *v == 1),
        "{props:?}"
    );
}

#[test]
fn a_3_1_1_client_can_be_a_member_too() {
    let s = server();
    let mut old = Client::v4(&s.mqtt_addr, "old-member", true);
    let mut new = Client::v5(&s.mqtt_addr, "new-member", true);
    assert_eq!(old.sub("$share/mixed/m/#", 1), vec![1]);
    new.sub("$share/mixed/m/#", 1);
    publish_numbered(&s, "m/x", 30);
    let (a, b) = (drain(&mut old), drain(&mut new));
    assert_eq!(a.len() + b.len(), 30);
    let all: BTreeSet<String> = a.into_iter().chain(b).collect();
    assert_eq!(all.len(), 30);
}
