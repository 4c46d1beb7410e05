//! Replication lag as the receiver sees it: for every change applied from a peer, the time
//! from its write on the origin (the physical part of its HLC clock) to its commit here, in
//! milliseconds. Kept in a sliding window (two histograms that take turns every `TURN`), so
//! `/status` shows the recent distribution, not one since start. Clocks of different hosts
//! differ by their skew; on one host (the local cluster, benchmarks) the figure is exact to a
//! millisecond.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long each histogram collects before it becomes the previous one.
pub const TURN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct LagWindow {
    current: Histogram<u64>,
    previous: Histogram<u64>,
    turned: Instant,
}

impl Default for LagWindow {
    fn default() -> Self {
        let h = || Histogram::new_with_bounds(1, 3_600_000, 2).expect("static histogram bounds");
        LagWindow {
            current: h(),
            previous: h(),
            turned: Instant::now(),
        }
    }
}

impl LagWindow {
    fn turn(&mut self) {
        let age = self.turned.elapsed();
        if age < TURN {
            return;
        }
        if age < TURN * 2 {
            std::mem::swap(&mut self.current, &mut self.previous);
        } else {
            self.previous.reset();
        }
        self.current.reset();
        self.turned = Instant::now();
    }

    /// Records one change applied `ms` after it was written.
    pub fn record(&mut self, ms: u64) {
        self.turn();
        self.current.saturating_record(ms.max(1));
    }

    /// The last 5 to 10 seconds: count and percentiles (ms; 1 means "at most 1").
    pub fn to_json(&self) -> Value {
        // Records only arrive through `record`, which turns first: `current` holds the
        // `TURN` after `turned`, `previous` the `TURN` before it.
        let age = self.turned.elapsed();
        let mut all = self.current.clone();
        if age >= TURN * 2 {
            all.reset();
        } else if age < TURN {
            let _ = all.add(&self.previous);
        }
        json!({
            "count": all.len(),
            "p50_ms": all.value_at_quantile(0.5),
            "p99_ms": all.value_at_quantile(0.99),
            "max_ms": all.max(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_reports_what_was_recorded() {
        let mut w = LagWindow::default();
        for ms in 1..=100 {
            w.record(ms);
        }
        let j = w.to_json();
        assert_eq!(j["count"], 100);
        assert_eq!(j["p50_ms"], 50);
        assert_eq!(j["p99_ms"], 99);
        assert_eq!(j["max_ms"], 100);
    }
}
