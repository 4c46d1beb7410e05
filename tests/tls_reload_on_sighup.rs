//! SIGHUP reloads the TLS files without dropping a connection: new handshakes get the new
//! certificate, a kept-alive HTTPS connection and an MQTT-over-TLS session opened before go on
//! working; a reload whose files are bad is logged with the key at fault and keeps the
//! certificate in use.

mod common;
use common::cluster::wait_for;
use common::tls::{self, Ca};
use common::*;
use std::process::Command;
use std::time::Duration;

fn hup(pid: u32) {
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP {pid}");
}

/// The certificate a new HTTPS connection gets.
fn served(https: &str, ca: &std::path::Path) -> Vec<u8> {
    tls::server_cert(&tls::connect(https, ca).unwrap())
}

#[test]
fn sighup_serves_the_new_certificate_to_new_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "good");
    let first = ca.issue("node", "first");
    let second = ca.issue("second", "second");
    let server = Server::start(&format!("{PRODUCT_TABLE}\n{}", tls::section(&first, None)));
    let https = server.ready_field("https").unwrap();
    let mqtts = server.ready_field("mqtts").unwrap();

    let mut old = tls::connect(&https, &ca.pem).unwrap();
    assert_eq!(tls::server_cert(&old), first.der);
    assert!(tls::get_on(&mut old, "/health").0.contains("200"));
    let mut sub = tls::mqtt_client(&mqtts, &ca.pem, "reload-sub");
    assert_eq!(sub.sub("reload/t", 1), vec![1]);

    // New files in place, then the signal.
    std::fs::copy(&second.cert, &first.cert).unwrap();
    std::fs::copy(&second.key, &first.key).unwrap();
    hup(server.pid());
    wait_for("the new certificate", Duration::from_secs(10), || {
        served(&https, &ca.pem) == second.der
    });
    assert!(
        server.log().contains("TLS files reloaded"),
        "{}",
        server.log()
    );

    // What was open before goes on, with the session it has.
    let (status, body) = tls::get_on(&mut old, "/health");
    assert!(status.contains("200"), "{status} {body}");
    assert_eq!(tls::server_cert(&old), first.der);
    let mut publisher = tls::mqtt_client(&mqtts, &ca.pem, "reload-pub");
    publisher.publish("reload/t", 1, false, b"after the reload");
    assert_eq!(sub.expect().text(), "after the reload");

    // A bad file: the reload fails, is logged with the key, and changes nothing.
    std::fs::write(&first.key, "-----BEGIN PRIVATE KEY-----\nnot base64!\n").unwrap();
    hup(server.pid());
    wait_for(
        "the failed reload in the log",
        Duration::from_secs(10),
        || server.log().contains("TLS reload failed"),
    );
    assert!(server.log().contains("`tls.key_file`"), "{}", server.log());
    assert_eq!(served(&https, &ca.pem), second.der);
    assert!(tls::get_on(&mut old, "/health").0.contains("200"));
    let a = tls::agent(&ca.pem);
    let r = put(
        &a,
        &format!("https://{https}/Product/1"),
        r#"{"name":"still"}"#,
    );
    assert_eq!(r.status / 100, 2, "{r:?}");
}
