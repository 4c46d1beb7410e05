//! Key layout inside a shard's keyspaces, and the hash that maps a record to its partition.
//!
//! - records:   `[len u8][table][partition u16 BE][id]` → envelope
//! - index:     `[len u8][table][len u8][attr][encoded value][id]` → empty
//! - changelog: `[seq u64 BE]` → change entry
//!
//! Records are grouped by table, then partition, so a table scan is one prefix and a partition
//! (for moves and digests) is one range.

/// Partition of a record: a seeded FNV-1a over table and id, finished with a 64-bit mixer.
/// Nothing else in the system uses this hash, so shards cannot alias with another layer.
pub fn partition_of(table: &str, id: &str, partitions: u32) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ 0x6d69_6372_6f6c_6974; // "microlit"
    for b in table
        .as_bytes()
        .iter()
        .chain(std::iter::once(&0xffu8))
        .chain(id.as_bytes())
    {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h % partitions as u64) as u16
}

/// The prefix of every record of a table.
pub fn table_prefix(table: &str, out: &mut Vec<u8>) {
    out.push(table.len() as u8);
    out.extend_from_slice(table.as_bytes());
}

/// The key of a record.
pub fn record_key(table: &str, partition: u16, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + table.len() + id.len());
    table_prefix(table, &mut k);
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// Splits a record key into (table, partition, id).
pub fn split_record_key(key: &[u8]) -> Option<(&str, u16, &str)> {
    let len = *key.first()? as usize;
    let table = std::str::from_utf8(key.get(1..1 + len)?).ok()?;
    let p = key.get(1 + len..3 + len)?;
    let id = std::str::from_utf8(key.get(3 + len..)?).ok()?;
    Some((table, u16::from_be_bytes([p[0], p[1]]), id))
}

/// The prefix of every index entry of one attribute of a table.
pub fn index_prefix(table: &str, attr: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + table.len() + attr.len() + 16);
    table_prefix(table, &mut k);
    k.push(attr.len() as u8);
    k.extend_from_slice(attr.as_bytes());
    k
}

/// Sequence number key of the change log.
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_key_round_trips() {
        let k = record_key("Product", 513, "abc-1");
        assert_eq!(split_record_key(&k), Some(("Product", 513, "abc-1")));
    }

    #[test]
    fn partitions_spread_evenly() {
        let mut counts = vec![0u32; 256];
        for i in 0..256_000 {
            counts[partition_of("T", &i.to_string(), 256) as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 850 && *max < 1150, "min {min} max {max}");
    }
}
