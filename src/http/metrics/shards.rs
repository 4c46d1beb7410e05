//! The per-shard families of `/metrics`: HTTP requests (by route class and status class) and
//! their latency, connections and requests in flight, queue depths, the writers' group sizes
//! and commit times, records, change-log length and storage sizes.

use super::gather::ShardSnapshot;
use super::requests::{RouteClass, STATUS_CLASSES};
use super::text::{Exposition, Kind, Read};
use crate::runtime::shard::NodeShared;
use crate::storage::pow2::Pow2Histogram;
use crate::storage::writer::WriterStats;
use hdrhistogram::Histogram;
use std::sync::atomic::Ordering;

/// Upper bounds of the request latency buckets, in microseconds.
const LATENCY_LE_MICROS: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Requests by class and status class, and the latency of each class that saw requests.
pub fn http(e: &mut Exposition, snaps: &[ShardSnapshot]) {
    let name = "microlith_http_requests_total";
    e.family(name, Kind::Counter, "HTTP requests answered, by shard, route class and status class (classes a shard has seen).");
    for s in snaps {
        let shard = s.shard.to_string();
        for (class, c) in RouteClass::ALL.iter().zip(&s.requests.classes) {
            if c.total() == 0 {
                continue;
            }
            for (status, n) in STATUS_CLASSES.iter().zip(c.by_status) {
                let labels = [
                    ("shard", shard.as_str()),
                    ("class", class.name()),
                    ("status", status),
                ];
                e.sample(name, &labels, n);
            }
        }
    }
    let name = "microlith_http_request_duration_seconds";
    e.family(
        name,
        Kind::Histogram,
        "Time from a parsed request to its queued answer, by shard and route class.",
    );
    for s in snaps {
        let shard = s.shard.to_string();
        for (class, c) in RouteClass::ALL.iter().zip(&s.requests.classes) {
            if c.total() == 0 {
                continue;
            }
            let labels = [("shard", shard.as_str()), ("class", class.name())];
            let sum = c.micros_sum as f64 / 1e6;
            e.histogram(name, &labels, latency_buckets(&c.latency), sum);
        }
    }
    let name = "microlith_http_requests_in_flight";
    e.family(name, Kind::Gauge, "HTTP requests being handled now.");
    for s in snaps {
        e.sample(name, &[("shard", &s.shard.to_string())], s.in_flight);
    }
}

/// The HDR histogram cut into the exposed buckets (seconds).
fn latency_buckets(h: &Histogram<u64>) -> Vec<(Option<f64>, u64)> {
    let mut counts = [0u64; LATENCY_LE_MICROS.len() + 1];
    for v in h.iter_recorded() {
        let value = h.lowest_equivalent(v.value_iterated_to());
        let i = LATENCY_LE_MICROS.partition_point(|le| *le < value);
        counts[i] += v.count_at_value();
    }
    let bounds = LATENCY_LE_MICROS.iter().map(|le| Some(*le as f64 / 1e6));
    bounds.chain([None]).zip(counts).collect()
}

/// Connections, queue depths, records, the change log and storage sizes.
pub fn node(e: &mut Exposition, node: &NodeShared, mqtt: &crate::mqtt::NodeMqtt) {
    let shards = node.dbs.len();
    let name = "microlith_http_connections";
    e.family(name, Kind::Gauge, "Open HTTP connections.");
    for s in 0..shards {
        let open = node.connections[s].load(Ordering::Relaxed);
        e.sample(name, &[("shard", &s.to_string())], open);
    }
    let name = "microlith_queue_depth";
    e.family(
        name,
        Kind::Gauge,
        "Messages waiting in a shard's queues: its writer, its runtime inbox, its broker's inbox.",
    );
    for s in 0..shards {
        let shard = s.to_string();
        let queues = [
            ("writer", node.writers[s].len()),
            ("mesh", node.inboxes[s].len()),
            ("mqtt", mqtt.inboxes[s].len()),
        ];
        for (queue, n) in queues {
            e.sample(name, &[("shard", &shard), ("queue", queue)], n);
        }
    }
    writers(e, &node.writer_stats);
    storage(e, node);
}

