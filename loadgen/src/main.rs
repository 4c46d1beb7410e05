//! Entry point of `loadgen`: parses the command line, expands scenario files, runs the
//! chosen workload, prints the summary, writes `--out` files, and maps failures to exit
//! codes (2 = bad input or unreachable target, 3 = no response or delivery measured).

mod affinity;
mod cli;
mod clock;
mod dist;
mod http;
mod mqtt;
mod net;
mod pace;
mod progress;
mod report;
mod rng;
mod scenario;
mod stats;
mod wire;

use anyhow::{anyhow, Result};
use clap::Parser;
use cli::{Cli, Cmd};
use report::{Invocation, RunResult};

fn main() {
    clock::epoch();
    match real_main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn shell_quote(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn real_main() -> Result<i32> {
    let argv: Vec<String> = std::env::args().collect();
    let mut inv = Invocation {
        command: shell_quote(&argv),
        effective_args: argv.clone(),
        scenario_file: None,
    };
    let cli = Cli::parse();
    let cmd = match cli.cmd {
        Cmd::Compare(c) => {
            print!("{}", report::compare::run(&c)?);
            return Ok(0);
        }
        Cmd::Run(r) => {
            let expanded = scenario::expand(&r.file, &r.overrides)?;
            let parsed = Cli::try_parse_from(&expanded).map_err(|e| {
                anyhow!(
                    "scenario file {} (with the flags after it): {}",
                    r.file.display(),
                    e.render().to_string().trim_end()
                )
            })?;
            inv.effective_args = expanded;
            inv.scenario_file = Some(r.file.display().to_string());
            parsed.cmd
        }
        other => other,
    };
    let (result, duration) = match cmd {
        Cmd::Http(a) => (http::run(&a, inv)?, a.run.duration),
        Cmd::Mqtt(a) => (mqtt::run(&a, inv)?, a.run.duration),
        Cmd::Run(_) => return Err(anyhow!("a scenario file cannot run another scenario")),
        Cmd::Compare(_) => {
            return Err(anyhow!("use `loadgen compare` directly, not in a scenario"))
        }
    };
    finish(&result, !duration.is_zero())
}

fn finish(r: &RunResult, expect_samples: bool) -> Result<i32> {
    print!("{}", r.summary());
    if let Some(dir) = r.config.get("out").and_then(|v| v.as_str()) {
        r.write(std::path::Path::new(dir))?;
        eprintln!("loadgen: wrote {dir}/result.json, result.md, latency.hgrm, latency.svg");
    }
    if expect_samples && r.latency_us.count == 0 {
        eprintln!("loadgen: error: no response or delivery was measured in the window (see the errors above)");
        return Ok(3);
    }
    Ok(0)
}
