//! Virtual users over a page list: each connection waits its think time after every answer
//! (so a few users send a few requests, where a plain closed loop would send thousands), and
//! every request is one of the listed paths, each of them used.

mod common;
use common::*;

#[test]
fn virtual_users_wait_their_think_time_and_request_only_listed_paths() {
    let server = HttpServer::start(HttpOpts {
        keep: 10_000,
        ..Default::default()
    });
    let dir = out_dir("think");
    let paths = dir.join("paths.txt");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&paths, "# pages\n/shop/\n\n/shop/p/p-0001\n/shop/c/cat-2\n").unwrap();
    let url = server.url();
    let o = loadgen(&[
        "http",
        "--url",
        &url,
        "--paths-file",
        paths.to_str().unwrap(),
        "--connections",
        "8",
        "--think",
        "400ms",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r = result(&dir);
    let requests = r["counts"]["requests"].as_u64().unwrap();
    // Each user sends at most one request per think time: 8 users × (2 s / 0.4 s + 1).
    assert!((8..=48).contains(&requests), "{requests} requests: {r}");
    assert_eq!(r["counts"]["ok"].as_u64().unwrap(), requests, "{r}");
    let seen = server.seen.lock().unwrap();
    for p in ["/shop/", "/shop/p/p-0001", "/shop/c/cat-2"] {
        let line = format!("GET {p} HTTP/1.1");
        assert!(seen.iter().any(|(l, _)| *l == line), "{p} never requested");
    }
    assert!(
        seen.iter().all(|(l, _)| l.starts_with("GET /shop/")),
        "{seen:?}"
    );
}

#[test]
fn think_time_with_an_open_loop_rate_or_an_empty_paths_file_is_refused() {
    let server = HttpServer::start(HttpOpts::default());
    let url = server.url();
    let o = loadgen(&[
        "http", "--url", &url, "--path", "/", "--think", "1s", "--rate", "100",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--think"), "{}", text(&o));
    let dir = out_dir("empty-paths");
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("paths.txt");
    std::fs::write(&empty, "# nothing\n\n").unwrap();
    let o = loadgen(&[
        "http",
        "--url",
        &url,
        "--paths-file",
        empty.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no paths"), "{}", text(&o));
}
