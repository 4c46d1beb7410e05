//! MQTT under users and roles: CONNECT checks the user name and password (3.1.1 return codes,
//! 5.0 reason codes), SUBSCRIBE and PUBLISH follow the roles' topic rules, a table's topics
//! follow the table's permissions, and a connection whose user is removed is ended. Driven
//! with rumqttc and a raw client that shares nothing with the server's codec.

mod common;

use common::auth::{as_admin, create_admin, create_user, put_role};
use common::mqtt::{pkt, Client, Got, Raw};
use common::{agent, Server, PRODUCT_TABLE};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// Roles: `sensor` publishes under `sensors/` and subscribes under `alerts/`; `reader` reads
/// Product; `writer` inserts and updates Product. One user per role, password
/// `{name}-password`; the super-user is `admin`.
fn server() -> (Server, ureq::Agent) {
    let s = Server::start(&format!("[shards]\ncount = 2\n\n{PRODUCT_TABLE}"));
    let a = agent();
    create_admin(&a, &s);
    let sensor_topics = json!([
        { "filter": "sensors/#", "publish": true },
        { "filter": "alerts/#", "subscribe": true },
        { "filter": "+/status", "subscribe": true }
    ]);
    put_role(&a, &s, "sensor", json!({}), sensor_topics);
    put_role(
        &a,
        &s,
        "reader",
        json!({ "Product": { "read": true } }),
        json!([]),
    );
    let writer = json!({ "Product": { "insert": true, "update": true } });
    put_role(&a, &s, "writer", writer, json!([]));
    for name in ["sensor", "reader", "writer"] {
        create_user(&a, &s, name, &format!("{name}-password"), &[name]);
    }
    (s, a)
}

fn login(o4: &mut rumqttc::MqttOptions, user: &str) {
    o4.set_credentials(user, format!("{user}-password"));
}

fn v4(s: &Server, id: &str, user: &str) -> Client {
    Client::v4_with(&s.mqtt_addr, id, true, |o| login(o, user))
}

fn v5(s: &Server, id: &str, user: &str) -> Client {
    Client::v5_with(&s.mqtt_addr, id, true, |o| {
        o.set_credentials(user, format!("{user}-password"));
    })
}

/// The CONNACK code (3.1.1 return code or 5.0 reason code) a raw CONNECT gets.
fn connack_code(s: &Server, level: u8, user: Option<&str>, password: Option<&str>) -> u8 {
    let mut raw = Raw::connect(&s.mqtt_addr);
    raw.send(&pkt::connect_login(level, "raw", user, password));
    let ack = raw.packet_of(2, WAIT).expect("a CONNACK");
    ack[3]
}

/// A raw 5.0 connection logged in as `user`, CONNACK read.
fn raw5(s: &Server, id: &str, user: &str) -> Raw {
    let mut raw = Raw::connect(&s.mqtt_addr);
    let password = format!("{user}-password");
    raw.send(&pkt::connect_login(5, id, Some(user), Some(&password)));
    let ack = raw.packet_of(2, WAIT).expect("a CONNACK");
    assert_eq!(ack[3], 0, "{user} connects");
    raw
}

/// The reason code of the PUBACK a raw 5.0 QoS 1 publish gets.
fn puback_reason(raw: &mut Raw, topic: &str, retain: bool, payload: &[u8], pkid: u16) -> u8 {
    raw.send(&pkt::publish(5, topic, 1, pkid, payload, retain, false));
    let ack = raw.packet_of(pkt::PUBACK, WAIT).expect("a PUBACK");
    assert_eq!(u16::from_be_bytes([ack[2], ack[3]]), pkid);
    // A 5.0 PUBACK without a reason code means success.
    ack.get(4).copied().unwrap_or(0)
}

