//! What makes MQTT delivery checkable: the payload stamp (run nonce, publisher, sequence,
//! intended send time, topic index), topic-filter matching, and per-subscriber receipt
//! tracking that counts unique, duplicated and out-of-order deliveries per publisher.

/// Bytes of the stamp at the start of every payload.
pub const STAMP_BYTES: usize = 32;
const MAGIC: [u8; 4] = *b"LGv1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub nonce: u32,
    pub publisher: u32,
    pub seq: u64,
    pub intended_ns: u64,
    pub topic: u32,
}

impl Stamp {
    pub fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.nonce.to_le_bytes());
        out[4..8].copy_from_slice(&self.publisher.to_le_bytes());
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..24].copy_from_slice(&self.intended_ns.to_le_bytes());
        out[24..28].copy_from_slice(&self.topic.to_le_bytes());
        out[28..32].copy_from_slice(&MAGIC);
    }

    pub fn read(p: &[u8]) -> Option<Stamp> {
        if p.len() < STAMP_BYTES || p[28..32] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().unwrap());
        Some(Stamp {
            nonce: u32_at(0),
            publisher: u32_at(4),
            seq: u64_at(8),
            intended_ns: u64_at(16),
            topic: u32_at(24),
        })
    }
}

/// MQTT topic filter matching with `+` and `#` wildcards.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return !topic.starts_with('$'),
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Receipts of one subscriber from one publisher.
#[derive(Clone, Debug, Default)]
pub struct PubReceipts {
    bits: Vec<u64>,
    pub unique: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// Highest sequence + 1 seen per topic index (0 = none yet).
    last: Vec<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    New,
    Duplicate,
}

impl PubReceipts {
    pub fn record(&mut self, seq: u64, topic: u32) -> Receipt {
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if self.bits.len() <= w {
            self.bits.resize((w + 1).next_power_of_two(), 0);
        }
        if self.bits[w] & (1 << b) != 0 {
            self.duplicated += 1;
            return Receipt::Duplicate;
        }
        self.bits[w] |= 1 << b;
        self.unique += 1;
        let t = topic as usize;
        if self.last.len() <= t {
            self.last.resize(t + 1, 0);
        }
        if seq + 1 < self.last[t] {
            self.out_of_order += 1;
        } else {
            self.last[t] = seq + 1;
        }
        Receipt::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips() {
        let s = Stamp {
            nonce: 1,
            publisher: 2,
            seq: 3,
            intended_ns: 4,
            topic: 5,
        };
        let mut buf = [0u8; 40];
        s.write(&mut buf);
        assert_eq!(Stamp::read(&buf), Some(s));
        assert_eq!(Stamp::read(&buf[..20]), None);
    }

    #[test]
    fn filters_match_like_the_spec() {
        assert!(topic_matches("sensors/#", "sensors/1/2"));
        assert!(topic_matches("sensors/+/2", "sensors/1/2"));
        assert!(!topic_matches("sensors/+", "sensors/1/2"));
        assert!(topic_matches("#", "a"));
        assert!(!topic_matches("#", "$SYS/x"));
        assert!(!topic_matches("a/b", "a/c"));
    }

    #[test]
    fn receipts_count_dups_and_reordering() {
        let mut r = PubReceipts::default();
        assert_eq!(r.record(0, 0), Receipt::New);
        assert_eq!(r.record(2, 0), Receipt::New);
        assert_eq!(r.record(1, 0), Receipt::New);
        assert_eq!(r.record(2, 0), Receipt::Duplicate);
        assert_eq!((r.unique, r.duplicated, r.out_of_order), (3, 1, 1));
    }
}
