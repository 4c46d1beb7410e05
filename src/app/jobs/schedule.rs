//! When a job runs: every interval from the node's start (monotonic clock), or at wall-clock
//! multiples of an interval (UTC, counted from the Unix epoch, optionally shifted by an
//! offset), and how long one run may take. Pure arithmetic; the waiting is in `runner`.

use std::time::{Duration, Instant};

/// Shortest interval a job may have.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest interval a job may have.
pub const MAX_INTERVAL: Duration = Duration::from_secs(31 * 24 * 3600);
/// A run's timeout is its interval, but at most this, unless the job sets its own.
pub const DEFAULT_TIMEOUT_CAP: Duration = Duration::from_secs(600);
/// Longest timeout a job may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// How the ticks of a schedule are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One interval after start, then every interval.
    Every,
    /// At every wall-clock time that is a multiple of the interval (plus the offset).
    Aligned,
}

/// When a job runs, and how long one run may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
    interval: Duration,
    offset: Duration,
    timeout: Option<Duration>,
}

impl Schedule {
    /// Every `interval`, the first run one interval after the node started.
    pub fn every(interval: Duration) -> Schedule {
        Schedule {
            kind: Kind::Every,
            interval,
            offset: Duration::ZERO,
            timeout: None,
        }
    }

    /// At wall-clock multiples of `interval` counted from the Unix epoch in UTC: every hour on
    /// the hour, every 5 minutes at :00, :05, ..., every day at midnight UTC.
    pub fn aligned(interval: Duration) -> Schedule {
        Schedule {
            kind: Kind::Aligned,
            ..Schedule::every(interval)
        }
    }

    /// Shifts an aligned schedule by `offset` (less than the interval): `aligned(1 day)`
    /// with `offset(3 h)` runs every day at 03:00 UTC.
    pub fn offset(self, offset: Duration) -> Schedule {
        Schedule { offset, ..self }
    }

    /// How long one run may take before it is cut at its next await (default: the
    /// interval, at most 10 minutes).
    pub fn timeout(self, timeout: Duration) -> Schedule {
        Schedule {
            timeout: Some(timeout),
            ..self
        }
    }

    /// The interval between two ticks.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether ticks are at wall-clock multiples of the interval.
    pub fn is_aligned(&self) -> bool {
        self.kind == Kind::Aligned
    }

    /// How long one run may take.
    pub fn run_timeout(&self) -> Duration {
        self.timeout
            .unwrap_or_else(|| self.interval.min(DEFAULT_TIMEOUT_CAP))
    }

