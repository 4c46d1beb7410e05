//! The wire format of replication links: every message is a `Frame`, an rkyv archive sent as
//! `[payload length u32 BE][CRC-32 of the payload u32 BE][payload]`. The receiver checks the
//! length against its bound before it allocates, the checksum before it looks at the bytes, and
//! then validates the archive (rkyv checked access) before reading it. Any failure is an error
//! that closes the link; nothing of a bad frame is ever applied.

use crate::mqtt::message::Props;
use crate::storage::changelog::Change;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use rkyv::{Archive, Deserialize, Serialize};

/// Protocol version, checked in `Hello` (2: MQTT messages are forwarded in `Publish`; 3:
/// `Interest`; 4: `Changes` says where it starts, so any loss or repeat inside a stream shows; a
/// `PeerMessage` names the shared subscriptions the receiver serves).
pub const PROTO: u32 = 4;

/// Bytes before a frame's payload.
pub const HEADER: usize = 8;

/// The first frame each side sends.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub proto: u32,
    pub node_id: u16,
    pub name: String,
    pub partitions: u32,
    pub nonce: [u8; 32],
}

/// One change-log entry of the sender, with its sequence number there.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub change: Change,
}

/// A record as anti-entropy repair ships it (tombstones included).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RepairRecord {
    pub id: String,
    pub clock: u64,
    pub node: u16,
    pub tombstone: bool,
    pub body: Vec<u8>,
}

/// The digest of one partition of one table.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PartDigest {
    pub partition: u16,
    pub hash: [u8; 32],
}

/// How far a node holds an origin's changes.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginClock {
    pub origin: u16,
    pub clock: u64,
}

/// An MQTT message published on the sender (see `forward.rs`): what a subscriber receives.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PeerMessage {
    /// The node it was published on (always the sender: messages are never forwarded twice).
    pub origin: u16,
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    /// Milliseconds the message may still be delivered (v5 message expiry), when it has one.
    pub expiry_ms: Option<u64>,
    pub props: Option<Props>,
    /// Shared subscriptions (`$share/...`) the receiver serves for this message: the sender
    /// picked it to give the message to one of its members of each.
    pub shared: Vec<String>,
}

/// Every message of the protocol. See docs/replication.md for the conversation.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    /// The dialer's proof that it knows the secret.
    Auth {
        mac: [u8; 32],
    },
    /// The acceptor's proof, and what the dialer needs to subscribe.
    Welcome {
        mac: [u8; 32],
        generation: u64,
        shards: u16,
    },
    /// The link is refused; the reason is for the log.
    Refuse {
        reason: String,
    },
    /// Stream shard `shard`'s change log from `from` (0: no cursor, repair first).
    Subscribe {
        shard: u16,
        from: u64,
    },
    /// Entries of the sender's change log in `[from, upto)`; only changes made on the sender
    /// are included. `from` is where the previous batch of the stream ended (or the subscribed
    /// cursor), so the receiver refuses a batch that does not continue its stream. `log_next` is the sender's next sequence; `lag_entries` and
    /// `lag_ms` are what the receiver had not acknowledged when this was sent (for `/status`).
    Changes {
        shard: u16,
        from: u64,
        entries: Vec<Entry>,
        upto: u64,
        log_next: u64,
        lag_entries: u64,
        lag_ms: u64,
        /// When not 0: the receiver, once it applied this, holds every change the sender made
        /// on that shard with a clock below this (tombstone purge, see `purge.rs`).
        stable_below: u64,
    },
    /// The sender's knowledge: for each origin node, a clock below which the sender holds
    /// every change that origin made.
    Stable {
        clocks: Vec<OriginClock>,
    },
    /// The log no longer reaches the cursor: repair, then subscribe again from `resume_at`.
    Gap {
        shard: u16,
        resume_at: u64,
    },
    /// The receiver committed everything before `upto` (as durable as its local writes);
    /// its cursor follows shortly after.
    Ack {
        shard: u16,
        upto: u64,
    },
    /// Keeps an idle link alive (the dialer answers each with one).
    Ping,
    DigestRequest,
    Digest {
        table: String,
        parts: Vec<PartDigest>,
    },
    DigestDone,
    RangeRequest {
        table: String,
        partition: u16,
        after: Option<String>,
    },
    Range {
        table: String,
        partition: u16,
        records: Vec<RepairRecord>,
        more: Option<String>,
    },
    /// MQTT messages published on the sender since the last such frame, oldest first (sender
    /// to puller only).
    Publish {
        messages: Vec<PeerMessage>,
    },
    /// MQTT filters the sender's subscribers want (sender to puller only): with `reset`, the
    /// whole set starts over with these; otherwise changes, in order.
    Interest {
        reset: bool,
        changes: Vec<InterestChange>,
    },
}

