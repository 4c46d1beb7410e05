//! Hybrid logical clock: record versions that order causally related writes even when wall
//! clocks are skewed. A version is (48 bits of Unix milliseconds, 16-bit counter) plus the node
//! id that made it; versions compare by clock first and node id second, so every pair of
//! distinct writes has a winner (last-writer-wins).

use super::clock::Clock;
use std::fmt;

/// A record version. `clock` = ms << 16 | counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    pub clock: u64,
    pub node: u16,
}

impl Version {
    pub const ZERO: Version = Version { clock: 0, node: 0 };

    /// Milliseconds since the Unix epoch of the physical part.
    pub fn millis(&self) -> u64 {
        self.clock >> 16
    }

    /// Parses the ETag form `"<clock hex>.<node>"` (quotes optional, `W/` refused).
    pub fn parse_etag(text: &str) -> Option<Version> {
        let t = text.trim();
        let t = t
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(t);
        let (clock, node) = t.split_once('.')?;
        Some(Version {
            clock: u64::from_str_radix(clock, 16).ok()?,
            node: node.parse().ok()?,
        })
    }

    /// Writes the quoted ETag form.
    pub fn write_etag(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(out, "\"{:x}.{}\"", self.clock, self.node);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{}", self.clock, self.node)
    }
}

/// The clock of one writer (one per shard). Not shared: each shard's writer owns its own.
#[derive(Debug)]
pub struct Hlc {
    last: u64,
    node: u16,
    wall: Clock,
}

impl Hlc {
    pub fn new(node: u16, wall: Clock) -> Hlc {
        Hlc {
            last: 0,
            node,
            wall,
        }
    }

    fn wall(&self) -> u64 {
        self.wall.now_millis() << 16
    }

    /// The latest version issued or observed (its clock).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// A new version, greater than every version issued or observed before.
    pub fn now(&mut self) -> Version {
        let wall = self.wall();
        self.last = if wall > self.last {
            wall
        } else {
            self.last + 1
        };
        Version {
            clock: self.last,
            node: self.node,
        }
    }

    /// Folds in a version seen elsewhere (a stored record, a peer's write), so the next local
    /// version is greater than it.
    pub fn observe(&mut self, v: Version) {
        if v.clock > self.last {
            self.last = v.clock;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_even_within_one_millisecond() {
        let mut h = Hlc::new(1, Clock::system());
        let mut prev = h.now();
        for _ in 0..10_000 {
            let v = h.now();
            assert!(v > prev);
            prev = v;
        }
    }

    #[test]
    fn observing_a_future_version_moves_the_clock_past_it() {
        let mut h = Hlc::new(1, Clock::system());
        let future = Version {
            clock: h.now().clock + (5000 << 16),
            node: 2,
        };
        h.observe(future);
        assert!(h.now() > future);
    }

    #[test]
    fn etag_round_trips() {
        let v = Version {
            clock: 0x18f_0000_0001,
            node: 7,
        };
        let mut out = Vec::new();
        v.write_etag(&mut out);
        assert_eq!(
            Version::parse_etag(std::str::from_utf8(&out).unwrap()),
            Some(v)
        );
        assert_eq!(Version::parse_etag("nonsense"), None);
    }
}
