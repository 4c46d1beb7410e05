//! The in-test broker silently drops one publication (or duplicates one): loadgen's
//! per-publisher sequence numbers expose it as exactly one lost (or duplicated) message.

mod common;
use common::*;

fn run(opts: MqttOpts, name: &str, extra: &[&str]) -> serde_json::Value {
    let broker = MqttBroker::start(opts);
    let dir = out_dir(name);
    let addr = broker.addr.to_string();
    let mut args = vec![
        "mqtt",
        "--broker",
        &addr,
        "--publishers",
        "2",
        "--subscribers",
        "2",
        "--rate",
        "400",
        "--duration",
        "1s",
        "--warmup",
        "100ms",
        "--drain",
        "1s",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = loadgen(&args);
    assert!(o.status.success(), "{}", text(&o));
    result(&dir)
}

#[test]
fn dropped_qos0_message_is_counted_as_lost() {
    let r = run(
        MqttOpts {
            drop_nth: Some(100),
            ..Default::default()
        },
        "drop",
        &["--qos", "0"],
    );
    let q = &r["mqtt"]["per_qos"]["qos0"];
    // One publication dropped before fan-out to 2 subscribers: 2 deliveries missing.
    assert_eq!(q["lost"], 2, "{r}");
    assert_eq!(q["duplicated"], 0);
    assert_eq!(
        q["expected"].as_u64().unwrap(),
        q["delivered"].as_u64().unwrap() + 2
    );
    assert_eq!(
        q["expected"].as_u64().unwrap(),
        2 * q["published"].as_u64().unwrap()
    );
    assert!(r["latency_us"]["p99"].as_f64().unwrap() > 0.0);
}

#[test]
fn duplicated_qos1_message_is_counted_once_as_duplicate_in_v5() {
    let r = run(
        MqttOpts {
            dup_nth: Some(50),
            ..Default::default()
        },
        "dup",
        &["--qos", "1", "--protocol", "5"],
    );
    let q = &r["mqtt"]["per_qos"]["qos1"];
    assert_eq!(q["duplicated"], 2, "{r}");
    assert_eq!(q["lost"], 0, "{r}");
    assert_eq!(q["published"], q["acknowledged"], "{r}");
    assert_eq!(r["mqtt"]["protocol"], "5.0");
}

#[test]
fn qos2_closed_loop_fan_in_delivers_everything() {
    let broker = MqttBroker::start(MqttOpts::default());
    let dir = out_dir("qos2");
    let addr = broker.addr.to_string();
    let o = loadgen(&[
        "mqtt",
        "--broker",
        &addr,
        "--publishers",
        "3",
        "--subscribers",
        "1",
        "--qos",
        "2",
        "--requests",
        "600",
        "--duration",
        "5s",
        "--warmup",
        "0s",
        "--topics-per-pub",
        "2",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r = result(&dir);
    let q = &r["mqtt"]["per_qos"]["qos2"];
    assert_eq!(q["published"], 600, "{r}");
    assert_eq!(q["acknowledged"], 600, "{r}");
    assert_eq!(q["delivered"], 600, "{r}");
    assert_eq!(q["lost"], 0);
    assert_eq!(r["mode"], "closed-loop");
}