/// The writers' counters and histograms.
fn writers(e: &mut Exposition, stats: &[std::sync::Arc<WriterStats>]) {
    let counters: [Read<WriterStats, u64>; 6] = [
        ("microlith_writer_writes_total", "Writes committed.", |w| {
            w.writes.load(Ordering::Relaxed)
        }),
        (
            "microlith_writer_groups_total",
            "Groups committed (one commit, one fsync in sync mode, each).",
            |w| w.batches.load(Ordering::Relaxed),
        ),
        (
            "microlith_writer_failures_total",
            "Group commits that failed.",
            |w| w.failures.load(Ordering::Relaxed),
        ),
        (
            "microlith_writer_feed_drops_total",
            "Change batches a slow feed consumer missed.",
            |w| w.feed_drops.load(Ordering::Relaxed),
        ),
        (
            "microlith_replicated_changes_total",
            "Changes from other nodes stored (won last-writer-wins).",
            |w| w.replicated.load(Ordering::Relaxed),
        ),
        (
            "microlith_replicated_stale_total",
            "Changes from other nodes not stored (older or duplicates).",
            |w| w.replicated_stale.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, get) in counters {
        e.family(name, Kind::Counter, help);
        for (s, w) in stats.iter().enumerate() {
            e.sample(name, &[("shard", &s.to_string())], get(w));
        }
    }
    let name = "microlith_writer_group_size";
    e.family(
        name,
        Kind::Histogram,
        "Requests answered by one group commit.",
    );
    for (s, w) in stats.iter().enumerate() {
        let (counts, sum) = w.group_sizes.read();
        e.histogram(
            name,
            &[("shard", &s.to_string())],
            pow2_buckets(counts, 1.0),
            sum as f64,
        );
    }
    let name = "microlith_writer_commit_seconds";
    e.family(
        name,
        Kind::Histogram,
        "Time of one group commit: the batch write and, in sync mode, the fsync.",
    );
    for (s, w) in stats.iter().enumerate() {
        let (counts, sum) = w.commit_micros.read();
        e.histogram(
            name,
            &[("shard", &s.to_string())],
            pow2_buckets(counts, 1e-6),
            sum as f64 * 1e-6,
        );
    }
}

/// Power-of-two buckets, bounds scaled by `unit`.
fn pow2_buckets<const N: usize>(counts: [u64; N], unit: f64) -> Vec<(Option<f64>, u64)> {
    (0..N)
        .map(|i| Pow2Histogram::<N>::upper_bound(i).map(|b| b as f64 * unit))
        .zip(counts)
        .collect()
}

/// Records, change-log length and bytes on disk per keyspace.
fn storage(e: &mut Exposition, node: &NodeShared) {
    let name = "microlith_records";
    e.family(name, Kind::Gauge, "Live records a shard holds.");
    for (s, w) in node.writer_stats.iter().enumerate() {
        e.sample(
            name,
            &[("shard", &s.to_string())],
            w.records.load(Ordering::Relaxed),
        );
    }
    let name = "microlith_changelog_entries";
    e.family(name, Kind::Gauge, "Entries in a shard's change log.");
    for (s, w) in node.writer_stats.iter().enumerate() {
        let next = w.changelog_next.load(Ordering::Relaxed);
        let first = w.changelog_first.load(Ordering::Relaxed);
        e.sample(
            name,
            &[("shard", &s.to_string())],
            next.saturating_sub(first),
        );
    }
    let name = "microlith_storage_bytes";
    e.family(
        name,
        Kind::Gauge,
        "Bytes on disk per shard and keyspace (journal: the write-ahead journal).",
    );
    for (s, db) in node.dbs.iter().enumerate() {
        let shard = s.to_string();
        let keyspaces = [
            ("records", db.records.disk_space()),
            ("index", db.index.disk_space()),
            ("changelog", db.changelog.disk_space()),
            ("mqtt", db.mqtt.disk_space()),
        ];
        let in_keyspaces: u64 = keyspaces.iter().map(|(_, n)| n).sum();
        let total = db.db.disk_space().unwrap_or(in_keyspaces);
        let journal = ("journal", total.saturating_sub(in_keyspaces));
        for (keyspace, n) in keyspaces.into_iter().chain([journal]) {
            e.sample(name, &[("shard", &shard), ("keyspace", keyspace)], n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_bucket_of_their_bound() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 2).unwrap();
        for v in [1, 100, 101, 1_000, 20_000_000] {
            h.record(v).unwrap();
        }
        let b = latency_buckets(&h);
        assert_eq!(b[0], (Some(0.0001), 2), "1 µs and 100 µs are within 100 µs");
        assert_eq!(b[1].1, 1, "101 µs");
        assert_eq!(b[3], (Some(0.001), 1));
        assert_eq!(b.last(), Some(&(None, 1)), "above 10 s");
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 5);
    }
}
