//! The command line: subcommands `http`, `mqtt`, `run` (a TOML scenario) and `compare`,
//! their flags with defaults, and the value parsers for durations, rates and lists.

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about = "HTTP/1.1 and MQTT load generator: open or closed loop, HDR latency, no coordinated omission"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Drive an HTTP/1.1 server: a table workload (GET/PUT/POST/DELETE/query) or one fixed path.
    #[command(args_override_self = true)]
    Http(HttpArgs),
    /// Drive an MQTT broker with publishers and subscribers (3.1.1 or 5.0).
    #[command(args_override_self = true)]
    Mqtt(MqttArgs),
    /// Run a TOML scenario file; extra flags after the file override its keys.
    Run(RunArgs),
    /// Overlay several result.json files: one Markdown table and one SVG plot.
    Compare(CompareArgs),
}

/// Flags shared by every workload: placement, pacing, bounds and output.
#[derive(Args, Debug, Clone, Serialize)]
pub struct RunOpts {
    /// Cores to run on, one worker thread each (e.g. `1`, `2-3`); keep them off the server's cores.
    #[arg(long, default_value = "")]
    pub cores: String,
    /// Worker threads when --cores is not given.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Measured time after the warm-up (e.g. `10s`, `500ms`, `1m`; `0s` = only the load phase).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(serialize_with = "ser_dur")]
    pub duration: Duration,
    /// Time run at the same load before measuring; its samples are discarded.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    #[serde(serialize_with = "ser_dur")]
    pub warmup: Duration,
    /// `max` = closed loop (peak throughput); a number = open loop at that many operations per second.
    #[arg(long, default_value = "max", value_parser = parse_rate)]
    pub rate: Rate,
    /// Stop after this many measured operations even if --duration has not elapsed.
    #[arg(long)]
    pub requests: Option<u64>,
    /// A request (or QoS handshake) with no answer within this time counts as a timeout.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(serialize_with = "ser_dur")]
    pub timeout: Duration,
    /// Give up on a connection attempt after this long.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(serialize_with = "ser_dur")]
    pub connect_timeout: Duration,
    /// Write result.json, result.md, latency.hgrm and latency.svg into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A label for this run in reports and comparisons.
    #[arg(long)]
    pub name: Option<String>,
    /// Never sleep in the event loop: spin on the poller (lowest latency floor; burns the
    /// worker cores, so use it only with --cores away from the server).
    #[arg(long)]
    pub busy_poll: bool,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Seed of the key/mix/payload random generators (each worker derives its own).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug, Clone, Serialize)]
pub struct HttpArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunOpts,
    /// Server base URL, e.g. http://127.0.0.1:9926
    #[arg(long)]
    pub url: String,
    /// Table name for the REST workload (GET/PUT/DELETE /{Table}/{id}, POST /{Table}/, GET /{Table}/?query).
    #[arg(long, conflicts_with = "path")]
    pub table: Option<String>,
    /// GET this fixed path on every request instead of a table workload (nginx/wrk comparisons).
    #[arg(long)]
    pub path: Option<String>,
    /// GET one of the paths listed in this file (one per line, `#` comments), chosen at random
    /// for each request: a page mix such as every product page of a shop.
    #[arg(long, conflicts_with_all = ["path", "table"])]
    pub paths_file: Option<PathBuf>,
    /// Virtual users: after each answer a connection waits this long before its next request
    /// (closed loop only; `--connections` is the number of users). Users start spread over
    /// one think time, so they do not all fire in the same instant.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    #[serde(serialize_with = "ser_dur")]
    pub think: Duration,
    /// Operation mix in relative weights: get, put, post, delete, query.
    #[arg(long, default_value = "get=100")]
    pub mix: String,
    /// Key space size (ids p0 .. p{N-1}); defaults to --load when given, else 10000.
    #[arg(long)]
    pub keys: Option<u64>,
    /// Key distribution: uniform, zipf:S, hot:P%[:H%].
    #[arg(long, default_value = "uniform")]
    pub dist: String,
    /// Approximate JSON body size of written records, in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Number of distinct `category` values (record k gets cat-{k mod N}).
    #[arg(long, default_value_t = 100)]
    pub categories: u64,
    /// Query template for `query` operations, sent as GET /{Table}/?{query}; {cat} and {id} are filled in.
    #[arg(long, default_value = "category={cat}&limit(0,20)")]
    pub query: String,
    /// Create this many records first (PUT, closed loop, all connections), then run the workload.
    #[arg(long, default_value_t = 0)]
    pub load: u64,
    /// Concurrent keep-alive connections (spread over the worker threads).
    #[arg(long, short = 'c', default_value_t = 32)]
    pub connections: usize,
    /// Requests in flight per connection (HTTP/1.1 pipelining); 1 = no pipelining.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Prefix of record ids.
    #[arg(long, default_value = "p")]
    pub key_prefix: String,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// HTTP basic auth as user:password.
    #[arg(long)]
    pub basic_auth: Option<String>,
}

