//! A shard's memory of credentials it has checked, so that a request with the same Basic
//! credentials or bearer token as an earlier one costs a SHA-256 and a map lookup, not an
//! argon2 hash. Keyed by a SHA-256 of the credentials (the passwords themselves are not
//! kept), bounded (a full cache drops an arbitrary entry), and each entry carries the
//! generation of the system tables it was decided at: an entry from an older generation is
//! checked again against the current users and roles before it is believed (`shard.rs`).

use super::principal::Principal;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// What was decided about some credentials.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// They authenticate `principal`, whose password hash had this stamp, until `expires`
    /// (Unix seconds; tokens only).
    Allowed {
        principal: Arc<Principal>,
        stamp: [u8; 32],
        expires: Option<u64>,
    },
    /// The password was wrong (or the user unknown).
    Refused,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub generation: u64,
    pub verdict: Verdict,
}

/// The key of some credentials: SHA-256 over a scheme tag and the parts, each length-prefixed.
pub fn key(scheme: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(scheme);
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// The bounded map of decisions.
#[derive(Debug)]
pub struct CredentialCache {
    map: HashMap<[u8; 32], Entry>,
    cap: usize,
}

impl CredentialCache {
    pub fn new(cap: usize) -> CredentialCache {
        CredentialCache {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    pub fn get_mut(&mut self, key: &[u8; 32]) -> Option<&mut Entry> {
        self.map.get_mut(key)
    }

    pub fn remove(&mut self, key: &[u8; 32]) {
        self.map.remove(key);
    }

    /// Remembers a decision; a full cache first forgets an arbitrary other one.
    pub fn insert(&mut self, key: [u8; 32], entry: Entry) {
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            if let Some(victim) = self.map.keys().next().copied() {
                self.map.remove(&victim);
            }
        }
        self.map.insert(key, entry);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_bound_and_keys_separate_parts() {
        let mut c = CredentialCache::new(3);
        for i in 0u8..10 {
            c.insert(
                key(b"basic", &[&[i]]),
                Entry {
                    generation: 0,
                    verdict: Verdict::Refused,
                },
            );
            assert!(c.len() <= 3);
        }
        assert_ne!(key(b"basic", &[b"ab", b"c"]), key(b"basic", &[b"a", b"bc"]));
        assert_ne!(key(b"basic", &[b"x"]), key(b"bearer", &[b"x"]));
    }
}
