//! `loadgen compare`: reads several result.json files and renders one Markdown table
//! (with ratios against the first run) and one SVG plot with the runs overlaid.

use super::{svg, RunResult};
use crate::cli::CompareArgs;
use crate::stats::fmt_us;
use anyhow::{bail, Context, Result};
use std::fmt::Write;

pub fn load(path: &std::path::Path) -> Result<RunResult> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a loadgen result.json", path.display()))
}

pub fn run(args: &CompareArgs) -> Result<String> {
    let mut runs = Vec::new();
    for f in &args.files {
        runs.push(load(f)?);
    }
    if let Some(labels) = &args.labels {
        let labels: Vec<&str> = labels.split(',').collect();
        if labels.len() != runs.len() {
            bail!(
                "--labels has {} names for {} files",
                labels.len(),
                runs.len()
            );
        }
        for (r, l) in runs.iter_mut().zip(labels) {
            r.name = l.trim().to_string();
        }
    }
    let title = args
        .title
        .clone()
        .unwrap_or_else(|| "latency by percentile".to_string());
    if args.row {
        let head = if args.header { ROW_HEADER } else { "" };
        return Ok(format!(
            "{head}{}",
            row(&title, &runs[0], &runs[runs.len() - 1])
        ));
    }
    let md = table(&title, &runs);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: cannot create", dir.display()))?;
        let series: Vec<(String, Vec<[f64; 2]>)> = runs
            .iter()
            .map(|r| (r.name.clone(), r.percentile_curve.clone()))
            .collect();
        std::fs::write(dir.join("compare.svg"), svg::plot(&title, &series))?;
        std::fs::write(
            dir.join("compare.md"),
            format!("{md}\n![{title}](compare.svg)\n"),
        )?;
    }
    Ok(md)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

/// Header of the rows printed by `--row`.
pub const ROW_HEADER: &str = "| scenario | baseline | run | throughput baseline | throughput run | run ÷ baseline | p50 baseline | p50 run | p99 baseline | p99 run | p99 run ÷ baseline |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";

/// One Markdown row: `last` against the baseline `first`.
pub fn row(title: &str, first: &RunResult, last: &RunResult) -> String {
    let (a, b) = (&first.latency_us, &last.latency_us);
    format!(
        "| {title} | {} | {} | {:.0} {} | {:.0} {} | **{}** | {} | {} | {} | {} | {} |\n",
        first.name,
        last.name,
        first.throughput,
        first.throughput_unit,
        last.throughput,
        last.throughput_unit,
        ratio(last.throughput, first.throughput),
        fmt_us(a.p50),
        fmt_us(b.p50),
        fmt_us(a.p99),
        fmt_us(b.p99),
        ratio(b.p99, a.p99)
    )
}

/// The comparison table; ratio columns are this run ÷ the first run.
pub fn table(title: &str, runs: &[RunResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### {title}\n");
    let _ = writeln!(s, "| run | mode | throughput | × first | p50 | p90 | p99 | p99.9 | p99.99 | max | p99 × first | errors |");
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let first = &runs[0];
    for r in runs {
        let l = &r.latency_us;
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.mode,
            r.throughput,
            r.throughput_unit,
            ratio(r.throughput, first.throughput),
            fmt_us(l.p50),
            fmt_us(l.p90),
            fmt_us(l.p99),
            fmt_us(l.p99_9),
            fmt_us(l.p99_99),
            fmt_us(l.max),
            ratio(l.p99, first.latency_us.p99),
            r.errors_total
        );
    }
    s
}
