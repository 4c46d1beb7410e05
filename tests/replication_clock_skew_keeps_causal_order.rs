//! A node whose wall clock runs 5 s ahead (test-only offset) writes a record; another node
//! reads it (replicated) and then writes it again. The later write wins everywhere: receiving
//! the skewed version moved the reader's hybrid logical clock past it, so skew cannot reorder
//! causally related writes.

mod common;
use common::cluster::*;
use common::*;
use std::time::Duration;

#[test]
fn write_after_reading_a_skewed_version_wins() {
    let mut o = Opts::nodes(&[1, 2, 1]);
    o.env[2] = vec![("MICROLITH_TEST_CLOCK_OFFSET_MS".into(), "5000".into())];
    let c = Cluster::start(o);
    c.wait_linked(Duration::from_secs(20));
    let a = agent();
    for i in 0..10 {
        let k = format!("/Product/skew-{i}");
        // The fast node writes first.
        let first = cput(&c.nodes[2].url(&k), r#"{"step":"first"}"#);
        assert_eq!(first.status / 100, 2, "{}", first.body);
        let v_first = version(first.etag.as_deref().unwrap());
        // Node i % 2 reads it once it has arrived...
        let reader = i % 2;
        wait_for(
            &format!("{k} on node {}", reader + 1),
            Duration::from_secs(10),
            || fetch(&c.nodes[reader].url(&k)).etag.as_deref() == first.etag.as_deref(),
        );
        // ...and writes after it, conditionally on the version it read.
        let second = send(
            &a,
            "PUT",
            &c.nodes[reader].url(&k),
            Some(r#"{"step":"second"}"#),
            &[("If-Match", first.etag.as_deref().unwrap())],
        );
        assert_eq!(second.status, 204, "{}", second.body);
        let v_second = version(second.etag.as_deref().unwrap());
        assert!(
            v_second > v_first,
            "the causally later write has the higher version ({v_second:?} vs {v_first:?}) although its node's clock is 5 s behind"
        );
    }
    c.wait_converged(Duration::from_secs(20));
    for i in 0..10 {
        for (node, (status, _, body)) in c
            .read_everywhere(&format!("/Product/skew-{i}"))
            .into_iter()
            .enumerate()
        {
            assert_eq!(status, 200);
            assert!(
                body.contains("second"),
                "node {}: skew-{i} went back to {body}",
                node + 1
            );
        }
    }
}
