//! Bad input fails fast with a message naming what is wrong: unreachable targets, unknown
//! flags, bad values, and broken scenario files.

mod common;
use common::*;
use std::time::Instant;

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

fn fails_with(args: &[&str], needle: &str) {
    let o = loadgen(args);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "expected '{needle}' in: {}", text(&o));
}

#[test]
fn unreachable_http_target_fails_within_the_connect_timeout() {
    let t = Instant::now();
    let url = format!("http://{}/", closed_port());
    let o = loadgen(&[
        "http",
        "--url",
        &url,
        "--connect-timeout",
        "1s",
        "--duration",
        "5s",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot connect to"),
        "{}",
        text(&o)
    );
    assert!(t.elapsed().as_secs_f64() < 3.0);
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect
/// gets no answer at all (like a filtered port) without leaving loopback.
fn silent_port() -> (i32, String, Vec<std::net::TcpStream>) {
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        let mut bound: libc::sockaddr_in = std::mem::zeroed();
        let mut blen = len;
        libc::getsockname(fd, &mut bound as *mut _ as *mut libc::sockaddr, &mut blen);
        let target = format!("127.0.0.1:{}", u16::from_be(bound.sin_port));
        let sa: std::net::SocketAddr = target.parse().unwrap();
        let fillers = (0..4)
            .filter_map(|_| {
                std::net::TcpStream::connect_timeout(&sa, std::time::Duration::from_millis(200))
                    .ok()
            })
            .collect();
        (fd, target, fillers)
    }
}

#[test]
fn silent_target_fails_at_the_connect_timeout() {
    let (fd, target, _fillers) = silent_port();
    let t = Instant::now();
    let o = loadgen(&[
        "http",
        "--url",
        &format!("http://{target}/"),
        "--connect-timeout",
        "1s",
    ]);
    let took = t.elapsed().as_secs_f64();
    unsafe { libc::close(fd) };
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no answer within the connect timeout"),
        "{}",
        text(&o)
    );
    assert!(took < 4.0, "took {took} s");
}

#[test]
fn unreachable_broker_fails_with_a_clear_error() {
    fails_with(
        &[
            "mqtt",
            "--broker",
            &closed_port(),
            "--connect-timeout",
            "1s",
        ],
        "cannot connect to",
    );
}

#[test]
fn bad_flags_and_values_are_named() {
    fails_with(
        &["http", "--url", "http://127.0.0.1:1", "--bogus"],
        "--bogus",
    );
    fails_with(
        &["http", "--url", "http://127.0.0.1:1", "--rate", "fast"],
        "fast",
    );
    fails_with(
        &["http", "--url", "http://127.0.0.1:1", "--duration", "ten"],
        "ten",
    );
    fails_with(
        &[
            "http",
            "--url",
            "http://127.0.0.1:1",
            "--table",
            "T",
            "--dist",
            "zipf:x",
        ],
        "zipf:x",
    );
    fails_with(
        &[
            "http",
            "--url",
            "http://127.0.0.1:1",
            "--table",
            "T",
            "--mix",
            "get=1,fly=2",
        ],
        "fly",
    );
    fails_with(
        &["http", "--url", "https://127.0.0.1:1", "--table", "T"],
        "https",
    );
    fails_with(&["http", "--url", "http://127.0.0.1:1"], "--table");
    fails_with(&["mqtt", "--broker", "127.0.0.1:1", "--qos", "3"], "'3'");
    fails_with(
        &["mqtt", "--broker", "127.0.0.1:1", "--payload-bytes", "8"],
        "--payload-bytes",
    );
    fails_with(
        &[
            "http",
            "--url",
            "http://127.0.0.1:1",
            "--path",
            "/",
            "--cores",
            "99999",
        ],
        "99999",
    );
}

#[test]
fn bad_scenario_files_are_named() {
    let dir = out_dir("badscenario");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let typo = write(
        "typo.toml",
        "mode = \"http\"\nurl = \"http://127.0.0.1:1\"\nconections = 4\n",
    );
    fails_with(&["run", &typo], "conections");
    fails_with(&["run", &typo], "typo.toml");
    let broken = write("broken.toml", "mode = \"http\"\nurl = \n");
    fails_with(&["run", &broken], "broken.toml");
    let badval = write(
        "badval.toml",
        "mode = \"http\"\nurl = \"http://127.0.0.1:1\"\nrate = \"fast\"\n",
    );
    fails_with(&["run", &badval], "badval.toml");
    fails_with(
        &["run", "/nonexistent/scenario.toml"],
        "/nonexistent/scenario.toml",
    );
}
