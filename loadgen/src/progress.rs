//! The live progress line: workers hand over their recent latencies and counts every
//! ~100 ms; a reporter thread prints one line a second on stderr (phase, achieved rate,
//! errors, p50/p99 of the current phase so far).

use crate::clock::now_ns;
use crate::stats::{fmt_us, new_histogram};
use hdrhistogram::Histogram;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Progress {
    slots: Vec<Mutex<Histogram<u64>>>,
    done: AtomicU64,
    errors: AtomicU64,
    start_ns: AtomicU64,
    warmup_end_ns: AtomicU64,
    stop: AtomicBool,
    unit: &'static str,
}

/// What a worker accumulates between two hand-overs.
pub struct Pending {
    pub hist: Histogram<u64>,
    pub done: u64,
    pub errors: u64,
    last_flush_ns: u64,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            hist: new_histogram(),
            done: 0,
            errors: 0,
            last_flush_ns: 0,
        }
    }
}

impl Progress {
    pub fn new(workers: usize, unit: &'static str) -> Arc<Self> {
        Arc::new(Progress {
            slots: (0..workers).map(|_| Mutex::new(new_histogram())).collect(),
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            warmup_end_ns: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            unit,
        })
    }

    /// Fixes the phase boundaries shown in the progress line.
    pub fn set_phases(&self, start_ns: u64, warmup_end_ns: u64) {
        self.warmup_end_ns.store(warmup_end_ns, Ordering::Relaxed);
        self.start_ns.store(start_ns, Ordering::Release);
    }

    /// Hands over `p` if 100 ms passed since the last hand-over (or `force`).
    pub fn flush(&self, worker: usize, p: &mut Pending, now: u64, force: bool) {
        if !force && now < p.last_flush_ns + 100_000_000 {
            return;
        }
        p.last_flush_ns = now;
        if p.done > 0 {
            self.done.fetch_add(p.done, Ordering::Relaxed);
            p.done = 0;
        }
        if p.errors > 0 {
            self.errors.fetch_add(p.errors, Ordering::Relaxed);
            p.errors = 0;
        }
        if !p.hist.is_empty() {
            if let Ok(mut slot) = self.slots[worker].lock() {
                let _ = slot.add(&p.hist);
            }
            p.hist.reset();
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Starts the once-a-second reporter; it ends after `stop()`.
    pub fn spawn_reporter(self: &Arc<Self>, quiet: bool, label: String) -> JoinHandle<()> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("loadgen-progress".into())
            .spawn(move || me.report_loop(quiet, label))
            .expect("spawn progress thread")
    }

    fn report_loop(&self, quiet: bool, label: String) {
        let mut cum = new_histogram();
        let mut in_run = false;
        let mut last_done = 0u64;
        let mut last_t = now_ns();
        let mut tick = 0u64;
        while !self.stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(50));
            let now = now_ns();
            if now < last_t + 1_000_000_000 {
                continue;
            }
            tick += 1;
            let start = self.start_ns.load(Ordering::Acquire);
            let phase = if start == 0 || now < start {
                "connect"
            } else if now < self.warmup_end_ns.load(Ordering::Relaxed) {
                "warmup"
            } else {
                if !in_run {
                    in_run = true;
                    cum.reset();
                }
                "run"
            };
            for slot in &self.slots {
                if let Ok(mut s) = slot.lock() {
                    let _ = cum.add(&*s);
                    s.reset();
                }
            }
            let done = self.done.load(Ordering::Relaxed);
            let rate = (done - last_done) as f64 / ((now - last_t) as f64 / 1e9);
            last_done = done;
            last_t = now;
            if quiet {
                continue;
            }
            let (p50, p99) = if cum.is_empty() {
                ("-".to_string(), "-".to_string())
            } else {
                (
                    fmt_us(cum.value_at_quantile(0.5) as f64 / 1000.0),
                    fmt_us(cum.value_at_quantile(0.99) as f64 / 1000.0),
                )
            };
            let _ = writeln!(
                std::io::stderr(),
                "[{tick:>4}s] {label} {phase:<7} {rate:>11.0} {}/s  errors {:<6} p50 {p50:<8} p99 {p99}",
                self.unit,
                self.errors.load(Ordering::Relaxed),
            );
        }
    }
}
