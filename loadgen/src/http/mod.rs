//! The `http` command: validates the target, runs the optional load phase (bulk PUTs of
//! the data set) and the measured workload phase over the worker threads, and turns the
//! merged counters and histograms into a `RunResult`.

pub mod conn;
pub mod request;
pub mod response;
pub mod worker;

use crate::affinity::{parse_cores, Placement};
use crate::cli::{HttpArgs, Rate};
use crate::clock::{now_ns, ns};
use crate::dist::{KeyChooser, KeyDist};
use crate::net::{probe, resolve};
use crate::progress::Progress;
use crate::report::{Invocation, LoadPhase, RunResult};
use crate::stats::{new_histogram, Counts, LatencySummary};
use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use request::{split_query, Mix, RequestGen, Shape, Url};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use worker::{Shared, Source, WorkerCfg};

pub struct PhaseOut {
    pub counts: Counts,
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    pub measured_s: f64,
    /// Process CPU seconds and wall seconds from the start to the last worker's end.
    pub cpu_s: f64,
    pub wall_s: f64,
}

pub fn run(args: &HttpArgs, inv: Invocation) -> Result<RunResult> {
    let url = Url::parse(&args.url)?;
    let mix = Mix::parse(&args.mix)?;
    let dist = KeyDist::parse(&args.dist)?;
    if args.pipeline == 0 || args.connections == 0 {
        bail!("--connections and --pipeline must be at least 1");
    }
    let mut headers = format!("Host: {}\r\n", url.authority).into_bytes();
    for h in &args.headers {
        if !h.contains(':') {
            bail!("--header '{h}': expected `Name: value`");
        }
        headers.extend_from_slice(h.trim().as_bytes());
        headers.extend_from_slice(b"\r\n");
    }
    if let Some(auth) = &args.basic_auth {
        headers.extend_from_slice(
            format!("Authorization: Basic {}\r\n", base64(auth.as_bytes())).as_bytes(),
        );
    }
    if !args.think.is_zero() && args.run.rate != Rate::Max {
        bail!("--think is for the closed loop (virtual users): leave --rate at max");
    }
    let paths = match &args.paths_file {
        Some(file) => read_paths(file, &headers)?,
        None => Vec::new(),
    };
    let fixed_path = match (&args.path, &args.table) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => None,
        (None, None) if !paths.is_empty() => None,
        (None, None) if url.given_path.is_some() => url.given_path.clone(),
        (None, None) => {
            bail!("give --table NAME for the REST workload or --path /PATH for a fixed GET")
        }
    };
    let table_path = match &args.table {
        Some(t) => format!("{}/{}/", url.path, t).into_bytes(),
        None => Vec::new(),
    };
    let fixed = fixed_path.as_ref().map(|p| get_request(p, &headers));
    let paths_count = paths.len();
    let shape = Arc::new(Shape {
        headers,
        table_path,
        fixed,
        paths,
        key_prefix: args.key_prefix.clone().into_bytes(),
        value_bytes: args.value_bytes,
        categories: args.categories,
        query: split_query(&args.query),
    });
    let placement = Placement::new(parse_cores(&args.run.cores)?, args.run.threads)?;
    let threads = placement.threads.min(args.connections);
    placement.confine_current_thread();
    let addr = resolve(&url.authority)?;
    probe(&args.url, &addr, args.run.connect_timeout)?;

    let keys = args
        .keys
        .unwrap_or(if args.load > 0 { args.load } else { 10_000 });
    let chooser = KeyChooser::new(&dist, keys);
    let gen = |i: usize| {
        RequestGen::new(
            Arc::clone(&shape),
            mix.clone(),
            chooser.clone(),
            args.run.seed.wrapping_mul(1000) + i as u64,
        )
    };
    let started_at = crate::report::unix_now();

    let mut load_phase = None;
    if args.load > 0 {
        if shape.fixed.is_some() || paths_count > 0 {
            bail!("--load needs --table (records are created with PUT /{{Table}}/{{id}})");
        }
        let t0 = now_ns();
        let per = args.load.div_ceil(threads as u64);
        let sources = (0..threads)
            .map(|i| {
                let next = (i as u64 * per).min(args.load);
                Source::Load {
                    gen: gen(i),
                    next,
                    end: (next + per).min(args.load),
                }
            })
            .collect();
        let label = format!("{}/load", args.run.name.as_deref().unwrap_or("http"));
        let out = run_phase(args, &placement, threads, addr, sources, true, &label)?;
        let secs = (now_ns() - t0) as f64 / 1e9;
        let failed = out.counts.requests - out.counts.ok;
        eprintln!(
            "load: {} records in {:.2}s ({:.0}/s), {} failed",
            out.counts.ok,
            secs,
            out.counts.ok as f64 / secs.max(1e-9),
            failed
        );
        load_phase = Some(LoadPhase {
            records: args.load,
            seconds: secs,
            rate: args.load as f64 / secs.max(1e-9),
            counts: out.counts,
            latency_us: LatencySummary::of(&out.latency),
        });
    }
    let out = if args.run.duration.is_zero() {
        PhaseOut {
            counts: Counts::default(),
            latency: new_histogram(),
            service: new_histogram(),
            measured_s: 0.0,
            cpu_s: 0.0,
            wall_s: 0.0,
        }
    } else {
        let sources = (0..threads).map(|i| Source::Workload(gen(i))).collect();
        run_phase(
            args,
            &placement,
            threads,
            addr,
            sources,
            false,
            args.run.name.as_deref().unwrap_or("http"),
        )?
    };
    let what = match (&fixed_path, &args.paths_file) {
        (Some(p), _) => format!("GET {p}"),
        (None, Some(f)) => format!("GET one of {paths_count} paths of {}", f.display()),
        (None, None) => format!(
            "table {} mix {}",
            args.table.as_deref().unwrap_or(""),
            args.mix
        ),
    };
    let mut r = RunResult::new(
        "http",
        inv,
        &args.run,
        serde_json::to_value(args)?,
        started_at,
    );
    r.target = format!("{} {what}", args.url);
    r.placement = format!(
        "{}, {} connections, pipeline {}",
        placement.describe_n(threads),
        args.connections,
        args.pipeline
    );
    if !args.think.is_zero() {
        r.placement += &format!(", think time {:?} (virtual users)", args.think);
    }
    r.set_latency(
        &out.latency,
        Some(&out.service),
        out.counts.responses,
        out.measured_s,
        "req/s",
    );
    r.errors_total = out.counts.errors();
    r.set_cpu(out.cpu_s, out.wall_s, threads);
    r.counts = Some(out.counts);
    r.load_phase = load_phase;
    Ok(r)
}

