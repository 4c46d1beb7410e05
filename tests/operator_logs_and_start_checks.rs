//! What an operator reads and what `check-config` and `serve` refuse: one start line and a
//! stop line with the signal's name, no colour codes in a log file, the optional sampled
//! access log, a clear refusal of a second instance on the same data directory, and
//! `check-config` refusing what `serve` would (a core the machine lacks, a port in use, a data
//! directory that cannot be written) without creating anything; a start that fails on a
//! busy port leaves no data directory behind.

mod common;
use common::*;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// Runs `microlith ARGS... CONFIG`: (exit code, stderr).
fn run_with(args: &[&str], config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_microlith"))
        .args(args)
        .arg(config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code().unwrap_or(-1), err)
}

/// Writes `text` as a config file in `dir`.
fn config_file(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("c.toml");
    std::fs::write(&path, format!("{text}\n[mqtt]\nlisten = \"127.0.0.1:0\"\n")).unwrap();
    path
}

#[test]
fn start_and_stop_lines_name_the_version_listeners_and_signal() {
    let mut s = Server::start("");
    let status = s.stop();
    assert!(status.success());
    let log = s.log();
    let started = log
        .lines()
        .find(|l| l.contains("started: microlith"))
        .unwrap_or_else(|| panic!("{log}"));
    for field in [
        "http=",
        "mqtt=",
        "shards=",
        "data_dir=",
        env!("CARGO_PKG_VERSION"),
    ] {
        assert!(started.contains(field), "{started}");
    }
    assert!(
        log.contains("stopped: ") && log.contains("signal=SIGTERM"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "colour codes in a log file: {log}");
}

#[test]
fn access_log_is_off_by_default_and_samples_when_on() {
    let a = agent();
    let mut quiet = Server::start("[shards]\ncount = 1\n");
    for _ in 0..4 {
        assert_eq!(get(&a, &quiet.url("/health")).status, 200);
    }
    quiet.stop();
    assert!(!quiet.log().contains(" access "), "{}", quiet.log());

    let mut s = Server::start("[shards]\ncount = 1\n\n[log]\naccess = true\naccess_sample = 2\n");
    for _ in 0..10 {
        assert_eq!(get(&a, &s.url("/health")).status, 200);
    }
    s.stop();
    let log = s.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("path=/health")).collect();
    assert_eq!(lines.len(), 5, "one request in two: {log}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("method=GET") && l.contains("status=200")),
        "{log}"
    );
}

#[test]
fn second_instance_on_the_same_data_dir_says_who_holds_it() {
    let s = Server::start("");
    let (code, err) = run_with(&["serve", "--config"], &s.config_path);
    assert_eq!(code, 2, "{err}");
    let holder = format!("another process (pid {}) holds the data directory", s.pid());
    assert!(err.contains(&holder), "{err}");
    assert!(!err.contains("Locked"), "{err}");
}

#[test]
fn check_config_refuses_what_serve_would_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let base = config_text(&data, "");

    let cpus = std::thread::available_parallelism().unwrap().get();
    let cores = config_file(
        tmp.path(),
        &format!("{base}\n[shards]\ncores = [{}]\n", cpus + 7),
    );
    let (code, err) = run_with(&["check-config"], &cores);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("shards.cores"), "{err}");

    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let text = config_text(&data, "").replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let ports = config_file(tmp.path(), &text);
    let (code, err) = run_with(&["check-config"], &ports);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("http.listen") && err.contains(&port.to_string()),
        "{err}"
    );

    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let unwritable = config_file(tmp.path(), &config_text(&file.join("data"), ""));
    let (code, err) = run_with(&["check-config"], &unwritable);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("storage.data_dir") && err.contains("not a directory"),
        "{err}"
    );

    let good = config_file(tmp.path(), &base);
    let (code, err) = run_with(&["check-config"], &good);
    assert_eq!(code, 0, "{err}");
    assert!(!data.exists(), "check-config created the data directory");
}

#[test]
fn a_start_that_fails_on_a_busy_port_leaves_no_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let text = config_text(&data, "").replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let config = config_file(tmp.path(), &text);
    let (code, err) = run_with(&["serve", "--config"], &config);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("start failed") && err.contains("http.listen"),
        "{err}"
    );
    assert!(!data.exists(), "a failed start left {}", data.display());
}
