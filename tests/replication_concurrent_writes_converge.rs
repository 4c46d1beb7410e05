//! Three nodes with different shard counts take writes at the same time, many on the same
//! keys (puts, patches and deletes): afterwards every node answers every key the same way, with
//! the same version (ETag), and the per-table digests are equal.

mod common;
use common::cluster::*;
use std::time::Duration;

#[test]
fn concurrent_writes_on_three_nodes_converge() {
    let c = Cluster::start(Opts::nodes(&[1, 2, 1]));
    c.wait_linked(Duration::from_secs(20));
    let writers: Vec<_> = (0..3)
        .map(|n| {
            let base = c.nodes[n].url("/Product/");
            std::thread::spawn(move || {
                for i in 0..120 {
                    // Shared keys: every node writes them.
                    let k = format!("shared-{}", i % 30);
                    let r = cput(
                        &format!("{base}{k}"),
                        &format!(r#"{{"by":{n},"i":{i},"category":"c{n}"}}"#),
                    );
                    assert!(r.status == 201 || r.status == 204, "{}", r.body);
                    // Keys of one node.
                    let r = cput(
                        &format!("{base}own-{n}-{i}"),
                        &format!(r#"{{"by":{n},"price":{i}}}"#),
                    );
                    assert!(r.status == 201 || r.status == 204, "{}", r.body);
                    if i % 7 == 0 {
                        let _ = call(
                            "DELETE",
                            &format!("{base}shared-{}", (i + 3) % 30),
                            None,
                            &[],
                        );
                    }
                    if i % 5 == 0 {
                        let _ = call(
                            "PATCH",
                            &format!("{base}shared-{}", (i + 1) % 30),
                            Some(r#"{"patched":true}"#),
                            &[],
                        );
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let digest = c.wait_converged(Duration::from_secs(30));
    assert!(
        digest["Product"]["records"].as_u64().unwrap() >= 360,
        "every node holds every node's own keys: {digest}"
    );
    for k in (0..30)
        .map(|i| format!("shared-{i}"))
        .chain((0..3).flat_map(|n| (0..120).map(move |i| format!("own-{n}-{i}"))))
    {
        let answers = c.read_everywhere(&format!("/Product/{k}"));
        assert!(
            answers
                .iter()
                .all(|a| a.0 == answers[0].0 && a.1 == answers[0].1 && a.2 == answers[0].2),
            "{k}: nodes disagree: {answers:?}"
        );
    }
    // Indexes follow replicated writes: the same query answers the same everywhere.
    let q: Vec<_> = c
        .read_everywhere("/Product/?category=c1&select(id)&sort(+id)")
        .into_iter()
        .map(|a| a.2)
        .collect();
    assert!(
        q.iter().all(|x| *x == q[0]),
        "index queries disagree: {q:?}"
    );
}