    /// Refuses a schedule outside the bounds, saying which.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.interval < MIN_INTERVAL || self.interval > MAX_INTERVAL {
            return Err(format!(
                "interval {:?} is outside {MIN_INTERVAL:?} ..= {MAX_INTERVAL:?}",
                self.interval
            ));
        }
        if self.offset >= self.interval {
            return Err(format!(
                "offset {:?} is not less than the interval {:?}",
                self.offset, self.interval
            ));
        }
        if self.kind == Kind::Every && !self.offset.is_zero() {
            return Err("an offset applies to aligned schedules only".into());
        }
        match self.timeout {
            Some(t) if t.is_zero() || t > MAX_TIMEOUT => Err(format!(
                "timeout {t:?} is not above zero and at most {MAX_TIMEOUT:?}"
            )),
            _ => Ok(()),
        }
    }

    /// How the schedule reads in `/status`.
    pub(crate) fn describe(&self) -> String {
        let ms = self.interval.as_millis();
        match self.kind {
            Kind::Every => format!("every {ms} ms"),
            Kind::Aligned if self.offset.is_zero() => format!("aligned {ms} ms"),
            Kind::Aligned => format!("aligned {ms} ms + {} ms", self.offset.as_millis()),
        }
    }

    /// An `every` schedule: the tick after tick `done` (0: none yet) that is not in the past
    /// at `now`, as (its number, when it is due). Ticks missed while the shard was busy are
    /// passed over, not run late in a burst.
    pub(crate) fn next_every(&self, start: Instant, done: u64, now: Instant) -> (u64, Instant) {
        let iv = self.interval.as_nanos().max(1);
        let elapsed = now.saturating_duration_since(start).as_nanos();
        let k = (done + 1).max(u64::try_from(elapsed / iv).unwrap_or(u64::MAX - 1) + 1);
        let due = u32::try_from(k)
            .ok()
            .and_then(|k| self.interval.checked_mul(k))
            .and_then(|d| start.checked_add(d))
            .unwrap_or(now + self.interval);
        (k, due)
    }

    /// An aligned schedule: the first slot (Unix ms) at or after `now_ms` and after the slot
    /// that last ran (`last`).
    pub(crate) fn next_aligned(&self, now_ms: u64, last: Option<u64>) -> u64 {
        let iv = (self.interval.as_millis() as u64).max(1);
        let off = self.offset.as_millis() as u64;
        let from = match last {
            Some(l) => now_ms.max(l + 1),
            None => now_ms,
        };
        if from <= off {
            off
        } else {
            off + (from - off).div_ceil(iv) * iv
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn every_ticks_one_interval_apart_and_passes_over_missed_ticks() {
        let s = Schedule::every(S);
        let t0 = Instant::now();
        assert_eq!(s.next_every(t0, 0, t0), (1, t0 + S));
        // Woken at tick 1 (or a hair before it): tick 2 is next.
        assert_eq!(s.next_every(t0, 1, t0 + S), (2, t0 + 2 * S));
        assert_eq!(
            s.next_every(t0, 1, t0 + S - Duration::from_millis(1)),
            (2, t0 + 2 * S)
        );
        // The shard was busy for 3.5 s: ticks 2 and 3 are passed over.
        assert_eq!(
            s.next_every(t0, 1, t0 + Duration::from_millis(3500)),
            (4, t0 + 4 * S)
        );
    }

    #[test]
    fn aligned_slots_are_multiples_of_the_interval_plus_the_offset() {
        let s = Schedule::aligned(S);
        assert_eq!(s.next_aligned(10_250, None), 11_000);
        assert_eq!(s.next_aligned(11_000, None), 11_000);
        // Ran slot 11 000 and woke again within it: the next slot.
        assert_eq!(s.next_aligned(11_000, Some(11_000)), 12_000);
        assert_eq!(s.next_aligned(11_003, Some(11_000)), 12_000);
        let hour = Duration::from_secs(3600);
        let daily = Schedule::aligned(24 * hour).offset(3 * hour);
        let day_ms = 86_400_000;
        assert_eq!(
            daily.next_aligned(5 * day_ms, None),
            5 * day_ms + 3 * 3_600_000
        );
        assert_eq!(
            daily.next_aligned(5 * day_ms + 4 * 3_600_000, None),
            6 * day_ms + 3 * 3_600_000
        );
        assert_eq!(daily.next_aligned(0, None), 3 * 3_600_000);
    }

    #[test]
    fn the_timeout_defaults_to_the_interval_capped() {
        assert_eq!(Schedule::every(S).run_timeout(), S);
        let day = Duration::from_secs(86_400);
        assert_eq!(Schedule::aligned(day).run_timeout(), DEFAULT_TIMEOUT_CAP);
        assert_eq!(Schedule::every(day).timeout(2 * S).run_timeout(), 2 * S);
    }

    #[test]
    fn schedules_outside_the_bounds_are_refused() {
        assert!(Schedule::every(Duration::from_millis(1)).check().is_err());
        assert!(Schedule::every(MAX_INTERVAL * 2).check().is_err());
        assert!(Schedule::every(S).offset(S / 2).check().is_err());
        assert!(Schedule::aligned(S).offset(S).check().is_err());
        assert!(Schedule::aligned(S).offset(S / 2).check().is_ok());
        assert!(Schedule::every(S).timeout(Duration::ZERO).check().is_err());
        assert!(Schedule::every(S).timeout(S * 5).check().is_ok());
    }
}
