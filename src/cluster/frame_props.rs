//! Property tests of the replication wire format (`frame.rs`): any frame, of every kind and
//! with any field values, decodes to itself after encoding; and any bytes at all give a frame
//! or an error, never a panic.

use super::*;
use crate::storage::changelog::ChangeOp;
use proptest::collection::vec;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    ".{0,12}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..40)
}

fn hello() -> impl Strategy<Value = Frame> {
    (
        any::<u32>(),
        any::<u16>(),
        text(),
        any::<u32>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(proto, node_id, name, partitions, nonce)| {
            Frame::Hello(Hello {
                proto,
                node_id,
                name,
                partitions,
                nonce,
            })
        })
}

fn change() -> impl Strategy<Value = Change> {
    (
        text(),
        text(),
        any::<u64>(),
        any::<u16>(),
        any::<bool>(),
        bytes(),
    )
        .prop_map(|(table, id, clock, node, put, body)| Change {
            table,
            id,
            clock,
            node,
            op: if put { ChangeOp::Put } else { ChangeOp::Delete },
            body,
        })
}

fn changes() -> impl Strategy<Value = Frame> {
    let entries = vec(
        (any::<u64>(), change()).prop_map(|(seq, change)| Entry { seq, change }),
        0..4,
    );
    (any::<u16>(), any::<[u64; 6]>(), entries).prop_map(|(shard, n, entries)| Frame::Changes {
        shard,
        from: n[0],
        entries,
        upto: n[1],
        log_next: n[2],
        lag_entries: n[3],
        lag_ms: n[4],
        stable_below: n[5],
    })
}

fn props() -> impl Strategy<Value = Props> {
    let strings = vec((text(), text()), 0..3);
    (
        any::<Option<u8>>(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(bytes()),
        strings,
    )
        .prop_map(
            |(payload_format, content_type, response_topic, correlation_data, user_properties)| {
                Props {
                    payload_format,
                    content_type,
                    response_topic,
                    correlation_data,
                    user_properties,
                }
            },
        )
}

fn publish() -> impl Strategy<Value = Frame> {
    let message = (
        any::<u16>(),
        text(),
        bytes(),
        0u8..3,
        any::<bool>(),
        any::<Option<u64>>(),
        proptest::option::of(props()),
        vec(text(), 0..3),
    )
        .prop_map(
            |(origin, topic, payload, qos, retain, expiry_ms, props, shared)| PeerMessage {
                origin,
                topic,
                payload,
                qos,
                retain,
                expiry_ms,
                props,
                shared,
            },
        );
    vec(message, 0..3).prop_map(|messages| Frame::Publish { messages })
}

fn repair() -> impl Strategy<Value = Frame> {
    let record = (text(), any::<u64>(), any::<u16>(), any::<bool>(), bytes()).prop_map(
        |(id, clock, node, tombstone, body)| RepairRecord {
            id,
            clock,
            node,
            tombstone,
            body,
        },
    );
    let parts = vec(
        (any::<u16>(), any::<[u8; 32]>())
            .prop_map(|(partition, hash)| PartDigest { partition, hash }),
        0..3,
    );
    prop_oneof![
        (text(), parts).prop_map(|(table, parts)| Frame::Digest { table, parts }),
        (text(), any::<u16>(), proptest::option::of(text())).prop_map(
            |(table, partition, after)| {
                Frame::RangeRequest {
                    table,
                    partition,
                    after,
                }
            }
        ),
        (
            text(),
            any::<u16>(),
            vec(record, 0..3),
            proptest::option::of(text())
        )
            .prop_map(|(table, partition, records, more)| Frame::Range {
                table,
                partition,
                records,
                more,
            }),
    ]
}

fn control() -> impl Strategy<Value = Frame> {
    let clocks = vec(
        (any::<u16>(), any::<u64>()).prop_map(|(origin, clock)| OriginClock { origin, clock }),
        0..3,
    );
    let interest = vec(
        (text(), any::<bool>()).prop_map(|(filter, add)| InterestChange { filter, add }),
        0..3,
    );
    prop_oneof![
        any::<[u8; 32]>().prop_map(|mac| Frame::Auth { mac }),
        (any::<[u8; 32]>(), any::<u64>(), any::<u16>()).prop_map(|(mac, generation, shards)| {
            Frame::Welcome {
                mac,
                generation,
                shards,
            }
        }),
        text().prop_map(|reason| Frame::Refuse { reason }),
        (any::<u16>(), any::<u64>()).prop_map(|(shard, from)| Frame::Subscribe { shard, from }),
        clocks.prop_map(|clocks| Frame::Stable { clocks }),
        (any::<u16>(), any::<u64>()).prop_map(|(shard, resume_at)| Frame::Gap { shard, resume_at }),
        (any::<u16>(), any::<u64>()).prop_map(|(shard, upto)| Frame::Ack { shard, upto }),
        Just(Frame::Ping),
        Just(Frame::DigestRequest),
        Just(Frame::DigestDone),
        (any::<bool>(), interest).prop_map(|(reset, changes)| Frame::Interest { reset, changes }),
    ]
}

/// Every kind of frame, with arbitrary contents.
fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![hello(), changes(), publish(), repair(), control()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_frame_decodes_to_what_was_encoded(f in frame()) {
        let wire = encode(&f).unwrap();
        let len = u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(wire[4..HEADER].try_into().unwrap());
        prop_assert_eq!(len, wire.len() - HEADER);
        prop_assert_eq!(decode(&wire[HEADER..], crc).unwrap(), f.clone());
        let read_back = futures_lite::future::block_on(read(&mut &wire[..], len)).unwrap();
        prop_assert_eq!(read_back, f);
    }

    #[test]
    fn any_payload_decodes_or_is_refused_without_panic(payload in vec(any::<u8>(), 0..512)) {
        let _ = decode_payload(&payload);
    }

    #[test]
    fn a_frame_cut_short_is_truncated(f in frame(), cut in any::<prop::sample::Index>()) {
        let wire = encode(&f).unwrap();
        let short = &wire[..cut.index(wire.len() - 1) + 1];
        let got = futures_lite::future::block_on(read(&mut &short[..], usize::MAX));
        prop_assert!(matches!(got, Err(FrameError::Truncated)), "{:?}", got);
    }
}
