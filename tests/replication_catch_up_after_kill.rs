//! kill -9 one node of three while the other two take writes, write more while it is down,
//! restart it: it catches up from its durable cursors, what it acknowledged before dying
//! reaches the others, and no acknowledged write is missing on any node.

mod common;
use common::cluster::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Acked = Arc<Mutex<Vec<(String, u64)>>>;

fn writer(
    base: String,
    prefix: String,
    acked: Acked,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let a = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        let mut n = 0u64;
        let mut errors = 0;
        while !stop.load(Ordering::Relaxed) {
            let id = format!("{prefix}-{n}");
            let r = a
                .put(&format!("{base}{id}"))
                .set("Content-Type", "application/json")
                .send_string(&format!(r#"{{"seq":{n}}}"#));
            match r {
                Ok(resp) if resp.status() == 201 => {
                    errors = 0;
                    acked.lock().unwrap().push((id, n))
                }
                Ok(_) | Err(ureq::Error::Status(..)) => {}
                Err(_) => {
                    // Not acknowledged. Three failures in a row: the node is gone.
                    errors += 1;
                    if errors == 3 {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            n += 1;
        }
    })
}

#[test]
fn killed_node_catches_up_and_no_acknowledged_write_is_lost() {
    let mut c = Cluster::start(Opts::nodes(&[2, 1, 2]));
    c.wait_linked(Duration::from_secs(20));
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_victim = Arc::new(AtomicBool::new(false));
    let mut ws: Vec<_> = (0..2)
        .map(|i| {
            writer(
                c.nodes[i].url("/Product/"),
                format!("n{i}"),
                acked.clone(),
                stop.clone(),
            )
        })
        .collect();
    let victim = writer(
        c.nodes[2].url("/Product/"),
        "n2".into(),
        acked.clone(),
        stop_victim.clone(),
    );
    let count = |p: &str| {
        acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id.starts_with(p))
            .count()
    };
    wait_for("writes on every node", Duration::from_secs(60), || {
        count("n0") > 100 && count("n2") > 100
    });
    c.kill9(2);
    victim.join().unwrap();
    let before = count("n0") + count("n1");
    // Down for a while, with writes on the others.
    std::thread::sleep(Duration::from_millis(1500));
    wait_for(
        "writes while node 3 is down",
        Duration::from_secs(60),
        || count("n0") + count("n1") > before + 300,
    );
    c.boot(2);
    ws.push(writer(
        c.nodes[2].url("/Product/"),
        "n2b".into(),
        acked.clone(),
        stop_victim.clone(),
    ));
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    stop_victim.store(true, Ordering::Relaxed);
    for w in ws {
        w.join().unwrap();
    }
    c.wait_converged(Duration::from_secs(30));
    let acked = acked.lock().unwrap().clone();
    eprintln!("{} writes acknowledged", acked.len());
    for (i, node) in c.nodes.iter().enumerate() {
        // Every record of the node in one query, then every acknowledged write checked in it.
        let rows = fetch(&node.url("/Product/?select(id,seq)&limit(0,1000000)")).json();
        let held: std::collections::HashMap<String, u64> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["seq"].as_u64().unwrap(),
                )
            })
            .collect();
        let lost: Vec<&String> = acked
            .iter()
            .filter(|(id, n)| held.get(id) != Some(n))
            .map(|(id, _)| id)
            .collect();
        assert!(
            lost.is_empty(),
            "node {}: {} of {} acknowledged writes missing: {:?}",
            i + 1,
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(10)]
        );
    }
    // Spot checks through the record path too.
    for (id, n) in acked.iter().step_by(97) {
        for (status, _, body) in c.read_everywhere(&format!("/Product/{id}")) {
            assert_eq!(status, 200, "{id}");
            assert!(body.contains(&format!("\"seq\":{n}")), "{id}: {body}");
        }
    }
    // The restarted node resumed from its cursors: no repair was needed.
    let st = fetch(&c.nodes[2].url("/status")).json();
    let repairs: u64 = st["cluster"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["repairs"].as_u64().unwrap())
        .sum();
    assert_eq!(
        repairs, 0,
        "catch-up should come from the change logs: {st}"
    );
}
