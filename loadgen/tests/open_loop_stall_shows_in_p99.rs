//! Proof of no coordinated omission: one 60 ms server stall in an open-loop run at
//! 1000 req/s over one connection delays the ~60 requests scheduled behind it, so it must
//! show in p99 (measured from intended send times), not only in the max.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn open_loop_stall_shows_in_p99() {
    // Request 1500 falls 1 s into the measured window (0.5 s warm-up at 1000/s).
    let server = HttpServer::start(HttpOpts {
        stall: Some((1500, Duration::from_millis(60))),
        ..Default::default()
    });
    let dir = out_dir("stall");
    let o = loadgen(&[
        "http",
        "--url",
        &format!("{}/item", server.url()),
        "--rate",
        "1000",
        "--connections",
        "1",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r = result(&dir);
    assert_eq!(r["mode"], "open-loop");
    let p99 = r["latency_us"]["p99"].as_f64().unwrap();
    let max = r["latency_us"]["max"].as_f64().unwrap();
    // ~60 of ~2000 samples are delayed 0-60 ms: p99 lands well inside the stall.
    assert!(
        p99 >= 15_000.0,
        "p99 {p99} µs does not show the stall: {}",
        text(&o)
    );
    assert!(max >= 50_000.0, "max {max} µs");
    // The service time (from actual send) is what a closed-loop tool would have shown.
    assert!(r["service_time_us"]["p99"].as_f64().unwrap() < p99, "{r}");
}