fn run_phase(
    args: &HttpArgs,
    placement: &Placement,
    threads: usize,
    addr: std::net::SocketAddr,
    sources: Vec<Source>,
    load: bool,
    label: &str,
) -> Result<PhaseOut> {
    let progress = Progress::new(threads, "req");
    let shared = Arc::new(Shared {
        ready: AtomicUsize::new(0),
        start_ns: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        progress: Arc::clone(&progress),
    });
    let rate = if load { Rate::Max } else { args.run.rate };
    let mut handles = Vec::new();
    for (i, source) in sources.into_iter().enumerate() {
        let conns = args.connections / threads + usize::from(i < args.connections % threads);
        let (interval_ns, offset_ns) = match rate {
            Rate::Max => (None, 0.0),
            Rate::PerSec(r) => (Some(1e9 * threads as f64 / r), i as f64 * 1e9 / r),
        };
        let quota = if load {
            None
        } else {
            args.run
                .requests
                .map(|q| q / threads as u64 + u64::from((i as u64) < q % threads as u64))
        };
        let cfg = WorkerCfg {
            index: i,
            addr,
            conns,
            depth: args.pipeline,
            interval_ns,
            offset_ns,
            quota,
            warmup_ns: if load { 0 } else { ns(args.run.warmup) },
            duration_ns: if load {
                None
            } else {
                Some(ns(args.run.duration))
            },
            timeout_ns: ns(args.run.timeout),
            connect_timeout_ns: ns(args.run.connect_timeout),
            busy_poll: args.run.busy_poll,
            think_ns: if load { 0 } else { ns(args.think) },
        };
        let shared = Arc::clone(&shared);
        let placement = placement.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("loadgen-http-{i}"))
                .spawn(move || {
                    placement.pin(i);
                    worker::run(cfg, source, shared)
                })
                .context("spawn worker thread")?,
        );
    }
    let deadline = now_ns() + 2 * ns(args.run.connect_timeout) + 1_000_000_000;
    while shared.ready.load(Ordering::Acquire) < threads {
        if now_ns() > deadline {
            shared.abort.store(true, Ordering::Relaxed);
            bail!(
                "connections to {} did not open within the connect timeout",
                args.url
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let start = now_ns() + 5_000_000;
    let warmup = if load { 0 } else { ns(args.run.warmup) };
    progress.set_phases(start, start + warmup);
    shared.start_ns.store(start, Ordering::Release);
    let cpu0 = crate::clock::process_cpu_s();
    let reporter = progress.spawn_reporter(args.run.quiet, label.to_string());
    let mut merged = PhaseOut {
        counts: Counts::default(),
        latency: new_histogram(),
        service: new_histogram(),
        measured_s: 0.0,
        cpu_s: 0.0,
        wall_s: 0.0,
    };
    let mut result = Ok(());
    for h in handles {
        match h.join() {
            Ok(Ok(o)) => {
                merged.counts.merge(&o.counts);
                merged.latency.add(&o.latency).ok();
                merged.service.add(&o.service).ok();
                let s = o.stop_ns.saturating_sub(start + warmup) as f64 / 1e9;
                merged.measured_s = merged.measured_s.max(s);
            }
            Ok(Err(e)) => result = Err(anyhow::anyhow!("worker failed: {e}")),
            Err(_) => result = Err(anyhow::anyhow!("worker thread panicked")),
        }
    }
    merged.cpu_s = crate::clock::process_cpu_s() - cpu0;
    merged.wall_s = now_ns().saturating_sub(start) as f64 / 1e9;
    progress.stop();
    let _ = reporter.join();
    result.map(|_| merged)
}

/// `GET {path} HTTP/1.1` with the common headers.
fn get_request(path: &str, headers: &[u8]) -> Vec<u8> {
    let p = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut r = format!("GET {p} HTTP/1.1\r\n").into_bytes();
    r.extend_from_slice(headers);
    r.extend_from_slice(b"\r\n");
    r
}

/// The requests of a paths file: one path per line; blank lines and `#` comments skipped.
fn read_paths(file: &std::path::Path, headers: &[u8]) -> Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--paths-file {}", file.display()))?;
    let paths: Vec<_> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|p| get_request(p, headers))
        .collect();
    if paths.is_empty() {
        bail!("--paths-file {}: no paths in it", file.display());
    }
    Ok(paths)
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for (k, shift) in [18, 12, 6, 0].iter().enumerate() {
            if k <= chunk.len() {
                out.push(T[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b"admin:secret"), "YWRtaW46c2VjcmV0");
        assert_eq!(super::base64(b"ab"), "YWI=");
        assert_eq!(super::base64(b"a"), "YQ==");
    }
}
