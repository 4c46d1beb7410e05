//! Measurement state: latency histograms (nanoseconds, 3 significant digits), request and
//! error counters per worker, merging them at the end, and the summary figures (percentiles
//! in microseconds, the percentile curve used by the plots).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Highest trackable latency: one hour, in nanoseconds.
const MAX_NS: u64 = 3_600_000_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// Counters of one worker (or, merged, of the whole run). Invariant kept by the HTTP
/// workers: `requests == responses + timeout + io + parse`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    /// Requests written to a connection during the measured window.
    pub requests: u64,
    /// Complete responses received for them, whatever their status.
    pub responses: u64,
    /// Responses with a 2xx or 3xx status.
    pub ok: u64,
    /// Requests with no response within `--timeout`.
    pub timeout: u64,
    /// Requests lost to a connection closed or reset by the peer.
    pub io: u64,
    /// Requests whose response could not be parsed.
    pub parse: u64,
    /// Failed connection attempts (no request involved).
    pub connect: u64,
    /// Non-2xx/3xx responses by status code (a subset of `responses`).
    pub status: BTreeMap<u16, u64>,
    /// Open loop only: requests whose intended send time fell inside the window but that
    /// never got a free connection before the end (the target rate was not reached).
    pub unsent: u64,
}

impl Counts {
    pub fn merge(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.responses += o.responses;
        self.ok += o.ok;
        self.timeout += o.timeout;
        self.io += o.io;
        self.parse += o.parse;
        self.connect += o.connect;
        self.unsent += o.unsent;
        for (k, v) in &o.status {
            *self.status.entry(*k).or_default() += v;
        }
    }

    /// Every error, status errors included.
    pub fn errors(&self) -> u64 {
        self.timeout + self.io + self.parse + self.connect + self.status.values().sum::<u64>()
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
}

fn us(ns: u64) -> f64 {
    (ns as f64 / 1000.0 * 1000.0).round() / 1000.0
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let q = |p: f64| us(h.value_at_quantile(p));
        LatencySummary {
            count: h.len(),
            min: us(h.min()),
            mean: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
            stdev: (h.stdev() / 1000.0 * 1000.0).round() / 1000.0,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: us(h.max()),
        }
    }
}

/// Points `[percentile, latency_us]` evenly spaced in "nines" (−log10(1 − p)), up to the
/// resolution the sample count supports, ending with the maximum.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    if h.is_empty() {
        return Vec::new();
    }
    let max_nines = (h.len() as f64).log10().clamp(1.0, 6.0);
    let steps = (max_nines * 20.0).round() as usize;
    let mut out = Vec::with_capacity(steps + 2);
    for i in 0..=steps {
        let nines = max_nines * i as f64 / steps as f64;
        let p = 1.0 - 10f64.powf(-nines);
        out.push([p * 100.0, us(h.value_at_quantile(p))]);
    }
    out.push([100.0, us(h.max())]);
    out
}

/// Formats microseconds for humans: `412µs`, `3.21ms`, `1.50s`.
pub fn fmt_us(v: f64) -> String {
    if v < 1000.0 {
        format!("{v:.0}µs")
    } else if v < 1_000_000.0 {
        format!("{:.2}ms", v / 1000.0)
    } else {
        format!("{:.2}s", v / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_curve_follow_the_data() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 1000).unwrap();
        }
        let s = LatencySummary::of(&h);
        assert!((s.p50 - 5000.0).abs() < 10.0, "{s:?}");
        assert!((s.p99 - 9900.0).abs() < 20.0, "{s:?}");
        let c = percentile_curve(&h);
        assert!(c
            .windows(2)
            .all(|w| w[0][1] <= w[1][1] && w[0][0] <= w[1][0]));
        assert_eq!(c.last().unwrap()[0], 100.0);
    }
}
