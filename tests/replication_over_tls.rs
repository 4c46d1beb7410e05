//! Replication links over TLS: two nodes whose certificates chain to the configured CA link
//! up both ways and replicate, with the HMAC challenge inside the TLS session, and a plain
//! connection to a TLS peer port is refused; a node whose certificate comes from another CA is
//! refused both ways even though it knows the cluster secret: its dialer is refused by the
//! node it dials, and the node that dials it refuses its certificate. Both show the link as
//! refused in `/status` and log why.

mod common;
use common::cluster::*;
use common::tls::{self, Ca};
use std::time::Duration;

#[test]
fn two_nodes_replicate_over_tls_links() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "cluster");
    let mut o = Opts::nodes(&[2, 1]);
    for i in 0..2 {
        let cert = ca.issue(&format!("n{}", i + 1), &format!("node {}", i + 1));
        o.extra[i] = tls::section(&cert, Some(&ca.pem));
    }
    let c = Cluster::start(o);
    c.wait_linked(Duration::from_secs(20));
    assert_eq!(
        cput(&c.nodes[0].url("/Product/a"), r#"{"n":1}"#).status / 100,
        2
    );
    assert_eq!(
        cput(&c.nodes[1].url("/Product/b"), r#"{"n":2}"#).status / 100,
        2
    );
    wait_for(
        "both records on both nodes",
        Duration::from_secs(10),
        || {
            ["/Product/a", "/Product/b"]
                .iter()
                .all(|p| c.read_everywhere(p).iter().all(|(s, _, _)| *s == 200))
        },
    );
    assert!(c.log(0).contains("peer link up"), "{}", c.log(0));

    // The peer port speaks TLS only: a plain Hello is refused before any frame.
    let answer = tls::answer_to(&c.nodes[0].peer_addr, b"microlith hello in plain text");
    assert_ne!(answer.first(), Some(&0x16), "{answer:?}");
    wait_for("the refusal in the log", Duration::from_secs(10), || {
        c.log(0)
            .contains("replication link refused: TLS handshake failed")
    });
}

#[test]
fn a_peer_with_a_certificate_from_another_ca_is_refused() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "cluster");
    let rogue = Ca::new(pki.path(), "rogue");
    let mut o = Opts::nodes(&[1, 1]);
    // Node 2 knows the secret and trusts the cluster's CA, but its certificate is the rogue's.
    o.extra[0] = tls::section(&ca.issue("n1", "node 1"), Some(&ca.pem));
    o.extra[1] = tls::section(&rogue.issue("n2", "node 2"), Some(&ca.pem));
    let c = Cluster::start(o);
    let inbound = |i: usize| {
        fetch(&c.nodes[i].url("/status")).json()["cluster"]["peers"][0]["inbound"].clone()
    };
    // Node 1 checks the certificate of the node it dials; node 2's dialer hears node 1 refuse
    // its certificate.
    for (i, why) in [
        (0, "UnknownIssuer"),
        (1, "TLS handshake refused by the peer"),
    ] {
        wait_for(
            &format!("node {} to show its dialed link refused for {why}", i + 1),
            Duration::from_secs(20),
            || {
                let link = inbound(i);
                link["state"] == "refused"
                    && link["last_error"].as_str().unwrap_or("").contains(why)
            },
        );
    }
    assert!(
        c.log(0)
            .contains("replication link refused: TLS handshake failed"),
        "{}",
        c.log(0)
    );
    let st = fetch(&c.nodes[0].url("/status")).json();
    assert!(
        st["cluster"]["refused_links"].as_u64().unwrap() >= 1,
        "{st}"
    );

    // Nothing flows either way.
    assert_eq!(
        cput(&c.nodes[0].url("/Product/x"), r#"{"n":1}"#).status / 100,
        2
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(fetch(&c.nodes[1].url("/Product/x")).status, 404);
}