#[test]
fn connect_without_a_user_or_with_a_wrong_password_is_refused() {
    let (s, _a) = server();
    assert_eq!(connack_code(&s, 4, None, None), 5, "3.1.1: not authorized");
    assert_eq!(connack_code(&s, 5, None, None), 0x87, "5.0: not authorized");
    let wrong = Some("nope");
    assert_eq!(
        connack_code(&s, 4, Some("sensor"), wrong),
        4,
        "3.1.1: bad password"
    );
    assert_eq!(
        connack_code(&s, 5, Some("sensor"), wrong),
        0x86,
        "5.0: bad password"
    );
    assert_eq!(
        connack_code(&s, 5, Some("ghost"), wrong),
        0x86,
        "unknown user"
    );
    let right = Some("sensor-password");
    assert_eq!(connack_code(&s, 4, Some("sensor"), right), 0);
    assert_eq!(connack_code(&s, 5, Some("sensor"), right), 0);
    v4(&s, "c4", "sensor").disconnect();
    v5(&s, "c5", "sensor").disconnect();
    let status = common::auth::as_admin(&agent(), "GET", &s.url("/status"), None);
    let refused = status.json()["mqtt"]["connects_unauthorized"].as_u64();
    assert_eq!(refused, Some(5), "{}", status.body);
}

#[test]
fn a_will_the_user_may_not_publish_refuses_the_connect() {
    let (s, _a) = server();
    let mut raw = Raw::connect(&s.mqtt_addr);
    let mut c = pkt::connect(4, "w", true, 30, Some(("other/gone", b"bye", 0, false)));
    // Add the user name and password flags and fields to the hand-made CONNECT.
    c[9] |= 0xC0;
    c.extend_from_slice(&[0, 6]);
    c.extend_from_slice(b"sensor");
    c.extend_from_slice(&[0, 15]);
    c.extend_from_slice(b"sensor-password");
    c[1] = (c.len() - 2) as u8;
    raw.send(&c);
    let ack = raw.packet_of(2, WAIT).expect("a CONNACK");
    assert_eq!(ack[3], 5, "not authorized");
}

#[test]
fn subscriptions_follow_topic_rules_with_0x80_and_0x87_for_refused_filters() {
    let (s, _a) = server();
    let mut c5 = v5(&s, "s5", "sensor");
    assert_eq!(c5.sub("alerts/#", 1), vec![1]);
    assert_eq!(c5.sub("alerts/fire", 0), vec![0], "a narrower filter");
    assert_eq!(c5.sub("sensors/#", 1), vec![0x87], "publish only");
    assert_eq!(c5.sub("#", 0), vec![0x87], "wider than the rule");
    // `+/status` may match a table's topics (`Product/status`): it needs read on every table.
    assert_eq!(c5.sub("+/status", 0), vec![0x87]);
    let mut c4 = v4(&s, "s4", "sensor");
    assert_eq!(c4.sub("sensors/#", 1), vec![0x80], "3.1.1 failure code");
    assert_eq!(c4.sub("alerts/#", 1), vec![1]);
    // What was granted works: the super-user publishes, both subscribers get it.
    let mut admin = Client::v4_with(&s.mqtt_addr, "adm", true, |o| {
        o.set_credentials("admin", "admin-password");
    });
    admin.publish("alerts/fire", 1, false, b"hot");
    assert_eq!(c5.expect().text(), "hot");
    assert_eq!(c4.expect().text(), "hot");
}

#[test]
fn publishes_follow_topic_rules_refused_ones_are_dropped_or_answered_0x87() {
    let (s, _a) = server();
    let mut watcher = Client::v4_with(&s.mqtt_addr, "watch", true, |o| {
        o.set_credentials("admin", "admin-password");
    });
    assert_eq!(watcher.sub("#", 1), vec![1]);
    let mut raw = raw5(&s, "p5", "sensor");
    assert_eq!(puback_reason(&mut raw, "sensors/t1", false, b"21", 1), 0);
    assert_eq!(watcher.expect().topic, "sensors/t1");
    assert_eq!(puback_reason(&mut raw, "alerts/fake", false, b"x", 2), 0x87);
    // QoS 0, refused: dropped without a word. 3.1.1 QoS 1, refused: acknowledged (3.1.1 has no
    // negative PUBACK) and dropped.
    raw.send(&pkt::publish(5, "alerts/fake0", 0, 0, b"x", false, false));
    let mut c4 = v4(&s, "p4", "sensor");
    c4.publish("alerts/fake1", 1, false, b"x");
    c4.publish("sensors/t2", 1, false, b"22");
    let next = watcher.expect();
    assert_eq!(
        (next.topic.as_str(), next.text().as_str()),
        ("sensors/t2", "22")
    );
    assert!(watcher.recv(Duration::from_millis(300)).is_none());
    let status = as_admin(&agent(), "GET", &s.url("/status"), None);
    let refused = status.json()["mqtt"]["publishes_unauthorized"].as_u64();
    assert_eq!(refused, Some(3), "{}", status.body);
}

