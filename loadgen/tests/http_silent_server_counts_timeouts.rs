//! A server that accepts and reads but never answers: every measured request ends as a
//! timeout, the count identity still holds, and loadgen exits non-zero (nothing measured).

mod common;
use common::*;

#[test]
fn silent_server_requests_end_as_timeouts() {
    let server = HttpServer::start(HttpOpts {
        silent: true,
        ..Default::default()
    });
    let dir = out_dir("silent");
    let o = loadgen(&[
        "http",
        "--url",
        &format!("{}/", server.url()),
        "--connections",
        "3",
        "--duration",
        "500ms",
        "--warmup",
        "0s",
        "--timeout",
        "300ms",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no response or delivery was measured"));
    let c = result(&dir)["counts"].clone();
    let n = |k: &str| c[k].as_u64().unwrap();
    assert!(n("timeout") >= 3, "{c}");
    assert_eq!(
        n("requests"),
        n("responses") + n("timeout") + n("io") + n("parse"),
        "{c}"
    );
    assert_eq!(n("responses"), 0);
}
