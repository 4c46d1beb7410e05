//! A mixed REST workload with a load phase against the in-test HTTP server: every request
//! is accounted for, the load phase created the right records, and the outputs are written.

mod common;
use common::*;

#[test]
fn http_mix_counts_add_up_and_outputs_are_written() {
    let server = HttpServer::start(HttpOpts {
        keep: 100_000,
        ..Default::default()
    });
    let dir = out_dir("counts");
    let url = server.url();
    let o = loadgen(&[
        "http",
        "--url",
        &url,
        "--table",
        "Product",
        "--load",
        "300",
        "--mix",
        "get=50,put=20,post=10,delete=10,query=10",
        "--dist",
        "zipf:0.99",
        "--connections",
        "4",
        "--pipeline",
        "2",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--value-bytes",
        "120",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r = result(&dir);
    let c = &r["counts"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert!(n("requests") > 100, "{r}");
    assert_eq!(
        n("requests"),
        n("responses") + n("timeout") + n("io") + n("parse"),
        "{c}"
    );
    assert_eq!(n("timeout") + n("io") + n("parse"), 0, "{c}");
    // DELETE answers 404 in the fixture: counted as status errors, not lost requests.
    let s404 = c["status"]["404"].as_u64().unwrap();
    assert!(s404 > 0 && n("ok") + s404 == n("responses"), "{c}");
    for k in ["p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert!(
            r["latency_us"][k].as_f64().unwrap() > 0.0,
            "{k} missing in {r}"
        );
    }
    assert_eq!(r["latency_us"]["count"].as_u64().unwrap(), n("responses"));
    assert!(r["command"].as_str().unwrap().contains("--table Product"));
    assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
    // The load phase: 300 PUTs of p0..p299, each a JSON record of about --value-bytes.
    assert_eq!(r["load_phase"]["counts"]["ok"].as_u64(), Some(300));
    let seen = server.seen.lock().unwrap();
    let mut ids: Vec<u64> = seen[..300]
        .iter()
        .map(|(line, body)| {
            assert!(line.starts_with("PUT /Product/p"), "{line}");
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(body.len(), 120);
            assert!(v["category"].as_str().unwrap().starts_with("cat-"));
            v["id"].as_str().unwrap()[1..].parse().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..300).collect::<Vec<u64>>());
    assert!(seen
        .iter()
        .any(|(l, _)| l.starts_with("GET /Product/?category=cat-") && l.contains("&limit(0,20)")));
    assert!(seen.iter().any(|(l, _)| l.starts_with("POST /Product/ ")));
    // The server saw at least the measured requests plus the load phase.
    assert!(server.requests.load(std::sync::atomic::Ordering::SeqCst) >= 300 + n("requests"));
    for f in ["result.md", "latency.hgrm", "latency.svg"] {
        assert!(dir.join(f).exists(), "{f} not written");
    }
    assert!(std::fs::read_to_string(dir.join("latency.svg"))
        .unwrap()
        .contains("<polyline"));
}
