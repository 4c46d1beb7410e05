//! How long a worker may sleep before its next intended send: a timed wait wakes late by
//! a machine-dependent amount (timer slack, virtualisation), so the pacer learns that
//! oversleep and spins through the last stretch instead; `--busy-poll` never sleeps.

/// Smallest and largest stretch spun before an intended send time.
const MIN_SPIN_NS: u64 = 20_000;
const MAX_SPIN_NS: u64 = 200_000;

pub struct Pacer {
    busy: bool,
    /// Smoothed oversleep of timed waits, in ns.
    oversleep_ns: f64,
    /// The wait in progress: when it should end.
    asked_until: Option<u64>,
}

impl Pacer {
    pub fn new(busy: bool) -> Self {
        Pacer {
            busy,
            oversleep_ns: 0.0,
            asked_until: None,
        }
    }

    fn spin_ns(&self) -> u64 {
        ((2.0 * self.oversleep_ns) as u64 + 5_000).clamp(MIN_SPIN_NS, MAX_SPIN_NS)
    }

    /// The poll timeout to use now, given the time left until the next intended send
    /// (`None` = nothing scheduled, so `idle_ns`).
    pub fn timeout(&mut self, now: u64, until_send: Option<u64>, idle_ns: u64) -> u64 {
        if self.busy {
            return 0;
        }
        let t = match until_send {
            Some(left) if left <= self.spin_ns() => 0,
            Some(left) => (left - self.spin_ns()).min(idle_ns),
            None => idle_ns,
        };
        self.asked_until = (t > 0 && until_send.is_some()).then_some(now + t);
        t
    }

    /// Called after the wait with its wake-up time and whether events ended it early.
    pub fn woke(&mut self, now: u64, had_events: bool) {
        if let (Some(until), false) = (self.asked_until.take(), had_events) {
            let late = now.saturating_sub(until) as f64;
            self.oversleep_ns = 0.9 * self.oversleep_ns + 0.1 * late;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pacer;

    #[test]
    fn pacer_learns_oversleep_and_spins_longer() {
        let mut p = Pacer::new(false);
        assert_eq!(p.timeout(0, Some(1_000_000), 10_000_000), 980_000);
        for _ in 0..50 {
            let t = p.timeout(0, Some(1_000_000), 10_000_000);
            p.woke(t + 100_000, false);
        }
        let t = p.timeout(0, Some(1_000_000), 10_000_000);
        assert!(
            t < 820_000,
            "spins at least twice the 100 µs oversleep: {t}"
        );
        assert_eq!(p.timeout(0, Some(10_000), 10_000_000), 0);
        assert_eq!(Pacer::new(true).timeout(0, Some(1_000_000), 10_000_000), 0);
    }
}
