//! The stored form of a record: a fixed header (format, version, origin node, tombstone flag)
//! followed by the JSON document bytes exactly as they will be served, so a GET returns stored
//! bytes without re-encoding them.

use super::hlc::Version;

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 8 + 2 + 1;
const TOMBSTONE: u8 = 1;

/// A decoded view of a stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub version: Version,
    pub tombstone: bool,
    pub body: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Reads a stored value; `None` if it is not in a format this build knows.
    pub fn decode(bytes: &'a [u8]) -> Option<Envelope<'a>> {
        if bytes.len() < HEADER || bytes[0] != FORMAT {
            return None;
        }
        let clock = u64::from_be_bytes(bytes[1..9].try_into().ok()?);
        let node = u16::from_be_bytes(bytes[9..11].try_into().ok()?);
        Some(Envelope {
            version: Version { clock, node },
            tombstone: bytes[11] & TOMBSTONE != 0,
            body: &bytes[HEADER..],
        })
    }

    /// Encodes a record (or a tombstone, with an empty body).
    pub fn encode(version: Version, tombstone: bool, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.push(FORMAT);
        out.extend_from_slice(&version.clock.to_be_bytes());
        out.extend_from_slice(&version.node.to_be_bytes());
        out.push(if tombstone { TOMBSTONE } else { 0 });
        out.extend_from_slice(body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = Version { clock: 99, node: 3 };
        let bytes = Envelope::encode(v, false, b"{\"id\":1}");
        let e = Envelope::decode(&bytes).unwrap();
        assert_eq!(
            e,
            Envelope {
                version: v,
                tombstone: false,
                body: b"{\"id\":1}"
            }
        );
        let t = Envelope::encode(v, true, b"");
        assert!(Envelope::decode(&t).unwrap().tombstone);
        assert!(Envelope::decode(b"\x09short").is_none());
    }
}
