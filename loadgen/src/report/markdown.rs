//! Markdown renderings of one run (`result.md`) and the MQTT delivery lines shared with
//! the console summary.

use super::{MqttFigures, RunResult};
use crate::stats::fmt_us;
use std::fmt::Write;

pub fn mqtt_lines(m: &MqttFigures) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "mqtt        protocol {}, {} publisher(s) -> {} subscriber(s), published {:.1} msg/s",
        m.protocol, m.publishers, m.subscribers, m.publish_rate
    );
    for (q, f) in &m.per_qos {
        let _ = writeln!(
            s,
            "  {q:<9} published {} acked {} expected {} delivered {} lost {} duplicated {} out-of-order {}",
            f.published, f.acknowledged, f.expected, f.delivered, f.lost, f.duplicated, f.out_of_order
        );
    }
    if !m.errors.is_empty() {
        let e: Vec<String> = m.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "errors      {}", e.join(", "));
    }
    if m.stale_ignored > 0 {
        let _ = writeln!(
            s,
            "note        {} retained message(s) from earlier runs ignored",
            m.stale_ignored
        );
    }
    s
}

pub fn result_md(r: &RunResult) -> String {
    let l = &r.latency_us;
    let mut s = String::new();
    let _ = writeln!(s, "# loadgen {}: {}\n", r.kind, r.name);
    let _ = writeln!(s, "- target: `{}`", r.target);
    let _ = writeln!(s, "- command: `{}`", r.command);
    if r.effective_args.len() > 1 && r.scenario_file.is_some() {
        let _ = writeln!(s, "- effective flags: `{}`", r.effective_args.join(" "));
    }
    let _ = writeln!(
        s,
        "- mode: {}{}",
        r.mode,
        r.target_rate
            .map(|t| format!(" at {t} {}", r.throughput_unit))
            .unwrap_or_default()
    );
    let _ = writeln!(s, "- latency {}", r.latency_basis);
    let _ = writeln!(s, "- placement: {}", r.placement);
    let m = &r.machine;
    let _ = writeln!(
        s,
        "- machine: {} cores, {}, Linux {}, {} GiB, {}",
        m.cores, m.cpu_model, m.kernel, m.memory_gib, m.os
    );
    let _ = writeln!(
        s,
        "- loadgen's own CPU: {:.0} % of its worker cores ({:.2} s)",
        r.loadgen_cpu_share * 100.0,
        r.loadgen_cpu_s
    );
    let _ = writeln!(
        s,
        "- measured {:.2} s after {:.2} s warm-up\n",
        r.duration_s, r.warmup_s
    );
    let _ = writeln!(
        s,
        "| throughput | p50 | p90 | p99 | p99.9 | p99.99 | max | samples | errors |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        s,
        "| {:.1} {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        r.throughput,
        r.throughput_unit,
        fmt_us(l.p50),
        fmt_us(l.p90),
        fmt_us(l.p99),
        fmt_us(l.p99_9),
        fmt_us(l.p99_99),
        fmt_us(l.max),
        l.count,
        r.errors_total
    );
    if let Some(sv) = &r.service_time_us {
        let _ = writeln!(
            s,
            "Service time (from actual send, the figure a coordinated-omission tool would show): p50 {}, p99 {}, p99.9 {}, max {}\n",
            fmt_us(sv.p50),
            fmt_us(sv.p99),
            fmt_us(sv.p99_9),
            fmt_us(sv.max)
        );
    }
    if let Some(c) = &r.counts {
        let status: Vec<String> = c.status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(
            s,
            "Requests {} = responses {} + timeouts {} + io {} + parse {}; connect errors {}; non-2xx/3xx: {}; unsent (open loop) {}\n",
            c.requests,
            c.responses,
            c.timeout,
            c.io,
            c.parse,
            c.connect,
            if status.is_empty() { "none".into() } else { status.join(", ") },
            c.unsent
        );
    }
    if let Some(lp) = &r.load_phase {
        let _ = writeln!(
            s,
            "Load phase: {} records in {:.2} s ({:.0}/s), {} failed\n",
            lp.records,
            lp.seconds,
            lp.rate,
            lp.counts.requests - lp.counts.ok
        );
    }
    if let Some(mq) = &r.mqtt {
        let _ = writeln!(s, "```\n{}```\n", mqtt_lines(mq));
    }
    let _ = writeln!(s, "![latency by percentile](latency.svg)\n\nFull distribution: [latency.hgrm](latency.hgrm) (milliseconds).");
    s
}
