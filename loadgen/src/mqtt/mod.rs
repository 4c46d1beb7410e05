//! The `mqtt` command: checks the broker is reachable, builds the plan, spreads the
//! clients over the worker threads, starts publishing once every session is subscribed,
//! then turns the stamps' evidence into per-QoS delivery figures (lost, duplicated,
//! out of order) and end-to-end latency.

pub mod client;
pub mod codec;
pub mod plan;
pub mod tracker;
pub mod worker;

use crate::affinity::{parse_cores, Placement};
use crate::cli::MqttArgs;
use crate::clock::now_ns;
use crate::net::{probe, resolve};
use crate::progress::Progress;
use crate::report::{Invocation, MqttFigures, QosFigures, RunResult};
use crate::stats::{new_histogram, LatencySummary};
use anyhow::{anyhow, bail, Context, Result};
use plan::Shared;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tracker::topic_matches;

pub fn run(a: &MqttArgs, inv: Invocation) -> Result<RunResult> {
    let host = a
        .broker
        .strip_prefix("mqtt://")
        .unwrap_or(&a.broker)
        .trim_end_matches('/');
    let broker = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else {
        format!("{host}:1883")
    };
    let placement = Placement::new(parse_cores(&a.run.cores)?, a.run.threads)?;
    placement.confine_current_thread();
    let addr = resolve(&broker)?;
    let nonce = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0) as u32)
        ^ std::process::id().rotate_left(16);
    let plan = Arc::new(plan::build(a, addr, nonce)?);
    probe(&broker, &addr, a.run.connect_timeout)?;
    let clients = a.publishers + a.subscribers;
    let threads = placement.threads.min(clients).max(1);
    let progress = Progress::new(threads, "msg");
    let shared = Arc::new(Shared {
        ready: AtomicUsize::new(0),
        start_ns: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        fatal: Mutex::new(None),
        progress: Arc::clone(&progress),
        expected: (0..a.publishers).map(|_| AtomicU64::new(0)).collect(),
        delivered: (0..a.publishers).map(|_| AtomicU64::new(0)).collect(),
        workers: threads,
        done_publishing: AtomicUsize::new(0),
        all_stopped_ns: AtomicU64::new(0),
    });
    let started_at = crate::report::unix_now();
    let mut handles = Vec::new();
    for t in 0..threads {
        // Subscribers first, then publishers, dealt round-robin so roles spread evenly.
        let subs: Vec<usize> = (0..a.subscribers).filter(|s| s % threads == t).collect();
        let pubs: Vec<usize> = (0..a.publishers)
            .filter(|p| (a.subscribers + p) % threads == t)
            .collect();
        let (plan, shared, placement) = (Arc::clone(&plan), Arc::clone(&shared), placement.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("loadgen-mqtt-{t}"))
                .spawn(move || {
                    placement.pin(t);
                    worker::run(t, plan, shared, pubs, subs)
                })
                .context("spawn worker thread")?,
        );
    }
    let deadline = now_ns() + 2 * crate::clock::ns(a.run.connect_timeout) + 1_000_000_000;
    while shared.ready.load(Ordering::Acquire) < clients {
        let fatal = shared.fatal.lock().ok().and_then(|f| f.clone());
        if fatal.is_some() || now_ns() > deadline {
            shared.abort.store(true, Ordering::Relaxed);
            for h in handles {
                let _ = h.join();
            }
            return Err(match fatal {
                Some(msg) => anyhow!("{broker}: {msg}"),
                None => anyhow!(
                    "{broker}: only {} of {clients} MQTT sessions were set up within the connect timeout",
                    shared.ready.load(Ordering::Acquire)
                ),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let start = now_ns() + 5_000_000;
    let measure_from = start + plan.warmup_ns;
    progress.set_phases(start, measure_from);
    shared.start_ns.store(start, Ordering::Release);
    let cpu0 = crate::clock::process_cpu_s();
    let label = a.run.name.clone().unwrap_or_else(|| "mqtt".into());
    let reporter = progress.spawn_reporter(a.run.quiet, label);
    let mut outs = Vec::new();
    for h in handles {
        outs.push(h.join().map_err(|_| anyhow!("worker thread panicked"))??);
    }
    let (cpu_s, wall_s) = (
        crate::clock::process_cpu_s() - cpu0,
        now_ns().saturating_sub(start) as f64 / 1e9,
    );
    progress.stop();
    let _ = reporter.join();

    // Merge what the workers saw.
    let mut latency = new_histogram();
    let mut ack = [new_histogram(), new_histogram(), new_histogram()];
    let mut errors = std::collections::BTreeMap::new();
    let mut pubs = Vec::new();
    let mut subs = Vec::new();
    let mut stop_ns = 0;
    for o in outs {
        latency.add(&o.latency).ok();
        for (sum, h) in ack.iter_mut().zip(&o.ack_latency) {
            sum.add(h).ok();
        }
        for (k, v) in o.errors {
            *errors.entry(k).or_insert(0u64) += v;
        }
        stop_ns = stop_ns.max(o.stop_ns);
        pubs.extend(o.publishers);
        subs.extend(o.subscribers);
    }
    let measured_s = if a.publishers > 0 {
        stop_ns.saturating_sub(measure_from) as f64 / 1e9
    } else {
        a.run.duration.as_secs_f64()
    };
    let mut per_qos = std::collections::BTreeMap::<String, QosFigures>::new();
    let mut published_measured = 0;
    for p in &pubs {
        let pp = &plan.publishers[p.index];
        let f = per_qos.entry(format!("qos{}", pp.qos)).or_default();
        f.published += p.sent_per_topic.iter().sum::<u64>();
        f.acknowledged += p.acked;
        published_measured += p.published_measured;
        for s in &subs {
            let filter = &plan.subscribers[s.index].filter;
            let expected: u64 = pp
                .topics
                .iter()
                .zip(&p.sent_per_topic)
                .filter(|(t, _)| topic_matches(filter, std::str::from_utf8(t).unwrap_or("")))
                .map(|(_, n)| *n)
                .sum();
            let r = &s.receipts[p.index];
            f.expected += expected;
            f.delivered += r.unique;
            f.lost += expected.saturating_sub(r.unique);
            f.duplicated += r.duplicated;
            f.out_of_order += r.out_of_order;
        }
    }
    for (name, f) in per_qos.iter_mut() {
        let q: usize = name[3..].parse().unwrap_or(0);
        if q > 0 {
            f.ack_latency_us = Some(LatencySummary::of(&ack[q]));
        }
    }
    let lost: u64 = per_qos.values().map(|f| f.lost).sum();
    let delivered_measured: u64 = subs.iter().map(|s| s.delivered_measured).sum();
    let figures = MqttFigures {
        protocol: if a.protocol.starts_with('5') {
            "5.0".into()
        } else {
            "3.1.1".into()
        },
        publishers: a.publishers,
        subscribers: a.subscribers,
        publish_rate: if measured_s > 0.0 {
            (published_measured as f64 / measured_s * 10.0).round() / 10.0
        } else {
            0.0
        },
        per_qos,
        stale_ignored: subs.iter().map(|s| s.stale).sum(),
        errors,
    };
    if a.publishers > 0 && published_measured == 0 {
        bail!(
            "{broker}: no message was published in the measured window (errors: {:?})",
            figures.errors
        );
    }
    let mut r = RunResult::new("mqtt", inv, &a.run, serde_json::to_value(a)?, started_at);
    r.target = format!(
        "mqtt://{broker} {} pub -> {} sub, qos {}, {} B, topic {} filter {}{}",
        a.publishers,
        a.subscribers,
        a.qos,
        a.payload_bytes,
        a.topic,
        a.filter,
        if a.retain { ", retained" } else { "" }
    );
    r.placement = placement.describe_n(threads);
    r.latency_basis = format!(
        "{} (time carried in the payload, one clock in this process)",
        r.latency_basis
    );
    r.set_latency(&latency, None, delivered_measured, measured_s, "msg/s");
    r.errors_total = figures.errors.values().sum::<u64>() + lost;
    r.set_cpu(cpu_s, wall_s, threads);
    r.mqtt = Some(figures);
    Ok(r)
}