#[test]
fn table_topics_follow_table_permissions() {
    let (s, a) = server();
    as_admin(
        &a,
        "PUT",
        &s.url("/Product/p1"),
        Some(json!({"name": "lamp"})),
    );
    // Reading: a subscription to a table's topics needs read; the reader gets the record.
    let mut reader = v5(&s, "r", "reader");
    assert_eq!(reader.sub("Product/#", 1), vec![1]);
    assert_eq!(reader.expect().topic, "Product/p1");
    let mut sensor = v5(&s, "s", "sensor");
    assert_eq!(sensor.sub("Product/p1", 0), vec![0x87]);
    // Writing: a retained publish writes the record and needs insert or update.
    let mut raw_reader = raw5(&s, "rr", "reader");
    let doc = br#"{"name":"chair"}"#;
    assert_eq!(
        puback_reason(&mut raw_reader, "Product/p2", true, doc, 1),
        0x87
    );
    let missing = as_admin(&a, "GET", &s.url("/Product/p2"), None);
    assert_eq!(missing.status, 404, "nothing written");
    let mut raw_writer = raw5(&s, "rw", "writer");
    assert_eq!(
        puback_reason(&mut raw_writer, "Product/p2", true, doc, 1),
        0
    );
    let written = as_admin(&a, "GET", &s.url("/Product/p2"), None);
    assert_eq!(written.json()["name"], "chair");
    assert_eq!(
        reader.expect().topic,
        "Product/p2",
        "the reader hears of it"
    );
    // Deleting (an empty retained payload) needs delete, which the writer lacks.
    assert_eq!(
        puback_reason(&mut raw_writer, "Product/p2", true, b"", 2),
        0x87
    );
    assert_eq!(as_admin(&a, "GET", &s.url("/Product/p2"), None).status, 200);
}

#[test]
fn a_removed_user_is_disconnected_with_0x87() {
    let (s, a) = server();
    let mut c5 = v5(&s, "gone", "sensor");
    assert_eq!(c5.sub("alerts/#", 0), vec![0]);
    let r = as_admin(&a, "DELETE", &s.url("/admin/users/sensor"), None);
    assert!(matches!(r.status, 200 | 204), "{} {}", r.status, r.body);
    // The next thing the connection does (here: a message for it) finds its user gone.
    let mut admin = Client::v5_with(&s.mqtt_addr, "adm", true, |o| {
        o.set_credentials("admin", "admin-password");
    });
    admin.publish("alerts/x", 1, false, b"secret");
    let ended = c5.next_where(WAIT, |g| {
        matches!(g, Got::Disconnect(_) | Got::Publish(_) | Got::Error(_))
    });
    // rumqttc reports a DISCONNECT from the server as an error that names its reason code.
    let reason_0x87 = match &ended {
        Some(Got::Disconnect(code)) => *code == 0x87,
        Some(Got::Error(e)) => e.contains("code 'NotAuthorized'"),
        _ => false,
    };
    assert!(reason_0x87, "{ended:?}");
    assert_eq!(
        connack_code(&s, 5, Some("sensor"), Some("sensor-password")),
        0x86
    );
}

#[test]
fn a_role_that_loses_a_topic_ends_connections_that_hold_it() {
    let (s, a) = server();
    let mut c4 = v4(&s, "held", "sensor");
    assert_eq!(c4.sub("alerts/#", 0), vec![0]);
    put_role(
        &a,
        &s,
        "sensor",
        json!({}),
        json!([{ "filter": "sensors/#", "publish": true }]),
    );
    let mut admin = Client::v4_with(&s.mqtt_addr, "adm", true, |o| {
        o.set_credentials("admin", "admin-password");
    });
    admin.publish("alerts/x", 1, false, b"secret");
    assert!(c4.recv(Duration::from_secs(2)).is_none(), "not delivered");
    // The sensor can still connect and publish; the subscription is refused now.
    let mut again = v4(&s, "again", "sensor");
    assert_eq!(again.sub("alerts/#", 0), vec![0x80]);
}

