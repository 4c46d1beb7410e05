//! The node's wall clock, injectable: the hybrid logical clocks of the writers and the
//! replication state machines read time only through a `Clock`, so a test or the replication
//! simulator can run nodes on clocks it skews, jumps and advances by hand. Production uses
//! `Clock::system()`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A source of Unix milliseconds, cheap to clone and share between threads.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Source>);

#[derive(Debug)]
enum Source {
    System,
    /// Set by hand (tests, the simulator).
    Manual(AtomicU64),
}

impl Clock {
    /// The operating system's wall clock.
    pub fn system() -> Clock {
        Clock(Arc::new(Source::System))
    }

    /// A clock that reads `ms` until it is set or advanced.
    pub fn manual(ms: u64) -> Clock {
        Clock(Arc::new(Source::Manual(AtomicU64::new(ms))))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> u64 {
        match &*self.0 {
            Source::System => super::now_millis(),
            Source::Manual(ms) => ms.load(Ordering::Relaxed),
        }
    }

    /// Sets a manual clock (it may go back, as a real clock stepped by NTP can).
    pub fn set(&self, ms: u64) {
        match &*self.0 {
            Source::System => debug_assert!(false, "the system clock cannot be set"),
            Source::Manual(m) => m.store(ms, Ordering::Relaxed),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_reads_what_it_was_set_to_in_every_clone() {
        let c = Clock::manual(1_000);
        let d = c.clone();
        c.set(5_000);
        assert_eq!(d.now_millis(), 5_000);
        c.set(4_000);
        assert_eq!(d.now_millis(), 4_000);
    }

    #[test]
    fn the_system_clock_reads_the_present() {
        let t = Clock::system().now_millis();
        assert!(t > 1_700_000_000_000, "{t}");
    }
}