#[derive(Args, Debug, Clone, Serialize)]
pub struct MqttArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunOpts,
    /// Broker address host:port (an mqtt:// prefix is accepted).
    #[arg(long)]
    pub broker: String,
    /// Protocol version: 3.1.1 (v4) or 5 (v5).
    #[arg(long, default_value = "3.1.1", value_parser = ["3.1.1", "4", "5", "5.0"])]
    pub protocol: String,
    /// Publishing clients.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Subscribing clients.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    /// QoS of publications; a list (e.g. `0,1,2`) assigns them to publishers in turn.
    #[arg(long, default_value = "0")]
    pub qos: String,
    /// Payload size in bytes (at least 32: the header carrying ids, sequence and send time).
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
    /// Topic template; {pub} = publisher index, {n} = message sequence modulo --topics-per-pub.
    #[arg(long, default_value = "sensors/{pub}/{n}")]
    pub topic: String,
    /// Distinct topics per publisher ({n} in --topic).
    #[arg(long, default_value_t = 1)]
    pub topics_per_pub: u64,
    /// Subscription filter; {sub} = subscriber index. One shared filter = fan-out/fan-in.
    #[arg(long, default_value = "sensors/#")]
    pub filter: String,
    /// Publish with the retain flag (retained messages are cleared at the end).
    #[arg(long)]
    pub retain: bool,
    /// Unacknowledged QoS 1/2 publications allowed per publisher.
    #[arg(long, default_value_t = 16)]
    pub inflight: usize,
    /// After publishing stops, wait at most this long for deliveries still on their way.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(serialize_with = "ser_dur")]
    pub drain: Duration,
    /// Keep-alive interval in seconds sent in CONNECT.
    #[arg(long, default_value_t = 60)]
    pub keepalive: u16,
    /// MQTT 5 only: the subscribers' session expiry interval in seconds (0 = none). With one,
    /// a subscriber is a persistent session (the broker stores its QoS 1/2 messages until
    /// acknowledged); it still starts clean, and its session ends this long after the run.
    #[arg(long, default_value_t = 0)]
    pub sub_session_expiry: u32,
    /// Client id prefix.
    #[arg(long, default_value = "loadgen")]
    pub client_prefix: String,
    #[arg(long)]
    pub username: Option<String>,
    #[arg(long)]
    pub password: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario file (TOML): `mode = "http"|"mqtt"` plus any flag of that mode as a key.
    pub file: PathBuf,
    /// Flags that override the file's keys, e.g. `--url http://127.0.0.1:8080 --out dir`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub overrides: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// result.json files; the first one is the baseline of the ratio columns.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write compare.md and compare.svg here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Title of the table and plot.
    #[arg(long)]
    pub title: Option<String>,
    /// Comma-separated labels replacing the runs' names.
    #[arg(long)]
    pub labels: Option<String>,
    /// Print only one Markdown row comparing the last run with the first:
    /// `| title | first | last | throughput first, last, last÷first | p50 … | p99 … |`.
    #[arg(long)]
    pub row: bool,
    /// With --row: print the table header first.
    #[arg(long, requires = "row")]
    pub header: bool,
}

/// Open loop at a fixed rate, or closed loop as fast as answers come back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    Max,
    PerSec(f64),
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::Max => s.serialize_str("max"),
            Rate::PerSec(r) => s.serialize_f64(*r),
        }
    }
}

pub fn parse_rate(s: &str) -> Result<Rate, String> {
    if s == "max" {
        return Ok(Rate::Max);
    }
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(Rate::PerSec(r)),
        _ => Err(format!(
            "'{s}' is not a rate: use `max` or a positive number per second"
        )),
    }
}

/// `10s`, `250ms`, `2m`, `1.5s`, `100us`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" | "µs" => v / 1e6,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("'{s}' has an unknown unit: use us, ms, s, m or h")),
    };
    if !secs.is_finite() || !(0.0..=7.0 * 86400.0).contains(&secs) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn ser_dur<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("ten").unwrap_err().contains("ten"));
        assert_eq!(parse_rate("max").unwrap(), Rate::Max);
        assert_eq!(parse_rate("1000").unwrap(), Rate::PerSec(1000.0));
        assert!(parse_rate("-3").is_err());
    }
}