/// A filter the sender now wants (`add`) or no longer wants.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct InterestChange {
    pub filter: String,
    pub add: bool,
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    Io(std::io::Error),
    /// The peer closed the connection between frames.
    Closed,
    /// The connection ended inside a frame.
    Truncated,
    TooLarge(usize),
    Checksum,
    Invalid(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "i/o error: {e}"),
            FrameError::Closed => write!(f, "connection closed"),
            FrameError::Truncated => write!(f, "bad frame: connection ended inside a frame"),
            FrameError::TooLarge(n) => write!(f, "bad frame: {n} bytes is over the frame limit"),
            FrameError::Checksum => write!(f, "bad frame: checksum mismatch"),
            FrameError::Invalid(m) => write!(f, "bad frame: {m}"),
        }
    }
}

impl FrameError {
    /// True for errors caused by the bytes received (as opposed to the connection).
    pub fn is_bad_frame(&self) -> bool {
        !matches!(self, FrameError::Io(_) | FrameError::Closed)
    }
}

/// A frame rkyv could not serialize: a bug on this side, never the peer's doing.
#[derive(Debug)]
pub struct EncodeError(String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot encode a frame: {}", self.0)
    }
}

/// Why a frame could not be sent.
#[derive(Debug)]
pub enum WriteError {
    /// Nothing was sent; the link closes (the peer would count an empty frame as a bad one).
    Encode(EncodeError),
    Io(std::io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Encode(e) => e.fmt(f),
            WriteError::Io(e) => e.fmt(f),
        }
    }
}

/// Encodes a frame with its header.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, EncodeError> {
    let kind = super::handshake::kind(frame);
    let payload = rkyv::to_bytes::<rkyv::rancor::Error>(frame)
        .map_err(|e| EncodeError(format!("{kind}: {e}")))?;
    let len = u32::try_from(payload.len())
        .map_err(|_| EncodeError(format!("{kind}: {} bytes", payload.len())))?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Checks and decodes a payload whose header said `crc`.
pub fn decode(payload: &[u8], crc: u32) -> Result<Frame, FrameError> {
    if crc32(payload) != crc {
        return Err(FrameError::Checksum);
    }
    decode_payload(payload)
}

/// Validates and decodes a payload whose checksum has been checked (or that never crossed a
/// wire): any bytes give a frame or `FrameError::Invalid`, never a panic.
pub fn decode_payload(payload: &[u8]) -> Result<Frame, FrameError> {
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    let archived = rkyv::access::<ArchivedFrame, rkyv::rancor::Error>(&aligned)
        .map_err(|e| FrameError::Invalid(format!("archive does not validate: {e}")))?;
    rkyv::deserialize::<Frame, rkyv::rancor::Error>(archived)
        .map_err(|e| FrameError::Invalid(format!("archive does not decode: {e}")))
}

/// Reads one frame of at most `max` payload bytes.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Frame, FrameError> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match r.read(&mut header[got..]).await {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > max {
        return Err(FrameError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    match r.read_exact(&mut payload).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Truncated)
        }
        Err(e) => return Err(FrameError::Io(e)),
    }
    decode(&payload, crc)
}

/// Writes one frame; one that does not encode is an error and nothing is written.
pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> Result<(), WriteError> {
    let bytes = encode(frame).map_err(WriteError::Encode)?;
    w.write_all(&bytes).await.map_err(WriteError::Io)?;
    w.flush().await.map_err(WriteError::Io)
}

/// CRC-32 (IEEE 802.3, the one of zip and Ethernet). `crc32fast` uses the CPU's carry-less
/// multiply where it has one: a frame can be 4 MiB, too much for a byte-at-a-time table loop.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn crc_matches_a_bitwise_reference_at_every_length() {
        // The definition, one bit at a time: what peers running older builds compute.
        fn reference(bytes: &[u8]) -> u32 {
            let mut c = !0u32;
            for b in bytes {
                c ^= *b as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xedb8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        let bytes: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in (0..300).chain([1023, 1024, 1025, 4096]) {
            assert_eq!(
                crc32(&bytes[..len]),
                reference(&bytes[..len]),
                "length {len}"
            );
        }
    }

    #[test]
    fn frames_round_trip_and_damage_is_refused() {
        let f = Frame::Gap {
            shard: 3,
            resume_at: 99,
        };
        let bytes = encode(&f).unwrap();
        let crc = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(decode(&bytes[HEADER..], crc).unwrap(), f);
        // A flipped bit fails the checksum.
        let mut bad = bytes[HEADER..].to_vec();
        bad[0] ^= 1;
        assert!(matches!(decode(&bad, crc), Err(FrameError::Checksum)));
        // A damaged archive with a matching checksum fails validation, never panics.
        let bad = vec![0xff; bytes.len() - HEADER];
        assert!(matches!(
            decode(&bad, crc32(&bad)),
            Err(FrameError::Invalid(_))
        ));
        assert!(decode(&[], crc32(&[])).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x = 0x1234_5678_u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode(&bytes, crc32(&bytes));
        }
    }
}

#[cfg(test)]
#[path = "frame_props.rs"]
mod props;
