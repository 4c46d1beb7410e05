//! Replication under a seeded simulator: the real link state machines (`cluster::inbound`,
//! `cluster::outbound`) of several nodes over a simulated network, writers, disks and clocks,
//! with crashes, partitions, dropped connections and skewed clocks; every run is reproducible
//! from its seed. See docs/replication.md ("Simulator").
//!
//! - `SEED=N cargo test --test replication_sim -- --nocapture` replays one seed.
//! - `SIM_SEEDS=100000 SIM_BUSY_MS=30000 cargo test --release --test replication_sim` is a soak.

mod check;
mod node;
mod rng;
mod world;

use microlith::cluster::{inbound, outbound};
use world::{Params, Stats, World};

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn params() -> Params {
    let mut p = Params::default();
    if let Some(ms) = env("SIM_BUSY_MS") {
        p.busy_ms = ms;
    }
    if let Some(ms) = env("SIM_QUIET_MS") {
        p.quiet_ms = ms;
    }
    p
}

/// Runs one seed; the violations it found, if any.
fn run(seed: u64, p: Params) -> Result<Stats, Vec<String>> {
    let hostile = p.hostile_puller;
    let mut w = World::new(seed, p);
    w.run();
    if w.v.is_empty() && !hostile {
        check::converged(&mut w);
    }
    match w.v.is_empty() {
        true => Ok(w.stats.clone()),
        false => Err(w.v.list().to_vec()),
    }
}

/// Seeds that broke an invariant, each with what it broke.
type Failures = Vec<(u64, Vec<String>)>;

/// Runs `seeds` over every core; returns the failing seeds (in order) with their violations.
fn run_many(seeds: std::ops::Range<u64>, p: &Params) -> (Failures, Stats) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let results: Vec<(Failures, Stats)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = seeds.clone();
                s.spawn(move || {
                    let (mut failed, mut total) = (Vec::new(), Stats::default());
                    for seed in seeds.filter(|x| x % threads == t) {
                        match run(seed, p.clone()) {
                            Ok(st) => add(&mut total, &st),
                            Err(v) => failed.push((seed, v)),
                        }
                    }
                    (failed, total)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("simulation thread"))
            .collect()
    });
    let mut failed: Failures = Vec::new();
    let mut total = Stats::default();
    for (f, st) in results {
        failed.extend(f);
        add(&mut total, &st);
    }
    failed.sort_by_key(|f| f.0);
    (failed, total)
}

fn add(total: &mut Stats, s: &Stats) {
    total.writes += s.writes;
    total.frames += s.frames;
    total.crashes += s.crashes;
    total.resets += s.resets;
    total.refusals += s.refusals;
    total.purges += s.purges;
    total.duplicates += s.duplicates;
}

#[test]
fn simulated_clusters_keep_every_invariant() {
    let p = params();
    if let Some(seed) = env("SEED") {
        match run(seed, p) {
            Ok(st) => return println!("seed {seed}: every invariant held ({st:?})"),
            Err(v) => panic!("seed {seed}:\n{}", v.join("\n")),
        }
    }
    let n = env("SIM_SEEDS").unwrap_or(1000);
    let started = std::time::Instant::now();
    let (failed, total) = run_many(0..n, &p);
    println!("{n} seeds in {:?}: {total:?}", started.elapsed());
    if let Some((seed, v)) = failed.first() {
        panic!(
            "{} of {n} seeds broke an invariant; the first, seed {seed}:\n{}\nreplay: SEED={seed} cargo test --test replication_sim simulated_clusters -- --nocapture",
            failed.len(),
            v.join("\n")
        );
    }
    assert!(
        total.writes > n * 100 && total.crashes > n && total.purges > n && total.refusals > 0,
        "the runs did too little to prove anything: {total:?}"
    );
}

/// Runs seeds until one breaks an invariant; how many it took.
fn seeds_to_catch(p: Params, limit: u64) -> (u64, Vec<String>) {
    for chunk in (0..limit).step_by(16) {
        let (failed, _) = run_many(chunk..(chunk + 16).min(limit), &p);
        if let Some((seed, v)) = failed.into_iter().next() {
            return (seed + 1, v);
        }
    }
    panic!("no seed of {limit} caught the reintroduced bug");
}

#[test]
fn the_simulator_catches_a_cursor_saved_before_its_data() {
    let mut p = params();
    p.inbound_faults = inbound::Faults {
        cursor_before_data: true,
        ..Default::default()
    };
    let (seeds, v) = seeds_to_catch(p, 500);
    println!("caught after {seeds} seeds: {}", v[0]);
}

#[test]
fn the_simulator_catches_stable_claims_on_partial_batches() {
    let mut p = params();
    p.outbound_faults = outbound::Faults {
        stable_on_every_batch: true,
        ..Default::default()
    };
    let (seeds, v) = seeds_to_catch(p, 500);
    println!("caught after {seeds} seeds: {}", v[0]);
}

#[test]
fn a_hostile_puller_cannot_make_a_sender_hold_more_than_its_bound() {
    let mut p = params();
    p.hostile_puller = true;
    let (failed, _) = run_many(0..100, &p);
    assert!(failed.is_empty(), "seed {:?}", failed.first());
}

#[test]
fn the_simulator_catches_range_answers_not_counted_against_a_peers_requests() {
    let mut p = params();
    p.hostile_puller = true;
    p.outbound_faults = outbound::Faults {
        uncounted_answers: true,
        ..Default::default()
    };
    let (seeds, v) = seeds_to_catch(p, 500);
    println!("caught after {seeds} seeds: {}", v[0]);
}
