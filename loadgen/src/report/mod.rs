//! The result of a run: one serialisable `RunResult` (all figures, the exact command,
//! machine info), the end-of-run summary on stdout, and the files written by `--out`
//! (result.json, result.md, latency.hgrm, latency.svg).

pub mod compare;
pub mod hgrm;
pub mod markdown;
pub mod svg;

use crate::cli::{Rate, RunOpts};
use crate::stats::{fmt_us, percentile_curve, Counts, LatencySummary};
use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// How loadgen was invoked: the argv as typed, and the flags after scenario expansion.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    pub command: String,
    pub effective_args: Vec<String>,
    pub scenario_file: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub os: String,
    pub memory_gib: f64,
    pub hostname: String,
}

impl Machine {
    pub fn read() -> Self {
        let file = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = file("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let os = file("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default();
        let mem_kib: f64 = file("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Machine {
            cores: crate::affinity::available_cores(),
            cpu_model,
            kernel: file("/proc/sys/kernel/osrelease").trim().to_string(),
            os,
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            hostname: file("/proc/sys/kernel/hostname").trim().to_string(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadPhase {
    pub records: u64,
    pub seconds: f64,
    pub rate: f64,
    pub counts: Counts,
    pub latency_us: LatencySummary,
}

/// Per-QoS delivery accounting of an MQTT run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QosFigures {
    pub published: u64,
    pub acknowledged: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub ack_latency_us: Option<LatencySummary>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MqttFigures {
    pub protocol: String,
    pub publishers: usize,
    pub subscribers: usize,
    pub publish_rate: f64,
    pub per_qos: BTreeMap<String, QosFigures>,
    pub errors: BTreeMap<String, u64>,
    /// Retained messages left by earlier runs, received and ignored.
    pub stale_ignored: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub loadgen_version: String,
    pub name: String,
    pub kind: String,
    pub target: String,
    pub command: String,
    pub effective_args: Vec<String>,
    pub scenario_file: Option<String>,
    pub machine: Machine,
    pub placement: String,
    pub started_at_unix: u64,
    pub mode: String,
    pub target_rate: Option<f64>,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub throughput: f64,
    pub throughput_unit: String,
    pub latency_basis: String,
    pub latency_us: LatencySummary,
    pub service_time_us: Option<LatencySummary>,
    pub percentile_curve: Vec<[f64; 2]>,
    pub errors_total: u64,
    pub counts: Option<Counts>,
    pub load_phase: Option<LoadPhase>,
    pub mqtt: Option<MqttFigures>,
    pub config: serde_json::Value,
    /// loadgen's own CPU time during the run, and the share of its worker cores it used
    /// (near 1.0 = loadgen itself may be the bottleneck).
    #[serde(default)]
    pub loadgen_cpu_s: f64,
    #[serde(default)]
    pub loadgen_cpu_share: f64,
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RunResult {
    pub fn new(
        kind: &str,
        inv: Invocation,
        run: &RunOpts,
        config: serde_json::Value,
        started_at_unix: u64,
    ) -> Self {
        let (mode, target_rate, basis) = match run.rate {
            Rate::Max => (
                "closed-loop",
                None,
                "from actual send time (closed loop: each connection waits for its answer)",
            ),
            Rate::PerSec(r) => (
                "open-loop",
                Some(r),
                "from intended send time (open loop: includes queueing behind slow answers)",
            ),
        };
        RunResult {
            loadgen_version: env!("CARGO_PKG_VERSION").to_string(),
            name: run.name.clone().unwrap_or_else(|| kind.to_string()),
            kind: kind.to_string(),
            target: String::new(),
            command: inv.command,
            effective_args: inv.effective_args,
            scenario_file: inv.scenario_file,
            machine: Machine::read(),
            placement: String::new(),
            started_at_unix,
            mode: mode.to_string(),
            target_rate,
            warmup_s: run.warmup.as_secs_f64(),
            duration_s: 0.0,
            throughput: 0.0,
            throughput_unit: String::new(),
            latency_basis: basis.to_string(),
            latency_us: LatencySummary::default(),
            service_time_us: None,
            percentile_curve: Vec::new(),
            errors_total: 0,
            counts: None,
            load_phase: None,
            mqtt: None,
            config,
            loadgen_cpu_s: 0.0,
            loadgen_cpu_share: 0.0,
            histogram: None,
        }
    }

    /// Fills the latency figures and throughput (`count` operations in `secs`).
    pub fn set_latency(
        &mut self,
        h: &Histogram<u64>,
        service: Option<&Histogram<u64>>,
        count: u64,
        secs: f64,
        unit: &str,
    ) {
        self.latency_us = LatencySummary::of(h);
        self.percentile_curve = percentile_curve(h);
        if self.target_rate.is_some() {
            self.service_time_us = service.map(LatencySummary::of);
        }
        self.duration_s = (secs * 1000.0).round() / 1000.0;
        self.throughput = if secs > 0.0 {
            (count as f64 / secs * 10.0).round() / 10.0
        } else {
            0.0
        };
        self.throughput_unit = unit.to_string();
        self.histogram = Some(h.clone());
    }

    /// Records loadgen's CPU use over `wall_s` seconds with `threads` workers.
    pub fn set_cpu(&mut self, cpu_s: f64, wall_s: f64, threads: usize) {
        self.loadgen_cpu_s = (cpu_s * 1000.0).round() / 1000.0;
        let share = cpu_s / (wall_s * threads.max(1) as f64).max(1e-9);
        self.loadgen_cpu_share = (share * 1000.0).round() / 1000.0;
    }

    /// The end-of-run summary printed on stdout.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let l = &self.latency_us;
        s.push_str(&format!(
            "== loadgen {} \"{}\": {} ==\n",
            self.kind, self.name, self.target
        ));
        s.push_str(&format!("mode        {}", self.mode));
        if let Some(r) = self.target_rate {
            s.push_str(&format!(" at {r} {}", self.throughput_unit));
        }
        s.push_str(&format!("; latency {}\n", self.latency_basis));
        s.push_str(&format!("placement   {}\n", self.placement));
        if let Some(lp) = &self.load_phase {
            s.push_str(&format!(
                "load phase  {} records in {:.2} s ({:.0}/s), {} failed\n",
                lp.records,
                lp.seconds,
                lp.rate,
                lp.counts.requests - lp.counts.ok
            ));
        }
        s.push_str(&format!(
            "measured    {:.2} s after {:.2} s warm-up\n",
            self.duration_s, self.warmup_s
        ));
        s.push_str(&format!(
            "throughput  {:.1} {}\n",
            self.throughput, self.throughput_unit
        ));
        if let Some(c) = &self.counts {
            s.push_str(&format!(
                "requests    {} = responses {} + timeouts {} + io {} + parse {}\n",
                c.requests, c.responses, c.timeout, c.io, c.parse
            ));
            let status: Vec<String> = c.status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            s.push_str(&format!(
                "errors      {} (connect {}, timeout {}, io {}, parse {}, status {})\n",
                self.errors_total,
                c.connect,
                c.timeout,
                c.io,
                c.parse,
                if status.is_empty() {
                    "none".to_string()
                } else {
                    status.join(", ")
                }
            ));
            if c.unsent > 0 {
                s.push_str(&format!("WARNING     {} scheduled requests never got a free connection: target rate not reached\n", c.unsent));
            }
        }
        if let Some(m) = &self.mqtt {
            s.push_str(&markdown::mqtt_lines(m));
        }
        s.push_str(&format!(
            "latency     p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  ({} samples)\n",
            fmt_us(l.p50),
            fmt_us(l.p90),
            fmt_us(l.p99),
            fmt_us(l.p99_9),
            fmt_us(l.p99_99),
            fmt_us(l.max),
            l.count
        ));
        if let Some(sv) = &self.service_time_us {
            s.push_str(&format!(
                "service     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (from actual send; what a coordinated-omission tool would report)\n",
                fmt_us(sv.p50),
                fmt_us(sv.p90),
                fmt_us(sv.p99),
                fmt_us(sv.p99_9),
                fmt_us(sv.max)
            ));
        }
        s.push_str(&format!(
            "loadgen cpu {:.0}% of its worker core(s) ({:.2} s CPU){}\n",
            self.loadgen_cpu_share * 100.0,
            self.loadgen_cpu_s,
            if self.target_rate.is_some() {
                " (open loop: includes spinning to send on time)"
            } else if self.loadgen_cpu_share >= 0.9 {
                ": WARNING, loadgen itself may be the bottleneck (give it more --cores)"
            } else {
                ""
            }
        ));
        s
    }

    /// Writes result.json, result.md, latency.hgrm and latency.svg into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
        let w = |name: &str, text: String| {
            std::fs::write(dir.join(name), text)
                .with_context(|| format!("cannot write {}", dir.join(name).display()))
        };
        w("result.json", serde_json::to_string_pretty(self)? + "\n")?;
        w("result.md", markdown::result_md(self))?;
        if let Some(h) = &self.histogram {
            w("latency.hgrm", hgrm::render(h))?;
        }
        let title = format!("{} — latency by percentile", self.name);
        w(
            "latency.svg",
            svg::plot(
                &title,
                &[(self.name.clone(), self.percentile_curve.clone())],
            ),
        )?;
        Ok(())
    }
}