#[test]
fn users_authenticate_inside_tls_on_https_and_mqtts() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::tls::Ca::new(dir.path(), "ca");
    let cert = ca.issue("node", "microlith-test");
    let tls = common::tls::section(&cert, None);
    let s = Server::start(&format!("{PRODUCT_TABLE}\n{tls}"));
    let (https, mqtts) = (
        s.ready_field("https").unwrap(),
        s.ready_field("mqtts").unwrap(),
    );
    create_admin(&agent(), &s);
    create_user(&agent(), &s, "dev", "dev-password", &[]);
    // HTTPS: Basic inside TLS.
    let tls_agent = common::tls::agent(&ca.pem);
    let url = format!(
        "https://localhost:{}/status",
        https.rsplit_once(':').unwrap().1
    );
    let anonymous = tls_agent.get(&url).call();
    assert!(
        matches!(anonymous, Err(ureq::Error::Status(401, _))),
        "{anonymous:?}"
    );
    let basic = common::auth::basic("dev", "dev-password");
    let ok = tls_agent.get(&url).set("Authorization", &basic).call();
    assert_eq!(ok.map(|r| r.status()).ok(), Some(200));
    // MQTT over TLS: the CONNECT's credentials.
    let mut o = common::tls::mqtt_options(&mqtts, &ca.pem, "dev-tls");
    o.set_credentials("dev", "dev-password");
    let mut dev = Client::v4_opts(o);
    assert_eq!(dev.sub("anything/#", 0), vec![0x80], "no topic rule");
    let mut o = common::tls::mqtt_options(&mqtts, &ca.pem, "admin-tls");
    o.set_credentials("admin", "admin-password");
    let mut admin = Client::v4_opts(o);
    assert_eq!(admin.sub("anything/#", 0), vec![0]);
}

#[test]
fn a_client_certificate_names_the_user_on_https_and_mqtts() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::tls::Ca::new(dir.path(), "ca");
    let node = ca.issue("node", "microlith-test");
    let clients = common::tls::Ca::new(dir.path(), "clients");
    let dev = clients.issue("dev-cert", "dev");
    let stranger = clients.issue("stranger-cert", "nobody");
    let section = common::tls::section(&node, None);
    let client_ca = format!("client_ca_file = {:?}\n", clients.pem.display().to_string());
    let s = Server::start(&format!("{PRODUCT_TABLE}\n{section}{client_ca}"));
    let (https, mqtts) = (
        s.ready_field("https").unwrap(),
        s.ready_field("mqtts").unwrap(),
    );
    let a = agent();
    create_admin(&a, &s);
    put_role(
        &a,
        &s,
        "reader",
        json!({ "Product": { "read": true } }),
        json!([]),
    );
    create_user(&a, &s, "dev", "dev-password", &["reader"]);
    let port = https.rsplit_once(':').unwrap().1;
    let url = format!("https://localhost:{port}/Product/");
    let as_cert = |cert: &common::tls::Issued| {
        let config = common::tls::client_config_presenting(&ca.pem, cert);
        let agent = ureq::AgentBuilder::new().tls_config(config).build();
        match agent.get(&url).call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    // HTTPS: the certificate's user, with its permissions; a certificate naming no user is
    // refused; without a certificate, credentials as usual.
    assert_eq!(as_cert(&dev), 200);
    assert_eq!(as_cert(&stranger), 401);
    let plain = common::tls::agent(&ca.pem).get(&url).call();
    assert!(
        matches!(plain, Err(ureq::Error::Status(401, _))),
        "{plain:?}"
    );
    // MQTT over TLS: a CONNECT without a user name is the certificate's user.
    let mqtt_as = |cert: &common::tls::Issued, id: &str| {
        let mut o = common::tls::mqtt_options(&mqtts, &ca.pem, id);
        let config = common::tls::client_config_presenting(&ca.pem, cert);
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        ));
        o
    };
    let mut c = Client::v4_opts(mqtt_as(&dev, "dev-by-cert"));
    assert_eq!(c.sub("Product/#", 0), vec![0], "the reader's table");
    assert_eq!(c.sub("other/#", 0), vec![0x80]);
    match Client::try_v4_opts(mqtt_as(&stranger, "nobody-by-cert")).map_err(|g| *g) {
        Err(Got::Error(e)) => assert!(e.contains("BadUserNamePassword"), "{e}"),
        Err(other) => panic!("refused otherwise: {other:?}"),
        Ok(_) => panic!("a certificate naming no user connected"),
    }
}
