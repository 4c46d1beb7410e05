//! kill -9 in the middle of a write load loses no acknowledged write, in both durability
//! modes: every id the server acknowledged is there after a restart, with its value.

mod common;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn trial(durability: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let extra = format!("[storage]\ndurability = \"{durability}\"\n\n{PRODUCT_TABLE}");
    // `[storage]` is already in the generated config: merge by writing the whole file here.
    let config = format!(
        "[storage]\ndata_dir = {:?}\ndurability = \"{durability}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n{PRODUCT_TABLE}",
        data.display().to_string()
    );
    let _ = extra;
    let cfg_path = tmp.path().join("microlith.toml");
    std::fs::write(&cfg_path, config).unwrap();
    let mut s = Server::start_with_config(tmp.path(), &cfg_path, &data).unwrap();
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(10);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let base = s.url("/Product/");
            let acked = acked.clone();
            std::thread::spawn(move || {
                let a = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(5))
                    .build();
                let mut n = 0u64;
                while Instant::now() < stop_at {
                    let id = format!("w{w}-{n}");
                    let r = a
                        .put(&format!("{base}{id}"))
                        .set("Content-Type", "application/json")
                        .send_string(&format!(r#"{{"seq":{n},"category":"c{w}"}}"#));
                    match r {
                        Ok(resp) if resp.status() == 201 => acked.lock().unwrap().push((id, n)),
                        Ok(_) | Err(ureq::Error::Status(..)) => {}
                        Err(_) => return, // the server is gone
                    }
                    n += 1;
                }
            })
        })
        .collect();
    // Let the load run, then kill the server in the middle of it.
    let before = Instant::now();
    while acked.lock().unwrap().len() < 2000 && before.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill9();
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{durability}: {} writes acknowledged before kill -9",
        acked.len()
    );
    assert!(
        acked.len() >= 50,
        "too few writes acknowledged before the kill: {}",
        acked.len()
    );

    let s = Server::start_with_config(tmp.path(), &cfg_path, &data).unwrap();
    let a = agent();
    let mut missing = Vec::new();
    for (id, n) in &acked {
        let r = get(&a, &s.url(&format!("/Product/{id}")));
        if r.status != 200 || r.json()["seq"] != *n {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{durability}: {} of {} acknowledged writes lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
    // The index agrees with the records.
    let in_index: usize = (0..8)
        .map(|w| {
            get(
                &a,
                &s.url(&format!(
                    "/Product/?category=c{w}&select(id)&limit(0,100000)"
                )),
            )
            .json()
            .as_array()
            .unwrap()
            .len()
        })
        .sum();
    let total: i64 = shard_records(&a, &s).iter().sum();
    assert_eq!(
        in_index as i64, total,
        "index entries match live records after recovery"
    );
}

#[test]
fn kill9_under_load_buffered_durability() {
    trial("buffered");
}

#[test]
fn kill9_under_load_sync_durability() {
    trial("sync");
}
